"""Access control, CSRF, audit and logging: what must hold for patient data to stay private."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from allpath.store.models import AuditRow
from tests.service.conftest import PASSWORD, new_patient, post_event

FAKE_NAME = "Zebediah Quixote-Fakename"
FAKE_BIRTH = "2013-04-27"


def audit_rows(app: FastAPI, **where: str) -> list[AuditRow]:
    with app.state.allpath.sessions() as session:
        query = select(AuditRow)
        for column, value in where.items():
            query = query.where(getattr(AuditRow, column) == value)
        return list(session.scalars(query))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/patients"),
        ("post", "/patients"),
        ("get", "/patients/P0000000000"),
        ("get", "/patients/P0000000000/events"),
        ("post", "/patients/P0000000000/events"),
        ("get", "/patients/P0000000000/plan"),
        ("get", "/users"),
        ("get", "/audit"),
        ("get", "/auth/me"),
    ],
)
def test_unauthenticated_requests_get_401(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={})
    assert response.status_code == 401
    assert response.json()["error"].startswith("not authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_bad_token_gets_401(client: TestClient) -> None:
    assert client.get("/patients", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_unauthenticated_access_is_audited(app: FastAPI, client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    client.get(f"/patients/{pid}/plan")
    rows = audit_rows(app, patient_id=pid, outcome="denied")
    assert [r.actor for r in rows] == ["anonymous"]


def test_patient_account_sees_only_its_own_record(
    app: FastAPI,
    client: TestClient,
    clinician: dict[str, str],
    make_user: Callable[..., str],
    login: Callable[[str], dict[str, str]],
) -> None:
    own = new_patient(client, clinician)
    other = new_patient(client, clinician)
    post_event(client, clinician, own, type="diagnosed", date="2025-01-10")
    post_event(client, clinician, other, type="diagnosed", date="2025-01-10")
    family_user = make_user("patient", own)
    family = login(family_user)

    assert [p["id"] for p in client.get("/patients", headers=family).json()["items"]] == [own]
    assert client.get(f"/patients/{own}/plan", headers=family).status_code == 200
    for path in (f"/patients/{other}", f"/patients/{other}/events", f"/patients/{other}/plan"):
        response = client.get(path, headers=family)
        assert response.status_code == 404, path
        assert response.json()["error"] == f"no patient {other}"
    # The same answer as for an id that does not exist: nothing to learn by probing.
    assert client.get("/patients/P0000000000", headers=family).json()["error"] == "no patient P0000000000"
    denied = audit_rows(app, patient_id=other, actor=family_user, outcome="denied")
    assert len(denied) == 3


def test_patient_account_is_read_only(
    app: FastAPI,
    client: TestClient,
    clinician: dict[str, str],
    make_user: Callable[..., str],
    login: Callable[[str], dict[str, str]],
) -> None:
    own = new_patient(client, clinician)
    username = make_user("patient", own)
    family = login(username)
    response = post_event(client, family, own, type="diagnosed", date="2025-01-10")
    assert response.status_code == 403
    assert client.post("/patients", json={"birth_date": "2010-01-01"}, headers=family).status_code == 403
    assert audit_rows(app, actor=username, action="event.append", outcome="denied")


def test_every_read_and_write_of_patient_data_is_audited(
    app: FastAPI, client: TestClient, make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> None:
    username = make_user("clinician")
    headers = login(username)
    pid = new_patient(client, headers)
    post_event(client, headers, pid, type="diagnosed", date="2025-01-10")
    client.get(f"/patients/{pid}", headers=headers)
    client.get(f"/patients/{pid}/events", headers=headers)
    client.get(f"/patients/{pid}/plan", headers=headers)
    actions = [r.action for r in audit_rows(app, actor=username, patient_id=pid)]
    assert actions == ["patient.create", "event.append", "patient.read", "events.read", "plan.read"]


def test_only_admins_read_the_audit_trail(
    client: TestClient, clinician: dict[str, str], make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> None:
    assert client.get("/audit", headers=clinician).status_code == 403
    admin = login(make_user("admin"))
    assert client.get("/audit", params={"limit": 5}, headers=admin).status_code == 200


def browser_login(client: TestClient, username: str) -> str:
    token = client.get("/auth/csrf").json()["csrf_token"]
    response = client.post("/auth/session", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 200, response.text
    return client.get("/auth/csrf").json()["csrf_token"]


def test_form_post_without_csrf_token_is_rejected(
    app: FastAPI, database_url: str, make_user: Callable[..., str]
) -> None:
    username = make_user("clinician")
    with TestClient(app) as browser:
        rejected = browser.post("/auth/session", data={"username": username, "password": PASSWORD})
        assert rejected.status_code == 403
        assert rejected.json()["details"] == [{"field": "csrf_token", "problem": "is missing or does not match"}]
        forged = browser.post(
            "/auth/session", data={"username": username, "password": PASSWORD, "csrf_token": "0" * 64}
        )
        assert forged.status_code == 403


def test_cookie_session_post_needs_the_csrf_token(app: FastAPI, make_user: Callable[..., str]) -> None:
    username = make_user("clinician")
    with TestClient(app) as browser:
        token = browser_login(browser, username)
        assert browser.get("/auth/session").json()["username"] == username
        # A JSON post riding on the session cookie is as forgeable as a form: it needs the token too.
        assert browser.post("/auth/session/logout").status_code == 403
        assert browser.post("/auth/session/logout", headers={"X-CSRF-Token": token}).status_code == 204
        assert browser.get("/auth/session").status_code == 401


def test_csrf_token_of_another_browser_does_not_fit(app: FastAPI, make_user: Callable[..., str]) -> None:
    username = make_user("clinician")
    with TestClient(app) as mallory, TestClient(app) as victim:
        foreign = mallory.get("/auth/csrf").json()["csrf_token"]
        victim.get("/auth/csrf")
        response = victim.post(
            "/auth/session", data={"username": username, "password": PASSWORD, "csrf_token": foreign}
        )
        assert response.status_code == 403


def test_session_cookie_is_httponly_and_samesite(app: FastAPI, make_user: Callable[..., str]) -> None:
    username = make_user("clinician")
    with TestClient(app) as browser:
        token = browser.get("/auth/csrf").json()["csrf_token"]
        response = browser.post("/auth/session", data={"username": username, "password": PASSWORD, "csrf_token": token})
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("allpath_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_names_and_birth_dates_never_reach_the_logs(
    client: TestClient, clinician: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pid = new_patient(client, clinician, birth_date=FAKE_BIRTH, display_name=FAKE_NAME)
    post_event(client, clinician, pid, type="diagnosed", date="2025-01-10")
    post_event(client, clinician, pid, type="relapsed", date="2025-01-11")  # refused: logged, maybe
    client.get(f"/patients/{pid}", headers=clinician)
    client.get(f"/patients/{pid}/plan", headers=clinician)
    client.patch(f"/patients/{pid}", json={"expected_version": 0, "display_name": FAKE_NAME}, headers=clinician)
    client.post("/auth/token", data={"username": FAKE_NAME, "password": FAKE_BIRTH})
    client.post("/patients", json={"birth_date": "2999-01-01", "display_name": FAKE_NAME}, headers=clinician)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records, "the flow should have logged something"
    for secret in (FAKE_NAME, "Zebediah", FAKE_BIRTH, "27/04/2013", "2999-01-01"):
        assert secret not in text


def test_expired_and_revoked_tokens_are_refused(
    app: FastAPI, client: TestClient, make_user: Callable[..., str]
) -> None:
    from allpath.store.auth import authenticate, issue_token, resolve_token, revoke_token

    username = make_user("clinician")
    with app.state.allpath.sessions() as session:
        user = authenticate(session, username, PASSWORD)
        assert user is not None
        expired, _ = issue_token(session, user, "bearer", ttl_seconds=-1)
        live, _ = issue_token(session, user, "bearer", ttl_seconds=600)
        assert resolve_token(session, live, "bearer") == user
        assert resolve_token(session, live, "session") is None  # a bearer token is not a browser session
        revoke_token(session, live)
    for token in (expired, live):
        assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_new_log_in_deletes_the_users_dead_tokens_and_keeps_live_ones(
    app: FastAPI, make_user: Callable[..., str]
) -> None:
    from allpath.store.auth import authenticate, issue_token, revoke_token, token_hash
    from allpath.store.models import TokenRow

    username = make_user("clinician")
    other = make_user("clinician")
    with app.state.allpath.sessions() as session:
        user = authenticate(session, username, PASSWORD)
        someone_else = authenticate(session, other, PASSWORD)
        assert user is not None and someone_else is not None
        expired, _ = issue_token(session, user, "bearer", ttl_seconds=-1)
        revoked, _ = issue_token(session, user, "bearer", ttl_seconds=600)
        revoke_token(session, revoked)
        live, _ = issue_token(session, user, "bearer", ttl_seconds=600)
        others_expired, _ = issue_token(session, someone_else, "bearer", ttl_seconds=-1)

        newest, _ = issue_token(session, user, "session", ttl_seconds=600)

        stored = set(session.scalars(select(TokenRow.token_hash)))
    assert token_hash(expired) not in stored
    assert token_hash(revoked) not in stored
    assert {token_hash(live), token_hash(newest), token_hash(others_expired)} <= stored


def test_basic_credentials_a_browser_sends_by_itself_do_not_exempt_a_form_post_from_csrf(
    app: FastAPI, make_user: Callable[..., str]
) -> None:
    # Behind an authenticating proxy the browser adds `Authorization: Basic ...` to a forged
    # cross-site post as well; only a Bearer header shows the request did not come from a form.
    username = make_user("clinician")
    with TestClient(app) as browser:
        browser_login(browser, username)
        forged = browser.post("/auth/session/logout", headers={"Authorization": "Basic ZGVtbzpkZW1v"})
        assert forged.status_code == 403
        assert browser.get("/auth/session").json()["username"] == username


def test_bearer_api_responses_set_no_csrf_cookie(client: TestClient, make_user: Callable[..., str]) -> None:
    username = make_user("clinician")
    token = client.post("/auth/token", data={"username": username, "password": PASSWORD}).json()["access_token"]
    client.cookies.clear()
    response = client.get("/patients", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
