"""Log-in throttling (#15 item 1): per account and per client address, in the database, audited."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from allpath.api import create_app
from allpath.settings import AuthSettings, DatabaseSettings, Settings
from allpath.store.auth import create_user
from allpath.store.models import AuditRow, LoginThrottleRow

PASSWORD = "throttle-test-password-9"
LIMITS = AuthSettings(
    login_max_failures=10, login_address_max_failures=25, login_lock_seconds=30, login_lock_max_seconds=600
)


def settings_for(url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=url), auth=LIMITS)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('throttle') / 't.db'}"


@pytest.fixture(scope="module")
def shared_app(database_url: str) -> Iterator[FastAPI]:
    application = create_app(settings=settings_for(database_url))
    with application.state.allpath.sessions() as session:
        for name in ("victim", "other-1", "other-2", "other-3"):
            create_user(session, name, PASSWORD, "clinician")
    yield application
    application.state.allpath.close()


@pytest.fixture
def app(shared_app: FastAPI) -> FastAPI:
    """The module's app with no failure counted and no lock: what a fresh database would give.

    The counts and locks (login_throttle rows) are all the state these tests change besides
    the audit trail, which they only search; one app for the module spares a migration per test.
    """
    with shared_app.state.allpath.sessions() as session:
        session.execute(delete(LoginThrottleRow))
        session.commit()
    return shared_app


def token(client: TestClient, username: str, password: str) -> int:
    return client.post("/auth/token", data={"username": username, "password": password}).status_code


def audit_actions(app: FastAPI) -> list[tuple[str, str, str | None]]:
    with app.state.allpath.sessions() as session:
        return [(r.action, r.outcome, r.detail) for r in session.scalars(select(AuditRow).order_by(AuditRow.id))]


def expire_locks(app: FastAPI) -> None:
    """What waiting for the lock to end would do, without a timed test."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with app.state.allpath.sessions() as session:
        session.execute(update(LoginThrottleRow).values(locked_until=past))
        session.commit()


def test_eleventh_wrong_password_is_throttled_with_retry_after(app: FastAPI) -> None:
    with TestClient(app) as client:
        assert [token(client, "victim", f"wrong-guess-{i:04d}") for i in range(10)] == [401] * 10
        response = client.post("/auth/token", data={"username": "victim", "password": "wrong-guess-0010"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 30
    assert response.json()["details"][0]["field"] == "username"
    actions = audit_actions(app)
    assert ("auth.lock", "denied", "account locked for 30 s after 10 failures") in actions
    assert ("auth.throttled", "denied") in {(a, o) for a, o, _ in actions}


def test_the_right_password_is_refused_while_the_account_is_locked(app: FastAPI) -> None:
    with TestClient(app) as client:
        for i in range(30):
            client.post("/auth/token", data={"username": "victim", "password": f"wrong-guess-{i:04d}"})
        assert token(client, "victim", PASSWORD) == 429
        expire_locks(app)
        assert token(client, "victim", PASSWORD) == 200


def test_each_failure_after_the_lock_doubles_it(app: FastAPI) -> None:
    with TestClient(app) as client:
        for i in range(10):
            token(client, "victim", f"wrong-guess-{i:04d}")
        expire_locks(app)
        assert token(client, "victim", "wrong-guess-again") == 401
        retry = int(client.post("/auth/token", data={"username": "victim", "password": "x"}).headers["retry-after"])
    assert 30 < retry <= 60


def test_a_successful_log_in_clears_the_accounts_count(app: FastAPI) -> None:
    with TestClient(app) as client:
        assert [token(client, "victim", f"wrong-guess-{i:04d}") for i in range(9)] == [401] * 9
        assert token(client, "victim", PASSWORD) == 200
        assert [token(client, "victim", f"wrong-guess-{i:04d}") for i in range(9)] == [401] * 9


def test_one_address_spraying_many_accounts_is_throttled(app: FastAPI) -> None:
    names = ["other-1", "other-2", "other-3", "nobody-a", "nobody-b"]
    with TestClient(app) as client:
        codes = [token(client, names[i % len(names)], f"wrong-guess-{i:04d}") for i in range(25)]
        assert codes == [401] * 25  # no account reached its own limit of 10
        assert token(client, "other-1", PASSWORD) == 429  # but the address reached 25
    with TestClient(app, client=("203.0.113.9", 50000)) as elsewhere:
        assert token(elsewhere, "other-1", PASSWORD) == 200


def test_an_account_name_that_does_not_exist_is_throttled_the_same(app: FastAPI) -> None:
    with TestClient(app) as client:
        assert [token(client, "no-such-user", f"wrong-guess-{i:04d}") for i in range(10)] == [401] * 10
        assert token(client, "no-such-user", "anything-at-all") == 429


def test_web_login_form_is_throttled_with_retry_after(app: FastAPI) -> None:
    with TestClient(app) as browser:
        for i in range(10):
            html = browser.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
            browser.post("/login", data={"username": "victim", "password": f"wrong-{i:06d}", "csrf_token": csrf})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text).group(1)  # type: ignore[union-attr]
        response = browser.post("/login", data={"username": "victim", "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.text
    assert int(response.headers["retry-after"]) >= 1


def test_workers_sharing_the_database_share_the_counts(app: FastAPI, database_url: str) -> None:
    # A second app on the same database is what a second worker process is.
    second = create_app(settings=settings_for(database_url))
    try:
        with TestClient(app) as one, TestClient(second) as two:
            for i in range(10):
                token(one if i % 2 else two, "victim", f"wrong-guess-{i:04d}")
            assert token(one, "victim", PASSWORD) == 429
            assert token(two, "victim", PASSWORD) == 429
    finally:
        second.state.allpath.close()


def test_throttle_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLPATH_LOGIN_MAX_FAILURES", "7")
    monkeypatch.setenv("ALLPATH_LOGIN_LOCK_SECONDS", "2")
    settings = Settings.from_env()
    assert (settings.auth.login_max_failures, settings.auth.login_lock_seconds) == (7, 2)


@pytest.mark.postgres
def test_throttle_counts_and_locks_on_postgresql() -> None:
    from tests.service.conftest import postgres_database, postgres_reachable

    if not postgres_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with postgres_database() as url:
        application = create_app(settings=settings_for(url))
        try:
            with application.state.allpath.sessions() as session:
                create_user(session, "victim", PASSWORD, "clinician")
            with TestClient(application) as client:
                assert [token(client, "victim", f"wrong-guess-{i:04d}") for i in range(10)] == [401] * 10
                assert token(client, "victim", PASSWORD) == 429
        finally:
            application.state.allpath.close()


def test_a_nul_in_the_name_tried_is_counted_not_a_500(app: FastAPI) -> None:
    from allpath.store.throttle import keys_for

    assert keys_for(AuthSettings(), "a\x00b", "127.0.0.1")[0].key == "user:a?b"
    with TestClient(app) as client:
        assert token(client, "a\x00b", "x") == 401
