"""`POST /fhir/PlanDefinition/{id}/$apply`: a CPG CarePlan out; OperationOutcome (4xx) naming the parameter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.fhir.conftest import APPLY_URL, apply_parameters

from allpath.engine import Engine
from allpath.facts import PatientFacts
from allpath.fhir.export import CPG_CAREPLAN, CPG_MEDICATION_REQUEST, CPG_STRATEGY, care_plan
from allpath.knowledge import load_kb

ROOT = Path(__file__).resolve().parents[2]
URL = APPLY_URL


def _bundle(name: str = "newly-diagnosed-child-b-cell") -> dict[str, Any]:
    return json.loads((ROOT / "examples" / "fhir" / f"{name}.bundle.json").read_text())


def _issues(response: Any) -> list[tuple[str, str]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return [(i["expression"][0] if "expression" in i else "", i["diagnostics"]) for i in body["issue"]]


def test_apply_returns_a_care_plan_that_validates_as_r4b_with_the_cpg_profiles(
    apply_client: TestClient, apply_auth: dict[str, str]
) -> None:
    from fhir.resources.R4B.careplan import CarePlan
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.requestgroup import RequestGroup

    bundle = _bundle("newly-diagnosed-adult-ph-positive-cns")
    response = apply_client.post(URL, json=apply_parameters(bundle), headers=apply_auth)
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


def test_apply_without_a_token_is_401_operation_outcome(apply_client: TestClient) -> None:
    response = apply_client.post(URL, json=apply_parameters(_bundle()))
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
    apply_client: TestClient, apply_auth: dict[str, str], body: Any, field: str
) -> None:
    response = apply_client.post(URL, json=body, headers=apply_auth)
    assert response.status_code == 400, response.text
    assert field in [f for f, _ in _issues(response)]


def test_a_subject_that_is_not_the_patient_in_data_is_400_naming_subject(
    apply_client: TestClient, apply_auth: dict[str, str]
) -> None:
    response = apply_client.post(
        URL, json=apply_parameters(_bundle(), subject="Patient/someone-else"), headers=apply_auth
    )
    assert response.status_code == 400
    [(field, text)] = _issues(response)
    assert field == "subject" and "someone-else" in text


def test_an_invalid_resource_in_data_is_422_naming_its_path_under_data(
    apply_client: TestClient, apply_auth: dict[str, str]
) -> None:
    bundle = _bundle()
    bundle["entry"][1]["resource"]["code"] = 5
    response = apply_client.post(URL, json=apply_parameters(bundle), headers=apply_auth)
    assert response.status_code == 422
    assert [f for f, _ in _issues(response)] == [
        f"data.entry[1].resource(Condition/{bundle['entry'][1]['resource']['id']}).code"
    ]


def test_a_record_without_all_is_422_not_an_empty_plan(apply_client: TestClient, apply_auth: dict[str, str]) -> None:
    bundle = _bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    response = apply_client.post(URL, json=apply_parameters(bundle), headers=apply_auth)
    assert response.status_code == 422
    assert any(f.startswith("data.Condition") for f, _ in _issues(response))


def test_invalid_json_and_an_unknown_plan_definition_are_operation_outcomes(
    apply_client: TestClient, apply_auth: dict[str, str]
) -> None:
    response = apply_client.post(
        URL, content=b"{not json", headers={**apply_auth, "Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 400 and _issues(response)[0][0] == "Parameters"
    response = apply_client.post(
        "/fhir/PlanDefinition/other/$apply", json=apply_parameters(_bundle()), headers=apply_auth
    )
    assert response.status_code == 404 and _issues(response)[0][0] == "id"


def test_the_plan_definition_is_served_with_its_library(apply_client: TestClient) -> None:
    from fhir.resources.R4B.plandefinition import PlanDefinition

    response = apply_client.get("/fhir/PlanDefinition/allpath-all-treatment-options")
    assert response.status_code == 200
    body = response.json()
    PlanDefinition.model_validate(body)
    assert body["library"] == ["#facts-from-record"]
    assert apply_client.get("/fhir/PlanDefinition/other").status_code == 404


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


def test_a_body_nested_too_deeply_is_a_400_not_a_500(apply_client: TestClient, apply_auth: dict[str, str]) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = apply_client.post(URL, content=deep, headers={**apply_auth, "Content-Type": "application/fhir+json"})
    assert response.status_code == 400 and _issues(response)[0][0] == "Parameters"
    # Valid JSON that Python's parser reads, with parameters nested 3,000 deep (deeper than validators walk).
    depth = 3_000
    nested = '{"name": "x", "part": [' * depth + '{"name": "x"}' + "]}" * depth
    body = ('{"resourceType": "Parameters", "parameter": [' + nested + "]}").encode()
    response = apply_client.post(URL, content=body, headers={**apply_auth, "Content-Type": "application/fhir+json"})
    assert 400 <= response.status_code < 500, response.text[:300]
    assert response.json()["resourceType"] == "OperationOutcome"
