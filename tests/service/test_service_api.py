"""The REST API over a real database (SQLite, and PostgreSQL when reachable)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from fastapi.testclient import TestClient

from tests.service.conftest import new_patient, post_event

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def assert_error_body(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "details"} and isinstance(body["error"], str)
    for detail in body["details"]:
        assert set(detail) == {"field", "problem"}
    return body


def test_plan_moves_from_induction_to_consolidation(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", lineage="B", ph_status="negative")
    post_event(client, clinician, pid, type="phase_started", date="2025-01-11", phase="induction")
    before = client.get(f"/patients/{pid}/plan", params={"as_of": "2025-01-20"}, headers=clinician).json()
    assert "induction-chemotherapy" in [r["id"] for r in before["plan"]["recommendations"]]
    post_event(client, clinician, pid, type="remission_achieved", date="2025-02-08")
    post_event(client, clinician, pid, type="phase_completed", date="2025-02-09", phase="induction")
    after = client.get(f"/patients/{pid}/plan", params={"as_of": "2025-02-10"}, headers=clinician).json()
    ids = [r["id"] for r in after["plan"]["recommendations"]]
    assert "consolidation-chemotherapy" in ids and "induction-chemotherapy" not in ids
    assert after["facts"]["disease_status"] == "in_remission"
    assert after["course"]["completed_phases"] == ["induction"]
    assert after["version"] == 4


def test_impossible_event_is_refused_with_the_reason(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    post_event(client, clinician, pid, type="diagnosed", date="2025-01-10")
    response = post_event(client, clinician, pid, type="relapsed", date="2025-03-01")
    body = assert_error_body(response, 422)
    assert body["details"] == [{"field": "event.type", "problem": "a relapse needs a remission first"}]
    assert len(client.get(f"/patients/{pid}/events", headers=clinician).json()) == 1


def test_stale_writer_gets_409_and_nothing_is_lost(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    first = post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", expected_version=0)
    assert first.status_code == 201 and first.json()["version"] == 1
    # Two writers both saw version 1; the second one to write is stale.
    ok = post_event(client, clinician, pid, type="mrd_result", date="2025-01-12", result="positive", expected_version=1)
    stale = post_event(client, clinician, pid, type="trial_enrolled", date="2025-01-12", expected_version=1)
    assert ok.status_code == 201
    body = assert_error_body(stale, 409)
    assert body["details"][0]["field"] == "expected_version"
    events = client.get(f"/patients/{pid}/events", headers=clinician).json()
    assert [e["type"] for e in events] == ["diagnosed", "mrd_result"]
    assert [e["seq"] for e in events] == [1, 2]


def test_correction_supersedes_the_old_event(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    wrong = post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", lineage="B").json()["event"]
    fixed = post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", lineage="T", supersedes=wrong["id"])
    assert fixed.status_code == 201, fixed.text
    events = client.get(f"/patients/{pid}/events", headers=clinician).json()
    assert events[0]["superseded_by"] == fixed.json()["event"]["id"]
    plan = client.get(f"/patients/{pid}/plan", params={"as_of": "2025-01-11"}, headers=clinician).json()
    assert plan["facts"]["lineage"] == "T"


def test_event_before_birth_is_refused(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician, birth_date="2020-01-01")
    body = assert_error_body(post_event(client, clinician, pid, type="diagnosed", date="2019-12-31"), 422)
    assert body["details"][0]["field"] == "event.date"


def test_plan_without_a_diagnosis_names_as_of(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    body = assert_error_body(client.get(f"/patients/{pid}/plan", headers=clinician), 422)
    assert body["details"][0]["field"] == "as_of"


def test_unknown_event_field_is_named(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    response = post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", lineage="X", colour="red")
    fields = {d["field"] for d in assert_error_body(response, 422)["details"]}
    assert {"event.lineage", "event.colour"} <= fields


def test_patient_update_needs_the_current_version(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    ok = client.patch(
        f"/patients/{pid}", json={"expected_version": 0, "display_name": "Test (fake)"}, headers=clinician
    )
    assert ok.status_code == 200 and ok.json()["version"] == 1
    stale = client.patch(
        f"/patients/{pid}", json={"expected_version": 0, "birth_date": "2014-01-01"}, headers=clinician
    )
    assert_error_body(stale, 409)


def test_future_birth_date_is_refused(client: TestClient, clinician: dict[str, str]) -> None:
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    body = assert_error_body(client.post("/patients", json={"birth_date": tomorrow}, headers=clinician), 422)
    assert body["details"][0]["field"] == "birth_date"


def test_recommend_matches_the_engine(client: TestClient, engine) -> None:  # type: ignore[no-untyped-def]
    from allpath.facts import PatientFacts

    for path in sorted(EXAMPLES.glob("*.json")):
        data = json.loads(path.read_text())
        response = client.post("/recommend", json=data)
        assert response.status_code == 200, path.name
        assert response.json()["recommendations"] == [
            r.model_dump(mode="json") for r in engine.recommend(PatientFacts.parse(data)).recommendations
        ]


def test_recommend_names_every_bad_field(client: TestClient) -> None:
    body = assert_error_body(client.post("/recommend", json={"age_years": -1, "disease_status": "cured"}), 422)
    assert {d["field"] for d in body["details"]} == {"age_years", "disease_status"}


def test_recommend_reports_contradictions_by_field(client: TestClient) -> None:
    facts = {"age_years": 30, "disease_status": "newly_diagnosed", "remission_count": 1}
    body = assert_error_body(client.post("/recommend", json=facts), 422)
    assert body["details"] == [
        {"field": "remission_count", "problem": "must be 0 when disease_status is newly_diagnosed"}
    ]


def test_malformed_json_is_a_422_with_the_error_body(client: TestClient) -> None:
    response = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert_error_body(response, 422)


def test_unknown_route_has_the_error_body(client: TestClient) -> None:
    assert_error_body(client.get("/no/such/thing"), 404)
    assert_error_body(client.delete("/recommend"), 405)


def test_knowledge_search_finds_the_right_entries(client: TestClient) -> None:
    def top(query: str) -> tuple[str, str]:
        hits = client.get("/knowledge/search", params={"q": query}).json()
        return hits[0]["kind"], hits[0]["id"]

    assert top("what is maintenance") == ("phase", "maintenance")
    assert top("spinal tap") == ("phase", "cns_prophylaxis")
    assert top("hair loss")[0] == "topic"


def test_knowledge_lists(client: TestClient, kb) -> None:  # type: ignore[no-untyped-def]
    assert [a["id"] for a in client.get("/knowledge/agents").json()] == list(kb.agents)
    assert [p["id"] for p in client.get("/knowledge/phases").json()] == list(kb.phases)
    assert [s["id"] for s in client.get("/knowledge/sources").json()] == list(kb.sources)
    assert_error_body(client.get("/knowledge/agents/not-a-drug"), 404)


def test_openapi_is_published(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/patients", "/patients/{patient_id}/plan", "/recommend", "/auth/token"} <= set(spec["paths"])


def test_nul_and_control_characters_never_cause_a_server_error(client: TestClient, clinician: dict[str, str]) -> None:
    # PostgreSQL refuses NUL in text: each of these would be a 500 if it reached a query unchecked.
    assert client.get("/patients/P%00ABCDEFGH", headers=clinician).status_code == 404
    assert client.get("/patients/P%00ABCDEFGH/plan").status_code == 401
    assert client.get("/audit", params={"patient_id": "\x00"}, headers=clinician).status_code == 422
    assert client.post("/auth/token", data={"username": "a\x00b", "password": "x"}).status_code == 401
    response = client.post("/patients", json={"birth_date": "2015-01-01", "display_name": "a\x00b"}, headers=clinician)
    assert_error_body(response, 422)


def test_v2_events_are_accepted_and_reach_the_facts(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", lineage="B", down_syndrome=True)
    for event in (
        {"type": "phase_started", "date": "2025-01-11", "phase": "induction"},
        {"type": "genetics_result", "date": "2025-01-15", "findings": ["bcr-abl1"]},
        {"type": "immunophenotype", "date": "2025-01-15", "cd19": "positive"},
        {"type": "therapy_given", "date": "2025-01-16", "therapy": "tki"},
        {"type": "fitness_assessed", "date": "2025-01-16", "fit": True},
        {"type": "pregnancy_status", "date": "2025-01-16", "pregnant": False},
        {"type": "mrd_result", "date": "2025-02-05", "result": "positive"},
    ):
        response = post_event(client, clinician, pid, **event)
        assert response.status_code == 201, response.text
    facts = client.get(f"/patients/{pid}/plan", params={"as_of": "2025-02-06"}, headers=clinician).json()["facts"]
    assert facts["ph_status"] == "positive" and facts["genetic_subtypes"] == ["bcr-abl1"]
    assert (facts["phase_in_progress"], facts["mrd_timepoint"]) == ("induction", "end_of_induction")
    assert (facts["cd19_status"], facts["prior_therapies"]) == ("positive", ["tki"])
    assert (facts["fit_for_intensive_therapy"], facts["pregnant"], facts["down_syndrome"]) == (True, False, True)


def test_bad_v2_event_values_are_422_naming_the_field(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    post_event(client, clinician, pid, type="diagnosed", date="2025-01-10", ph_status="negative")
    bad = {
        "event.therapy": {"type": "therapy_given", "therapy": "aspirin"},
        "event.fit": {"type": "fitness_assessed", "fit": "yes"},
        "event.findings": {"type": "genetics_result", "findings": ["bcr-abl1"]},  # against Ph negative
        "event.site": {"type": "relapsed", "site": "other"},  # a v1 value, no longer recorded
        "event.cd22": {"type": "immunophenotype", "cd22": "weak"},
    }
    for field, event in bad.items():
        body = assert_error_body(post_event(client, clinician, pid, date="2025-01-12", **event), 422)
        assert field in {d["field"] for d in body["details"]}, (field, body)
    assert len(client.get(f"/patients/{pid}/events", headers=clinician).json()) == 1
