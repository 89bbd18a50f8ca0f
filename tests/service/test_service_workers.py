"""`allpath serve --workers 2` answers as one worker would: every piece of state two requests may
share (token revocation, log-in throttling, the CSRF key, the CDS replay cache) is the same in both
worker processes. Each request below goes on a fresh connection, which the kernel hands to either
worker; the test checks that both workers did serve requests."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from allpath.api.cds.prefetch import PREFETCH
from allpath.store import make_engine, make_sessionmaker, upgrade
from allpath.store.auth import create_user
from allpath.testing import RunningServer, free_port, running_server, worker_pids

PASSWORD = "workers-test-password"
ISSUER = "https://ehr.workers.example.org"
CDS_PATH = "/cds-services/allpath-patient-view"


def _cpu(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture(scope="module")
def cds_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, cds_key: rsa.RSAPrivateKey) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("workers")
    url = f"sqlite:///{work / 'workers.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        create_user(session, "two-worker-doc", PASSWORD, "clinician")
        create_user(session, "throttled-doc", PASSWORD, "clinician")
    engine.dispose()
    jwk = json.loads(RSAAlgorithm.to_jwk(cds_key.public_key()))
    jwk.update({"kid": "workers", "alg": "RS384", "use": "sig"})
    (work / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALLPATH_")},
        "ALLPATH_DATABASE_URL": url,
        "ALLPATH_CDS_JWKS": str(work / "jwks.json"),
        "ALLPATH_CDS_ALLOWED_ISSUERS": ISSUER,
        "ALLPATH_CDS_SERVICE_URL": f"http://127.0.0.1:{port}",
        # The accounts above were hashed at the test session's cheap cost (tests/conftest.py).
        "ALLPATH_INSECURE_TEST_PASSWORD_HASH": "1",
        # No ALLPATH_SECRET_KEY: `serve` must make one key for both workers.
    }
    with running_server(
        ["--workers", "2", "--log-level", "warning"], env=env, port=port, log_path=work / "server.log"
    ) as server:
        deadline = time.monotonic() + 60
        while len(worker_pids(server.process)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield server


def fresh(server: RunningServer) -> httpx.Client:
    """A client whose every request opens a new connection (so either worker may take it)."""
    return httpx.Client(base_url=server.base_url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def test_two_workers_both_serve(two_workers: RunningServer) -> None:
    workers = worker_pids(two_workers.process)
    assert len(workers) == 2
    before = {pid: _cpu(pid) for pid in workers}
    with fresh(two_workers) as client:
        for _ in range(200):
            assert client.get("/healthz").status_code == 200
    assert all(_cpu(pid) > before[pid] for pid in workers), "one worker served no request"


def test_a_token_revoked_through_one_worker_is_refused_by_both(two_workers: RunningServer) -> None:
    with fresh(two_workers) as client:
        login = {"username": "two-worker-doc", "password": PASSWORD}
        token = client.post("/auth/token", data=login).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert all(client.get("/auth/me", headers=headers).status_code == 200 for _ in range(10))
        assert client.post("/auth/logout", headers=headers).status_code == 204
        answers = [client.get("/auth/me", headers=headers).status_code for _ in range(20)]
    assert answers == [401] * 20


def test_failed_log_ins_are_counted_across_both_workers(two_workers: RunningServer) -> None:
    with fresh(two_workers) as client:
        wrong = {"username": "throttled-doc", "password": "not-the-password-at-all"}
        statuses = [client.post("/auth/token", data=wrong).status_code for _ in range(5)]
        right = client.post("/auth/token", data={"username": "throttled-doc", "password": PASSWORD})
    # Five failures lock the account (ALLPATH_LOGIN_MAX_FAILURES), wherever each one landed.
    assert statuses == [401] * 5
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) > 0


def test_a_csrf_token_from_one_worker_is_accepted_by_the_other(two_workers: RunningServer) -> None:
    for _ in range(8):
        with fresh(two_workers) as client:
            csrf = client.get("/auth/csrf").json()["csrf_token"]
            login = {"username": "two-worker-doc", "password": PASSWORD, "csrf_token": csrf}
            assert client.post("/auth/session", data=login).status_code == 200


def test_a_cds_token_used_on_one_worker_is_a_replay_on_the_other(
    two_workers: RunningServer, cds_key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/x", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "2010-01-01"},
            **{
                name: {"resourceType": "Bundle", "type": "searchset", "entry": []}
                for name in PREFETCH
                if name != "patient"
            },
        },
    }
    with fresh(two_workers) as client:
        for _ in range(6):
            claims = {
                "iss": ISSUER,
                "aud": two_workers.base_url + CDS_PATH,
                "iat": now,
                "exp": now + 120,
                "jti": str(uuid.uuid4()),
            }
            token = jwt.encode(claims, cds_key, algorithm="RS384", headers={"kid": "workers", "typ": "JWT"})
            headers = {"Authorization": f"Bearer {token}"}
            first = client.post(CDS_PATH, json=body, headers=headers)
            again = client.post(CDS_PATH, json=body, headers=headers)
            assert first.status_code == 200, first.text
            assert again.status_code == 401
            assert "replay" in again.text


def test_request_heads_over_the_limit_get_431_in_the_workers(two_workers: RunningServer) -> None:
    with fresh(two_workers) as client:
        response = client.get("/healthz", headers={"X-Padding": "a" * 40_000})
    assert response.status_code == 431


def test_cds_only_with_two_workers_and_no_replay_file_refuses_to_start(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from allpath.cli import app

    jwks = {
        "keys": [{**json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key())), "kid": "k"}]
    }
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    env = {
        "ALLPATH_CDS_JWKS": str(tmp_path / "jwks.json"),
        "ALLPATH_CDS_ALLOWED_ISSUERS": ISSUER,
        "ALLPATH_CDS_SERVICE_URL": "http://127.0.0.1:18998",
        "ALLPATH_CDS_REPLAY_DB": "",
        "ALLPATH_CDS_INSECURE_DEV": "",
    }
    result = CliRunner().invoke(app, ["serve", "--cds-only", "--workers", "2", "--port", "18998"], env=env)
    assert result.exit_code == 2
    assert "ALLPATH_CDS_REPLAY_DB" in result.output


SMART_ON = {
    "ALLPATH_SMART_CLIENT_ID": "allpath-test",
    "ALLPATH_SMART_ISSUERS": "http://127.0.0.1:18997/fhir",
    "ALLPATH_SMART_REDIRECT_URI": "http://127.0.0.1:18996/smart/callback",
}


def test_two_workers_are_refused_while_the_smart_launch_is_configured(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from allpath.cli import app

    env = {**SMART_ON, "ALLPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    result = CliRunner().invoke(app, ["serve", "--workers", "2", "--port", "18996"], env=env)
    assert result.exit_code == 2
    assert "--workers" in result.output and "SMART" in result.output


def test_the_default_is_one_worker_while_the_smart_launch_is_configured() -> None:
    from allpath.cli import _default_workers
    from allpath.settings import Settings

    assert _default_workers(Settings.from_env(SMART_ON), cds_only=False) == 1
    assert _default_workers(Settings.from_env({}), cds_only=False) == (os.cpu_count() or 1)
