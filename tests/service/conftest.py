"""Databases for the service tests: SQLite always, PostgreSQL too when 127.0.0.1:5432 answers.

Each PostgreSQL test session creates its own uniquely named database and drops it afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from allpath.api import create_app
from allpath.settings import AuthSettings, DatabaseSettings, Settings
from allpath.store.auth import create_user

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_reachable() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database; dropped on exit."""
    import psycopg

    name = f"allpath_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not usable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'allpath.db'}"
        return
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[FastAPI]:
    # Every test client shares the address "testclient", and the suite (schemathesis above all) fails
    # many log-ins on purpose: the address throttle is set out of reach here; test_service_throttle.py
    # tests it on apps of its own.
    application = create_app(
        settings=Settings(
            database=DatabaseSettings(url=database_url, sqlite_synchronous="NORMAL"),
            auth=AuthSettings(login_address_max_failures=10**9),
        )
    )
    yield application
    application.state.allpath.close()


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


PASSWORD = "test-password-1234"


@pytest.fixture(scope="session")
def make_user(app: FastAPI) -> Callable[..., str]:
    """Create an account and return its username (unique per call)."""

    def make(role: str = "clinician", patient_id: str | None = None) -> str:
        username = f"{role}-{secrets.token_hex(4)}"
        with app.state.allpath.sessions() as session:
            create_user(session, username, PASSWORD, role, patient_id)  # type: ignore[arg-type]
        return username

    return make


@pytest.fixture(scope="session")
def login(client: TestClient) -> Callable[[str], dict[str, str]]:
    def get_headers(username: str) -> dict[str, str]:
        response = client.post("/auth/token", data={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return get_headers


@pytest.fixture(scope="session")
def clinician(make_user: Callable[..., str], login: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return login(make_user("clinician"))


def new_patient(client: TestClient, headers: dict[str, str], birth_date: str = "2015-06-01", **extra: Any) -> str:
    response = client.post("/patients", json={"birth_date": birth_date, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def post_event(client: TestClient, headers: dict[str, str], patient_id: str, **event: Any) -> Any:
    version = event.pop("expected_version", None)
    body: dict[str, Any] = {"event": event}
    if version is not None:
        body["expected_version"] = version
    return client.post(f"/patients/{patient_id}/events", json=body, headers=headers)


def tmp_sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
