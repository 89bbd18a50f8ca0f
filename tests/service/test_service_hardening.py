"""Issue #15: the weaknesses an attacker's probe found, each pinned by a test that failed before the fix.

Throttling has its own file (`test_service_throttle.py`); the CDS token checks are in
`tests/cds/test_cds_auth.py`; the loopback attack replay is `test_attack_replay.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from allpath.store.models import PatientRow, TokenRow
from tests.service.conftest import PASSWORD, new_patient, post_event
from tests.service.test_service_security import browser_login


def diagnosed_patient(client: TestClient, headers: dict[str, str]) -> str:
    pid = new_patient(client, headers)
    assert post_event(client, headers, pid, type="diagnosed", date="2025-01-10", lineage="B").status_code == 201
    return pid


# --- item 4: dates out of range -----------------------------------------------------------------


@pytest.mark.parametrize("as_of", ["9999-12-30", "9999-12-31", "0001-01-01", "2200-01-01"])
def test_plan_as_of_out_of_range_is_a_422_naming_as_of(
    client: TestClient, clinician: dict[str, str], as_of: str
) -> None:
    pid = diagnosed_patient(client, clinician)
    response = client.get(f"/patients/{pid}/plan", params={"as_of": as_of}, headers=clinician)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "as_of"


def test_clinician_page_as_of_year_9999_is_a_422_page(
    app: FastAPI, client: TestClient, clinician: dict[str, str], make_user: Callable[..., str]
) -> None:
    pid = diagnosed_patient(client, clinician)
    with TestClient(app) as browser:
        browser_login(browser, make_user("clinician"))
        response = browser.get(f"/clinic/patients/{pid}", params={"as_of": "9999-12-31"})
    assert response.status_code == 422
    assert "As_of must be between 1900-01-01 and 2199-12-31" in response.text


def test_birth_date_before_1900_is_refused_on_update(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    response = client.patch(
        f"/patients/{pid}", json={"expected_version": 0, "birth_date": "0001-01-01"}, headers=clinician
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "birth_date"


# --- item 10: display names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Ann\u202eeoJ", "Ann\u200bSmith", "\ufeffAnn Smith", "Ann\u2028Smith", "Ann\u2066Smith", "Ann\u00a0Smith"],
    ids=["rlo-override", "zero-width-space", "bom", "line-separator", "isolate", "nbsp"],
)
def test_display_name_with_direction_or_invisible_characters_is_refused(
    client: TestClient, clinician: dict[str, str], name: str
) -> None:
    response = client.post("/patients", json={"birth_date": "2015-06-01", "display_name": name}, headers=clinician)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "display_name"
    pid = new_patient(client, clinician)
    patched = client.patch(f"/patients/{pid}", json={"expected_version": 0, "display_name": name}, headers=clinician)
    assert patched.status_code == 422
    assert patched.json()["details"][0]["field"] == "display_name"


def test_display_name_is_stored_in_nfc(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician, display_name="Rene\u0301e Test (fake)")
    assert client.get(f"/patients/{pid}", headers=clinician).json()["display_name"] == "Ren\u00e9e Test (fake)"


def test_new_patient_page_refuses_a_direction_override_in_the_name(app: FastAPI, make_user: Callable[..., str]) -> None:
    with TestClient(app) as browser:
        token = browser_login(browser, make_user("clinician"))
        response = browser.post(
            "/clinic/patients/new",
            data={"birth_date": "2015-06-01", "display_name": "Ann\u202eeoJ", "csrf_token": token},
            follow_redirects=False,
        )
    assert response.status_code == 422
    assert "U+202E" in response.text


# --- item 9: CSRF whatever headers come with the cookie ---------------------------------------------


def test_cookie_form_post_with_a_junk_bearer_header_still_needs_the_csrf_token(
    app: FastAPI, make_user: Callable[..., str]
) -> None:
    username = make_user("clinician")
    with TestClient(app) as browser:
        browser_login(browser, username)
        forged = browser.post(
            "/clinic/patients/new",
            data={"birth_date": "2015-06-01"},
            headers={"Authorization": "Bearer junk"},
            follow_redirects=False,
        )
        assert forged.status_code == 403
        assert forged.json()["details"] == [{"field": "csrf_token", "problem": "is missing or does not match"}]
        json_forged = browser.post(
            "/patients", json={"birth_date": "2015-06-01"}, headers={"Authorization": "Bearer junk"}
        )
        assert json_forged.status_code == 403
    with app.state.allpath.sessions() as session:
        assert session.scalars(select(PatientRow).where(PatientRow.created_by == username)).all() == []


# --- item 2: security headers ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/learn", "/clinic/patients/new"])
def test_every_page_forbids_framing_and_sniffing(app: FastAPI, path: str) -> None:
    with TestClient(app) as browser:
        response = browser.get(path, follow_redirects=False)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    if response.headers.get("content-type", "").startswith("text/html"):
        assert "default-src 'none'" in csp and "form-action 'self'" in csp and "script-src" not in csp
    assert "strict-transport-security" not in response.headers  # plain http: no HSTS


def test_json_errors_and_api_answers_carry_the_headers_too(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/patients"), client.get("/no-such-route")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_hsts_is_sent_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as browser:
        response = browser.get("/login")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


# --- item 8: request size limits --------------------------------------------------------------------


def test_anonymous_20_mb_recommend_is_refused_with_413_before_parsing(client: TestClient) -> None:
    body = b'{"age_years": 10, "padding": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    response = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["details"] == [{"field": "body", "problem": "must be at most 1048576 bytes"}]


def test_a_chunked_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65536

    response = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_body_under_the_limit_still_works(client: TestClient) -> None:
    facts = {"age_years": 10, "lineage": "B", "ph_status": "negative", "disease_status": "newly_diagnosed"}
    assert client.post("/recommend", json=facts).status_code == 200


def test_request_headers_over_the_limit_get_431(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Junk": "x" * (64 * 1024)})
    assert response.status_code == 431
    assert response.json()["details"][0]["field"] == "headers"


def test_body_and_header_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from allpath.settings import Settings

    monkeypatch.setenv("ALLPATH_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("ALLPATH_MAX_HEADER_BYTES", "8192")
    settings = Settings.from_env()
    assert (settings.http.max_body_bytes, settings.http.max_header_bytes) == (4096, 8192)


# --- item 5: password policy --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "problem"),
    [
        ("weak-repeat", "aaaaaaaaaa", "different characters"),
        ("alice-smith-01", "alice-smith-01", "user name"),
        ("alice-smith-02", "ALICE-SMITH-02", "user name"),
        ("common-one", "qwertyuiop", "too common"),
        ("common-two", "password123!", "too common"),
        ("short-one", "abc123xyz", "at least 10"),
    ],
)
def test_weak_passwords_are_refused_on_account_creation(
    client: TestClient,
    make_user: Callable[..., str],
    login: Callable[[str], dict[str, str]],
    username: str,
    password: str,
    problem: str,
) -> None:
    admin = login(make_user("admin"))
    response = client.post(
        "/users", json={"username": username, "password": password, "role": "clinician"}, headers=admin
    )
    assert response.status_code == 422, response.text
    detail = response.json()["details"][0]
    assert detail["field"] == "password" and problem in detail["problem"]


def test_password_change_applies_the_policy_and_revokes_other_tokens(
    client: TestClient, make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> None:
    username = make_user("clinician")
    current, other = login(username), login(username)
    weak = client.post("/auth/password", json={"current_password": PASSWORD, "new_password": username}, headers=current)
    assert weak.status_code == 422
    assert weak.json()["details"][0]["field"] == "new_password"
    wrong = client.post(
        "/auth/password",
        json={"current_password": "not-the-password", "new_password": "a-new-pass-phrase-77"},
        headers=current,
    )
    assert wrong.status_code == 422
    assert wrong.json()["details"][0]["field"] == "current_password"
    changed = client.post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": "a-new-pass-phrase-77"}, headers=current
    )
    assert changed.status_code == 204, changed.text
    assert client.get("/auth/me", headers=current).status_code == 200
    assert client.get("/auth/me", headers=other).status_code == 401
    assert client.post("/auth/token", data={"username": username, "password": PASSWORD}).status_code == 401
    assert (
        client.post("/auth/token", data={"username": username, "password": "a-new-pass-phrase-77"}).status_code == 200
    )


# --- item 6: revocation, deactivation, lifetime -----------------------------------------------------


def test_logout_revokes_the_bearer_token(
    client: TestClient, make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> None:
    headers = login(make_user("clinician"))
    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert client.get("/auth/me", headers=headers).status_code == 401


def test_session_logout_with_a_bearer_token_revokes_it(
    client: TestClient, make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> None:
    headers = login(make_user("clinician"))
    client.cookies.clear()
    assert client.post("/auth/session/logout", headers=headers).status_code == 204
    assert client.get("/auth/me", headers=headers).status_code == 401


def test_deactivating_an_account_revokes_every_token_and_session(
    app: FastAPI, client: TestClient, make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> None:
    admin = login(make_user("admin"))
    username = make_user("clinician")
    api_token = login(username)
    with TestClient(app) as browser:
        browser_login(browser, username)
        user_id = client.get("/auth/me", headers=api_token).json()["id"]
        response = client.patch(f"/users/{user_id}", json={"active": False}, headers=admin)
        assert response.status_code == 200 and response.json()["active"] is False
        assert client.get("/auth/me", headers=api_token).status_code == 401
        assert browser.get("/auth/session").status_code == 401
    assert client.post("/auth/token", data={"username": username, "password": PASSWORD}).status_code == 401
    # The tokens are revoked in the table, not only hidden behind the inactive account.
    with app.state.allpath.sessions() as session:
        assert all(session.scalars(select(TokenRow.revoked).where(TokenRow.user_id == user_id)))
    trail = client.get("/audit", params={"limit": 50}, headers=admin).json()
    assert any(a["action"] == "user.update" and username in (a["detail"] or "") for a in trail)


def test_only_an_admin_may_deactivate_an_account(
    client: TestClient, make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> None:
    clinician = login(make_user("clinician"))
    me = client.get("/auth/me", headers=clinician).json()["id"]
    assert client.patch(f"/users/{me}", json={"active": False}, headers=clinician).status_code == 403


def test_bearer_tokens_live_30_minutes_by_default(client: TestClient, make_user: Callable[..., str]) -> None:
    import datetime as dt

    before = dt.datetime.now(dt.UTC)
    token = client.post("/auth/token", data={"username": make_user("clinician"), "password": PASSWORD}).json()
    lifetime = dt.datetime.fromisoformat(token["expires_at"]) - before
    assert dt.timedelta(minutes=29) < lifetime <= dt.timedelta(minutes=31)
