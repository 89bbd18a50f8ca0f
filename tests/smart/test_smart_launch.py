"""SMART on FHIR EHR launch, end to end: allpath against a FHIR server and authorization server the tests start.

The browser is a TestClient of allpath (its cookies) that carries each redirect across by hand,
so every hop is visible: allpath -> authorize -> allpath callback -> plan page. allpath's own
requests to the EHR (discovery, token, FHIR reads) go over real HTTP to `tests/smart/fake_ehr.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from allpath.api import create_app
from allpath.engine import Engine
from allpath.fhir import Importer
from allpath.knowledge import load_kb
from allpath.settings import DatabaseSettings, Settings, SmartSettings
from tests.smart.fake_ehr import CLIENT_ID, Ehr, running_ehr

ROOT = Path(__file__).resolve().parents[2]
REDIRECT = "http://testserver/smart/callback"
BUNDLE = ROOT / "examples" / "fhir" / "newly-diagnosed-adult-ph-positive-cns.bundle.json"


@pytest.fixture(scope="module")
def ehr() -> Iterator[Ehr]:
    with running_ehr(REDIRECT) as server:
        bundle = json.loads(BUNDLE.read_text())
        resources = [e["resource"] for e in bundle["entry"]]
        patient_id = next(r["id"] for r in resources if r["resourceType"] == "Patient")
        server.records[patient_id] = resources
        yield server


@pytest.fixture(scope="module")
def app(ehr: Ehr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    db = tmp_path_factory.mktemp("smart") / "allpath.db"
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{db}"),
        smart=SmartSettings(client_id=CLIENT_ID, issuers=(ehr.fhir_base,), redirect_uri=REDIRECT, timeout_seconds=5),
    )
    application = create_app(load_kb(["base"]), settings=settings)
    yield application
    application.state.allpath.close()


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        yield client


def _patient_id() -> str:
    return str(next(e["resource"]["id"] for e in json.loads(BUNDLE.read_text())["entry"]))


def _to_authorize(browser: TestClient, ehr: Ehr, launch: str) -> str:
    response = browser.get("/smart/launch", params={"iss": ehr.fhir_base, "launch": launch})
    assert response.status_code == 302, response.text
    return response.headers["location"]


def _authorize(url: str) -> str:
    """The authorization server's answer: where it sends the browser back to (allpath's callback)."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return location.removeprefix("http://testserver")


def test_ehr_launch_reads_the_record_and_opens_the_clinician_plan(
    app: FastAPI, browser: TestClient, ehr: Ehr, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ehr.seen.clear()
    authorize = _to_authorize(browser, ehr, ehr.new_launch(_patient_id()))
    query = parse_qs(urlsplit(authorize).query)
    # PKCE S256, the FHIR server as audience, the EHR's launch id; the verifier itself never leaves allpath.
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["aud"] == [ehr.fhir_base] and query["client_id"] == [CLIENT_ID]
    callback = _authorize(authorize)
    done = browser.get(callback)
    assert done.status_code == 303, done.text
    page = browser.get(done.headers["location"])
    assert page.status_code == 200

    engine: Engine = app.state.allpath.recommender
    imported = Importer(engine.kb).from_bundle(json.loads(BUNDLE.read_text()), as_of=dt.date.today())
    plan = engine.recommend(imported.facts, extra_alerts=imported.alerts)
    shown = re.findall(r'<li class="recommendation[^"]*" data-rule="([^"]+)"', page.text)
    # The shared plan view groups options by strength, so the order is the groups'; each shows once.
    assert sorted(shown) == sorted(plan.recommendation_ids()) and shown
    assert "tki-ph-positive" in shown  # the record's Ph+ result reached the plan

    pid = _patient_id()
    assert ehr.seen[:3] == ["GET /fhir/.well-known/smart-configuration", "GET /auth/authorize", "POST /auth/token"]
    assert f"GET /fhir/Patient/{pid}" in ehr.seen and "GET /fhir/Observation" in ehr.seen
    # The access token reached neither the browser nor the log.
    (token,) = [t for t, p in ehr.tokens.items() if p == pid][-1:]
    allpath_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("allpath"))
    for text in (page.text, done.headers["location"], callback, caplog.text):
        assert token not in text
    assert "code=" not in allpath_log and query["state"][0] not in allpath_log


def test_a_callback_with_a_state_allpath_never_issued_is_refused(browser: TestClient, ehr: Ehr) -> None:
    callback = _authorize(_to_authorize(browser, ehr, ehr.new_launch(_patient_id())))
    forged = re.sub(r"state=[^&]+", "state=not-a-state-we-issued", callback)
    ehr.seen.clear()
    response = browser.get(forged)
    assert response.status_code == 400
    assert "state: is not a launch this server started" in response.text
    assert "POST /auth/token" not in ehr.seen  # the code was never spent


def test_a_state_is_good_once(browser: TestClient, ehr: Ehr) -> None:
    callback = _authorize(_to_authorize(browser, ehr, ehr.new_launch(_patient_id())))
    assert browser.get(callback).status_code == 303
    replay = browser.get(callback)
    assert replay.status_code == 400 and "state:" in replay.text


def test_a_state_issued_to_another_browser_is_refused(app: FastAPI, browser: TestClient, ehr: Ehr) -> None:
    callback = _authorize(_to_authorize(browser, ehr, ehr.new_launch(_patient_id())))
    with TestClient(app, follow_redirects=False) as other:
        response = other.get(callback)
    assert response.status_code == 400 and "state: was issued to another browser" in response.text


def test_a_launch_from_an_untrusted_iss_is_refused_before_anything_is_fetched(browser: TestClient, ehr: Ehr) -> None:
    ehr.seen.clear()
    for iss in (f"{ehr.base}/another-fhir", "https://evil.example.org/fhir"):
        response = browser.get("/smart/launch", params={"iss": iss, "launch": "x"})
        assert response.status_code == 400
        assert "iss: is not a FHIR server this deployment trusts" in response.text
    assert browser.get("/smart/launch", params={"launch": "x"}).status_code == 400
    assert ehr.seen == []


def test_a_denied_authorization_shows_denied_and_spends_no_token(browser: TestClient, ehr: Ehr) -> None:
    callback = _authorize(_to_authorize(browser, ehr, "deny"))
    assert "error=access_denied" in callback
    ehr.seen.clear()
    response = browser.get(callback)
    assert response.status_code == 403
    assert "the authorization server answered access_denied" in response.text
    assert ehr.seen == []


def test_a_code_the_authorization_server_refuses_is_403_naming_code(browser: TestClient, ehr: Ehr) -> None:
    callback = _authorize(_to_authorize(browser, ehr, ehr.new_launch(_patient_id())))
    tampered = re.sub(r"code=[^&]+", "code=stolen-or-made-up", callback)
    response = browser.get(tampered)
    assert response.status_code == 403 and "code: invalid_grant" in response.text


def test_an_opened_plan_is_only_for_the_browser_that_launched_it(app: FastAPI, browser: TestClient, ehr: Ehr) -> None:
    done = browser.get(_authorize(_to_authorize(browser, ehr, ehr.new_launch(_patient_id()))))
    with TestClient(app, follow_redirects=False) as other:
        assert other.get(done.headers["location"]).status_code == 404
    assert browser.get(done.headers["location"]).status_code == 200


def test_the_launch_routes_are_absent_until_smart_is_configured(app: FastAPI, tmp_path: Path) -> None:
    application = create_app(
        app.state.allpath.kb, settings=Settings(database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'a.db'}"))
    )
    with TestClient(application) as client:
        response: Any = client.get("/smart/launch", params={"iss": "https://x/fhir", "launch": "1"})
    application.state.allpath.close()
    assert response.status_code == 404
