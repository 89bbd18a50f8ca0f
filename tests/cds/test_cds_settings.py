"""Configuration from the environment, and the explicit, loud insecure development mode."""

from __future__ import annotations

import json
import logging

import pytest
from cdskit import ISSUER, SERVICE_URL, bearer, full_prefetch, hook_request, jwks, token
from fastapi.testclient import TestClient

from allpath.api.cds import CdsConfigError, CdsSettings, create_cds_app
from allpath.api.cds.router import INSECURE_WARNING
from allpath.settings import Settings


def env(rsa, **more: str) -> dict[str, str]:
    values = {
        "ALLPATH_CDS_JWKS": json.dumps(jwks(rsa)),
        "ALLPATH_CDS_ALLOWED_ISSUERS": f" {ISSUER} , https://second.example.org ",
        "ALLPATH_CDS_SERVICE_URL": SERVICE_URL + "/",
    }
    values.update(more)
    return values


def test_settings_read_inline_jwks_issuers_and_url(rsa):
    settings = CdsSettings.from_env(env(rsa))
    assert settings.allowed_issuers == (ISSUER, "https://second.example.org")
    assert settings.service_url == SERVICE_URL
    assert settings.jwks["keys"][0]["kid"] == rsa.kid
    assert not settings.insecure_dev
    assert settings.replay_db is None


def test_settings_read_the_replay_db_path(rsa, tmp_path):
    path = str(tmp_path / "replay.sqlite")
    assert CdsSettings.from_env(env(rsa, ALLPATH_CDS_REPLAY_DB=path)).replay_db == path


def test_settings_read_jwks_from_a_file(rsa, tmp_path):
    path = tmp_path / "ehr-jwks.json"
    path.write_text(json.dumps(jwks(rsa)), encoding="utf-8")
    assert CdsSettings.from_env(env(rsa, ALLPATH_CDS_JWKS=str(path))).jwks["keys"][0]["kid"] == rsa.kid


def test_service_url_given_with_cds_services_means_the_same_base(rsa):
    settings = CdsSettings.from_env(env(rsa, ALLPATH_CDS_SERVICE_URL=SERVICE_URL + "/cds-services"))
    assert settings.service_url == SERVICE_URL


@pytest.mark.parametrize("missing", ["ALLPATH_CDS_JWKS", "ALLPATH_CDS_ALLOWED_ISSUERS", "ALLPATH_CDS_SERVICE_URL"])
def test_authentication_cannot_start_half_configured(rsa, missing):
    values = env(rsa)
    del values[missing]
    with pytest.raises(CdsConfigError, match=missing):
        CdsSettings.from_env(values)


@pytest.mark.parametrize(
    ("value", "words"),
    [("{not json", "malformed JSON"), ('{"keys": []}', "non-empty 'keys'"), ("/no/such/jwks.json", "cannot read")],
)
def test_bad_jwks_is_a_clear_configuration_error(rsa, value, words):
    with pytest.raises(CdsConfigError, match=words):
        CdsSettings.from_env(env(rsa, ALLPATH_CDS_JWKS=value))


def test_relative_service_url_is_refused(rsa):
    with pytest.raises(CdsConfigError, match="absolute"):
        CdsSettings.from_env(env(rsa, ALLPATH_CDS_SERVICE_URL="cds.example.org"))


def test_app_from_environment_checks_aud_against_the_configured_url(engine, rsa, importer, monkeypatch):
    for name, value in env(rsa).items():
        monkeypatch.setenv(name, value)
    settings = CdsSettings.from_section(Settings.from_env().cds)
    client = TestClient(create_cds_app(engine, settings, importer=importer))
    assert client.get("/cds-services", headers=bearer(token(rsa))).status_code == 200
    assert client.get("/cds-services").status_code == 401


def test_insecure_dev_mode_must_be_switched_on_explicitly():
    with pytest.raises(CdsConfigError):
        CdsSettings.from_env({})


def test_insecure_dev_mode_warns_loudly_and_skips_authentication(engine, importer, caplog):
    settings = CdsSettings.from_env({"ALLPATH_CDS_INSECURE_DEV": "1"})
    with caplog.at_level(logging.WARNING, logger="allpath.cds"):
        client = TestClient(create_cds_app(engine, settings, importer=importer))
    assert INSECURE_WARNING in caplog.text
    assert "authentication is OFF" in INSECURE_WARNING
    assert client.get("/cds-services").status_code == 200
    response = client.post("/cds-services/allpath-patient-view", json=hook_request(prefetch=full_prefetch("p1")))
    assert response.status_code == 200 and response.json()["cards"]


@pytest.mark.parametrize("variable", ["ALLPATH_CDS_REPLAY_DB", "ALLPATH_CDS_FEEDBACK_DB"])
def test_a_state_file_that_cannot_be_opened_is_a_configuration_error_naming_the_variable(rsa, tmp_path, variable):
    from allpath.api.cds.router import create_cds_router
    from allpath.engine import default_engine

    unopenable = str(tmp_path / "no-such-folder" / "state.sqlite")
    settings = CdsSettings.from_env(env(rsa, **{variable: unopenable}))
    with pytest.raises(CdsConfigError, match=f"{variable}: cannot open"):
        create_cds_router(default_engine(), settings)


def test_the_cds_only_app_answers_errors_in_the_api_error_shape(client: TestClient) -> None:
    response = client.get("/no-such-path")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "details": []}
