"""The REST API carries `missing_facts` in every plan it returns, and its OpenAPI schema says so."""

from __future__ import annotations

from fastapi.testclient import TestClient

from allpath.engine import Engine
from allpath.facts import PatientFacts
from tests.service.conftest import new_patient, post_event

RELAPSED_DURATION_UNKNOWN = {
    "age_years": 30,
    "disease_status": "relapsed",
    "lineage": "B",
    "ph_status": "negative",
    "remission_count": 1,
    "relapse_count": 1,
}


def test_recommend_returns_remission_duration_as_missing_for_a_relapse(client: TestClient, engine: Engine) -> None:
    response = client.post("/recommend", json=RELAPSED_DURATION_UNKNOWN)
    assert response.status_code == 200, response.text
    missing = response.json()["missing_facts"]
    expected = engine.recommend(PatientFacts.parse(RELAPSED_DURATION_UNKNOWN)).missing_facts
    assert missing == [m.model_dump(mode="json") for m in expected]
    duration = next(m for m in missing if m["field"] == "remission_duration_months")
    assert "remission-duration-unknown" in duration["affects"]


def test_patient_plan_returns_lineage_as_missing_when_the_diagnosis_left_it_unknown(
    client: TestClient, clinician: dict[str, str]
) -> None:
    pid = new_patient(client, clinician)
    post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", lineage="unknown", ph_status="negative")
    body = client.get(f"/patients/{pid}/plan", params={"as_of": "2025-01-20"}, headers=clinician).json()
    lineage = [m for m in body["plan"]["missing_facts"] if m["field"] == "lineage"]
    assert lineage and {"nelarabine-t-cell", "lineage-unknown"} <= set(lineage[0]["affects"])


def test_patient_plan_drops_lineage_from_missing_facts_once_it_is_known(
    client: TestClient, clinician: dict[str, str]
) -> None:
    pid = new_patient(client, clinician)
    post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", lineage="B", ph_status="negative")
    body = client.get(f"/patients/{pid}/plan", params={"as_of": "2025-01-20"}, headers=clinician).json()
    assert "lineage" not in [m["field"] for m in body["plan"]["missing_facts"]]


def test_openapi_plan_schema_describes_missing_facts(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    prop = schemas["Plan"]["properties"]["missing_facts"]
    assert prop["items"] == {"$ref": "#/components/schemas/MissingFact"}
    assert "sharpen" in prop["description"]
    assert set(schemas["MissingFact"]["required"]) == {"field", "affects"}
    plan_ref = spec["paths"]["/recommend"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert plan_ref == {"$ref": "#/components/schemas/Plan"}
    patient_plan = spec["paths"]["/patients/{patient_id}/plan"]["get"]["responses"]["200"]["content"]
    assert patient_plan["application/json"]["schema"] == {"$ref": "#/components/schemas/PatientPlan"}
    assert schemas["PatientPlan"]["properties"]["plan"] == {"$ref": "#/components/schemas/Plan"}
