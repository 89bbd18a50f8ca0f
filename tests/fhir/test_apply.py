"""`POST /fhir/PlanDefinition/{id}/$apply`: a CPG CarePlan out; OperationOutcome (4xx) naming the parameter."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from allpath.api import create_app
from allpath.engine import Engine
from allpath.facts import PatientFacts
from allpath.fhir import Importer
from allpath.fhir.export import CPG_CAREPLAN, CPG_MEDICATION_REQUEST, CPG_STRATEGY, care_plan
from allpath.knowledge import load_kb
from allpath.settings import DatabaseSettings, Settings
from allpath.store.auth import create_user

ROOT = Path(__file__).resolve().parents[2]
# Three records that differ in what the import reads (a new Ph+ adult, a relapse, a T-cell second
# relapse); the import and plan code is one path, and the CLI test holds every example Bundle.
EXAMPLES = [
    ROOT / "examples" / "fhir" / f"{name}.bundle.json"
    for name in (
        "newly-diagnosed-adult-ph-positive-cns",
        "first-relapse-after-short-remission-teen",
        "second-relapse-adult-t-cell",
    )
]
URL = "/fhir/PlanDefinition/allpath-all-treatment-options/$apply"
PASSWORD = "test-password-1234"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("apply") / "allpath.db"
    app = create_app(load_kb(["base"]), settings=Settings(database=DatabaseSettings(url=f"sqlite:///{db}")))
    with app.state.allpath.sessions() as session:
        create_user(session, "apply-doc", PASSWORD, "clinician", None)
    with TestClient(app) as test_client:
        yield test_client
    app.state.allpath.close()


@pytest.fixture(scope="module")
def auth(client: TestClient) -> dict[str, str]:
    token = client.post("/auth/token", data={"username": "apply-doc", "password": PASSWORD}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def base_engine() -> Engine:
    return Engine(load_kb(["base"]))


def _bundle(name: str = "newly-diagnosed-child-b-cell") -> dict[str, Any]:
    return json.loads((ROOT / "examples" / "fhir" / f"{name}.bundle.json").read_text())


def _parameters(bundle: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueString": subject or f"Patient/{patient['id']}"},
            {"name": "data", "resource": bundle},
        ],
    }


def _issues(response: Any) -> list[tuple[str, str]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return [(i["expression"][0] if "expression" in i else "", i["diagnostics"]) for i in body["issue"]]


def test_apply_returns_a_care_plan_that_validates_as_r4b_with_the_cpg_profiles(
    client: TestClient, auth: dict[str, str]
) -> None:
    from fhir.resources.R4B.careplan import CarePlan
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.requestgroup import RequestGroup

    bundle = _bundle("newly-diagnosed-adult-ph-positive-cns")
    response = client.post(URL, json=_parameters(bundle), headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    care = response.json()
    CarePlan.model_validate(care)
    assert care["meta"]["profile"] == [CPG_CAREPLAN]
    assert care["subject"] == {"reference": f"Patient/{bundle['entry'][0]['resource']['id']}"}
    contained = {r["id"]: r for r in care["contained"]}
    group = contained["options"]
    RequestGroup.model_validate(group)
    assert group["meta"]["profile"] == [CPG_STRATEGY]
    orders = [r for r in care["contained"] if r["resourceType"] == "MedicationRequest"]
    assert orders, "a Ph+ newly diagnosed adult has drug options"
    for order in orders:
        MedicationRequest.model_validate(order)
        assert order["intent"] == "proposal" and order["status"] == "draft"
        assert order["meta"]["profile"] == [CPG_MEDICATION_REQUEST]
        assert order["subject"] == care["subject"]
    # Every drug action points at its proposal, and every proposal is pointed at once.
    pointed = [d["resource"]["reference"] for a in group["action"] for d in a.get("action", []) if "resource" in d]
    assert sorted(pointed) == sorted(f"#{o['id']}" for o in orders)
    tki = next(a for a in group["action"] if a["id"] == "tki-ph-positive")
    imatinib = next(d for d in tki["action"] if d["title"] == "imatinib")
    order = contained[imatinib["resource"]["reference"][1:]]
    assert {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "282388", "display": "imatinib"} in (
        order["medicationCodeableConcept"]["coding"]
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name.split(".")[0] for p in EXAMPLES])
def test_apply_over_http_gives_the_plan_of_the_import(
    client: TestClient, auth: dict[str, str], base_engine: Engine, path: Path
) -> None:
    bundle = json.loads(path.read_text())
    engine = base_engine
    # The service plans for today, so the expected plan is made for today too.
    imported = Importer(engine.kb).from_bundle(bundle, as_of=dt.date.today())
    plan = engine.recommend(imported.facts, extra_alerts=imported.alerts)
    response = client.post(URL, json=_parameters(bundle), headers=auth)
    assert response.status_code == 200, response.text
    care = response.json()
    group = next(r for r in care["contained"] if r["resourceType"] == "RequestGroup")
    assert [a["id"] for a in group["action"]] == plan.recommendation_ids()
    alert_ids = [
        n["text"].split(", ", 1)[1].split(")", 1)[0] for n in group.get("note", []) if n["text"].startswith("Alert")
    ]
    assert alert_ids == [a.id for a in plan.alerts]
    expected = care_plan(engine, imported.facts, imported=imported, subject=care["subject"])
    assert care == expected


def test_apply_without_a_token_is_401_operation_outcome(client: TestClient) -> None:
    response = client.post(URL, json=_parameters(_bundle()))
    assert response.status_code == 401
    assert _issues(response)[0][0] == "Authorization"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resourceType": "Bundle"}, "Parameters.resourceType"),
        ([1, 2], "Parameters"),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "data", "resource": {"resourceType": "Bundle", "type": "collection"}}],
            },
            "subject",
        ),
        ({"resourceType": "Parameters", "parameter": [{"name": "subject", "valueString": "Patient/p"}]}, "data"),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "subject", "valueInteger": 3},
                    {"name": "data", "resource": {"resourceType": "Bundle", "type": "collection"}},
                ],
            },
            "subject",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "subject", "valueString": "Patient/p"}, {"name": "data", "valueString": "x"}],
            },
            "data",
        ),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "useServerData", "valueBoolean": True}]},
            "useServerData",
        ),
        ({"resourceType": "Parameters", "parameter": "nope"}, "Parameters.parameter"),
    ],
    ids=[
        "not-parameters",
        "not-an-object",
        "no-subject",
        "no-data",
        "subject-not-a-string",
        "data-not-a-bundle",
        "unknown-parameter",
        "parameter-not-a-list",
    ],
)
def test_malformed_apply_parameters_are_400_naming_the_parameter(
    client: TestClient, auth: dict[str, str], body: Any, field: str
) -> None:
    response = client.post(URL, json=body, headers=auth)
    assert response.status_code == 400, response.text
    assert field in [f for f, _ in _issues(response)]


def test_a_subject_that_is_not_the_patient_in_data_is_400_naming_subject(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = client.post(URL, json=_parameters(_bundle(), subject="Patient/someone-else"), headers=auth)
    assert response.status_code == 400
    [(field, text)] = _issues(response)
    assert field == "subject" and "someone-else" in text


def test_an_invalid_resource_in_data_is_422_naming_its_path_under_data(
    client: TestClient, auth: dict[str, str]
) -> None:
    bundle = _bundle()
    bundle["entry"][1]["resource"]["code"] = 5
    response = client.post(URL, json=_parameters(bundle), headers=auth)
    assert response.status_code == 422
    assert [f for f, _ in _issues(response)] == [
        f"data.entry[1].resource(Condition/{bundle['entry'][1]['resource']['id']}).code"
    ]


def test_a_record_without_all_is_422_not_an_empty_plan(client: TestClient, auth: dict[str, str]) -> None:
    bundle = _bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    response = client.post(URL, json=_parameters(bundle), headers=auth)
    assert response.status_code == 422
    assert any(f.startswith("data.Condition") for f, _ in _issues(response))


def test_invalid_json_and_an_unknown_plan_definition_are_operation_outcomes(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = client.post(URL, content=b"{not json", headers={**auth, "Content-Type": "application/fhir+json"})
    assert response.status_code == 400 and _issues(response)[0][0] == "Parameters"
    response = client.post("/fhir/PlanDefinition/other/$apply", json=_parameters(_bundle()), headers=auth)
    assert response.status_code == 404 and _issues(response)[0][0] == "id"


def test_the_plan_definition_is_served_with_its_library(client: TestClient) -> None:
    from fhir.resources.R4B.plandefinition import PlanDefinition

    response = client.get("/fhir/PlanDefinition/allpath-all-treatment-options")
    assert response.status_code == 200
    body = response.json()
    PlanDefinition.model_validate(body)
    assert body["library"] == ["#facts-from-record"]
    assert client.get("/fhir/PlanDefinition/other").status_code == 404


def test_a_withdrawn_drug_is_shown_with_its_note_but_never_proposed_as_an_order() -> None:
    engine = Engine(load_kb(["base", "updates-2026"]))
    facts = PatientFacts.parse(
        {
            "age_years": 40,
            "disease_status": "relapsed",
            "relapse_count": 1,
            "remission_count": 1,
            "prior_regimen_count": 2,
        }
    )
    care = care_plan(engine, facts)
    group = next(r for r in care["contained"] if r["resourceType"] == "RequestGroup")
    liposomal = next(a for a in group["action"] if a["id"] == "liposomal-vincristine")
    assert liposomal["action"], "the withdrawn option still lists its drug, with the note"
    for drug in liposomal["action"]:
        assert "resource" not in drug and "not proposed" in drug["description"]
    names = {
        c.get("text")
        for r in care["contained"]
        if r["resourceType"] == "MedicationRequest"
        for c in [r["medicationCodeableConcept"]]
    }
    assert not any("liposom" in (n or "") for n in names)
