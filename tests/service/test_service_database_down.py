"""A database that goes away under a running service: 503 with the JSON error body, never a 500."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fastapi.testclient import TestClient

from allpath.api import create_app
from allpath.store import make_engine, make_sessionmaker


def test_requests_get_503_with_retry_after_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    app = create_app(database_url=f"sqlite:///{tmp_path / 'allpath.db'}")
    context = app.state.allpath
    unreachable = make_engine(f"sqlite:///{tmp_path / 'gone' / 'allpath.db'}")
    app.state.allpath = dataclasses.replace(context, sessions=make_sessionmaker(unreachable))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            for response in (
                client.get("/patients", headers={"Authorization": "Bearer some-token"}),
                client.post("/auth/token", data={"username": "someone", "password": "whatever-1234"}),
            ):
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "database unavailable, try again shortly"
                assert response.headers["retry-after"] == "5"
    finally:
        unreachable.dispose()
        context.close()
