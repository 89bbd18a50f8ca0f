"""Fixtures for the CDS Hooks tests: an app with real JWT checking, keys, and a stand-in importer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cdskit import ISSUER, SERVICE_URL, ClientKey, bearer, ec_key, jwks, rsa_key, token
from fastapi.testclient import TestClient

from allpath.api.cds import CdsSettings, create_cds_app
from allpath.api.cds.feedback import InMemoryFeedbackStore
from allpath.api.cds.validate import validate_cds_response
from allpath.facts import FactsError, PatientFacts, Problem
from allpath.fhir import default_importer
from allpath.plan import Alert


@dataclass
class StubResult:
    facts: PatientFacts
    alerts: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class StubImporter:
    """Stands in for the FHIR importer at the HTTP layer: facts are looked up by the Patient's id.

    It records what it was given, so tests can check what the service gathered from prefetch
    or from the FHIR server; the FHIR-to-facts mapping itself is the importer's to test.
    """

    facts: dict[str, PatientFacts] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    calls: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def drugs(self) -> Any:
        # The real drug mapping: how orders are read is the service's to get right.
        return default_importer().drugs

    def wants(self, resource: dict[str, Any]) -> bool:
        # The real filter: which resources reach the importer is the service's to get right.
        return default_importer().wants(resource)

    def from_resources(self, resources: list[dict[str, Any]], *, validated: bool = False) -> StubResult:
        self.calls.append(resources)
        patients = [r for r in resources if r.get("resourceType") == "Patient"]
        if not patients or patients[0].get("id") not in self.facts:
            raise FactsError([Problem("Patient.birthDate", "is required: age_years is worked out from it")])
        return StubResult(self.facts[patients[0]["id"]], list(self.alerts))


@pytest.fixture(scope="session")
def rsa() -> ClientKey:
    return rsa_key()


@pytest.fixture(scope="session")
def ec() -> ClientKey:
    return ec_key()


@pytest.fixture
def settings(rsa: ClientKey, ec: ClientKey) -> CdsSettings:
    return CdsSettings(jwks=jwks(rsa, ec), allowed_issuers=(ISSUER,), service_url=SERVICE_URL)


@pytest.fixture
def importer() -> StubImporter:
    return StubImporter(
        facts={
            "p1": PatientFacts.parse(
                {"age_years": 45, "lineage": "B", "ph_status": "positive", "disease_status": "newly_diagnosed"}
            ),
            "child": PatientFacts.parse(
                {"age_years": 7, "lineage": "B", "ph_status": "negative", "disease_status": "newly_diagnosed"}
            ),
            "teen-relapse": PatientFacts.parse(
                {
                    "age_years": 15,
                    "lineage": "B",
                    "ph_status": "negative",
                    "disease_status": "relapsed",
                    "remission_count": 2,
                    "relapse_count": 2,
                    "prior_regimen_count": 3,
                    "remission_duration_months": 10,
                }
            ),
            "adult-relapse": PatientFacts.parse(
                {
                    "age_years": 34,
                    "lineage": "B",
                    "ph_status": "negative",
                    "disease_status": "relapsed",
                    "remission_count": 1,
                    "relapse_count": 1,
                    "prior_regimen_count": 1,
                    "remission_duration_months": 10,
                }
            ),
        }
    )


@pytest.fixture
def feedback_store() -> InMemoryFeedbackStore:
    return InMemoryFeedbackStore()


@pytest.fixture
def make_client(
    engine: Any, settings: CdsSettings, importer: StubImporter, feedback_store: InMemoryFeedbackStore
) -> Callable[..., TestClient]:
    def build(**options: Any) -> TestClient:
        options.setdefault("importer", importer)
        options.setdefault("feedback_store", feedback_store)
        the_settings = options.pop("settings", settings)
        the_engine = options.pop("engine", engine)
        return TestClient(create_cds_app(the_engine, the_settings, **options))

    return build


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def call(client: TestClient, rsa: ClientKey) -> Callable[..., Any]:
    """POST a hook request with a fresh valid token; every 200 response is checked against the card rules."""

    def post(service: str, body: Any, **kwargs: Any) -> Any:
        endpoint = f"/cds-services/{service}"
        response = client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint)), **kwargs)
        if response.status_code == 200:
            problems = validate_cds_response(response.json())
            assert not problems, [str(p) for p in problems]
        return response

    return post
