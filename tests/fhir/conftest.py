"""A service for the FHIR HTTP tests (`$apply`): one app over the base pack, with one clinician's bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from allpath.api import create_app
from allpath.knowledge import load_kb
from allpath.settings import DatabaseSettings, Settings
from allpath.store.auth import create_user

APPLY_URL = "/fhir/PlanDefinition/allpath-all-treatment-options/$apply"
PASSWORD = "test-password-1234"


@pytest.fixture(scope="session")
def apply_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("apply") / "allpath.db"
    app = create_app(load_kb(["base"]), settings=Settings(database=DatabaseSettings(url=f"sqlite:///{db}")))
    with app.state.allpath.sessions() as session:
        create_user(session, "apply-doc", PASSWORD, "clinician", None)
    with TestClient(app) as test_client:
        yield test_client
    app.state.allpath.close()


@pytest.fixture(scope="session")
def apply_auth(apply_client: TestClient) -> dict[str, str]:
    response = apply_client.post("/auth/token", data={"username": "apply-doc", "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def apply_parameters(bundle: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    """`$apply`'s Parameters for a Bundle: its Patient as `subject` (unless given), the Bundle as `data`."""
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueString": subject or f"Patient/{patient['id']}"},
            {"name": "data", "resource": bundle},
        ],
    }
