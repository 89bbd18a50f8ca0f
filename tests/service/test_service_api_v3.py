"""REST changes of issue 13: a paged patient list, flat event bodies, the list of valid event
types on a wrong one, JSON log-in, and the interactive docs served without a CDN."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from allpath.course import EVENT_TYPES
from tests.service.conftest import PASSWORD, new_patient, post_event


def test_patient_list_is_paged_with_total_next_link_status_and_phase(
    client: TestClient, make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> None:
    headers = login(make_user("clinician"))
    first = new_patient(client, headers)
    assert post_event(client, headers, first, type="diagnosed", date="2026-01-05").status_code == 201
    assert (
        post_event(client, headers, first, type="phase_started", date="2026-01-06", phase="induction").status_code
        == 201
    )
    new_patient(client, headers)
    total = client.get("/patients", params={"limit": 1}, headers=headers).json()["total"]
    assert total >= 2
    seen: dict[str, dict] = {}
    url: str | None = "/patients?limit=1"
    pages = 0
    while url is not None:
        page = client.get(url, headers=headers).json()
        assert page["total"] == total and len(page["items"]) == 1
        seen.update({p["id"]: p for p in page["items"]})
        url = page["next"]
        pages += 1
    assert pages == total == len(seen)
    assert seen[first]["status"] == "newly_diagnosed" and seen[first]["current_phase"] == "induction"


def test_a_flat_event_body_is_accepted(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    r = client.post(
        f"/patients/{pid}/events",
        json={"type": "diagnosed", "date": "2026-01-05", "lineage": "B", "expected_version": 0},
        headers=clinician,
    )
    assert r.status_code == 201, r.text
    assert r.json()["event"]["type"] == "diagnosed" and r.json()["version"] == 1


def test_a_wrong_event_type_is_answered_with_the_valid_types(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    r = client.post(f"/patients/{pid}/events", json={"type": "diagnosis", "date": "2026-01-05"}, headers=clinician)
    assert r.status_code == 422
    (detail,) = r.json()["details"]
    assert detail["field"] == "event.type"
    assert all(f"'{t}'" in detail["problem"] for t in EVENT_TYPES)


def test_token_accepts_json_as_well_as_form_data(client: TestClient, make_user: Callable[..., str]) -> None:
    username = make_user("clinician")
    as_json = client.post("/auth/token", json={"username": username, "password": PASSWORD})
    assert as_json.status_code == 200 and as_json.json()["token_type"] == "bearer"
    as_form = client.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert as_form.status_code == 200
    wrong = client.post("/auth/token", json={"username": username, "password": "not-it"})
    assert wrong.status_code == 401
    missing = client.post("/auth/token", json={"username": username})
    assert missing.status_code == 422 and missing.json()["details"] == [{"field": "password", "problem": "is required"}]


def test_interactive_docs_load_their_assets_from_the_service(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "//" not in page.text.replace("<!doctype html>", "").split("<body>")[1]  # no remote URL
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs-init.js"):
        r = client.get(f"/docs-assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 100, asset
    assert client.get("/docs-assets/../pyproject.toml").status_code == 404
