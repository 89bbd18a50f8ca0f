"""`allpath serve`: refuses to start half-configured; starts the CDS app when configured."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from allpath.cli import app

CDS_VARS = ("ALLPATH_CDS_JWKS", "ALLPATH_CDS_ALLOWED_ISSUERS", "ALLPATH_CDS_SERVICE_URL", "ALLPATH_CDS_INSECURE_DEV")


def test_serve_without_configuration_exits_2_naming_the_variables(monkeypatch):
    for name in CDS_VARS:
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["serve", "--cds-only", "--port", "18999"])
    assert result.exit_code == 2
    assert "ALLPATH_CDS_JWKS" in result.output and "ALLPATH_CDS_INSECURE_DEV=1" in result.output


def test_serve_starts_uvicorn_on_loopback_with_the_cds_app(monkeypatch):
    import uvicorn

    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: started.update(app=application, **kw))
    monkeypatch.setenv("ALLPATH_CDS_INSECURE_DEV", "1")
    result = CliRunner().invoke(app, ["serve", "--cds-only", "--port", "18999"])
    assert result.exit_code == 0, result.output
    assert (started["host"], started["port"]) == ("127.0.0.1", 18999)
    from fastapi.testclient import TestClient

    assert TestClient(started["app"]).get("/cds-services").json()["services"]
    assert "authentication is OFF" in result.output
