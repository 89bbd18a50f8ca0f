"""Durability: writers post events while the server is killed with SIGKILL; after a restart every
acknowledged event is there, and no partial write is visible. SQLite, and PostgreSQL when reachable."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from allpath.store import Actor, Records, make_engine, make_sessionmaker, upgrade
from allpath.store.auth import create_user
from allpath.store.models import AuditRow, EventRow, PatientRow
from allpath.testing import running_server
from tests.service.conftest import postgres_database, postgres_reachable

PASSWORD = "durability-password"
FAKE_NAME = "Ottoline Fakeperson-Durable"
FAKE_BIRTH = dt.date(2011, 9, 23)
WRITERS = 6
PATIENTS = 3


@contextlib.contextmanager
def server(database_url: str, log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    # The account was hashed at the test session's cheap cost (tests/conftest.py): kept so.
    env = {**os.environ, "ALLPATH_SECRET_KEY": "durability-test-key", "ALLPATH_INSECURE_TEST_PASSWORD_HASH": "1"}
    with running_server(["--database-url", database_url], env=env, log_path=log_path, graceful_stop=False) as running:
        yield running.process, running.base_url


def prepare(database_url: str) -> list[str]:
    engine = make_engine(database_url, sqlite_synchronous="FULL")
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        create_user(session, "durable-doc", PASSWORD, "clinician")
        records = Records(session, Actor(username="durable-doc", role="clinician"))
        ids = []
        for _ in range(PATIENTS):
            pid = records.create_patient(FAKE_BIRTH, FAKE_NAME).id
            records.append_event(pid, {"type": "diagnosed", "date": "2020-01-01", "lineage": "B"})
            ids.append(pid)
    engine.dispose()
    return ids


def write_until_killed(
    base: str, token: str, patients: list[str], acked: list[tuple[str, str]], errors: list[str], stop: threading.Event
) -> None:
    rng = random.Random()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=15) as client:
        while not stop.is_set():
            pid = rng.choice(patients)
            day = dt.date(2020, 1, 2) + dt.timedelta(days=rng.randrange(1500))
            event = {"type": "mrd_result", "date": day.isoformat(), "result": rng.choice(["positive", "negative"])}
            try:
                if rng.random() < 0.2:
                    client.get(f"/patients/{pid}")
                response = client.post(f"/patients/{pid}/events", json={"event": event})
            except httpx.HTTPError:
                return  # the server is gone: whatever was not acknowledged may or may not be there
            if response.status_code != 201:
                errors.append(f"{response.status_code} {response.text}")
                return
            acked.append((pid, response.json()["event"]["id"]))


def run_kill_and_restart(database_url: str, tmp_path: Path) -> None:
    patients = prepare(database_url)
    log_path = tmp_path / "server.log"
    acked: list[tuple[str, str]] = []
    errors: list[str] = []
    with server(database_url, log_path) as (process, base):
        token = httpx.post(f"{base}/auth/token", data={"username": "durable-doc", "password": PASSWORD}).json()
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=write_until_killed, args=(base, token["access_token"], patients, acked, errors, stop)
            )
            for _ in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acked) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)  # mid-run: writers are still posting
        process.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == [], errors[:3]
    assert len(acked) >= 50, "too few writes acknowledged before the kill to prove anything"

    with server(database_url, log_path) as (_process, base):
        token = httpx.post(f"{base}/auth/token", data={"username": "durable-doc", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        stored = {pid: httpx.get(f"{base}/patients/{pid}/events", headers=headers).json() for pid in patients}
        for pid in patients:
            assert httpx.get(f"{base}/patients/{pid}/plan", headers=headers).status_code == 200
    for pid, event_id in acked:
        assert event_id in {e["id"] for e in stored[pid]}, f"acknowledged event {event_id} lost"

    # No partial write: each event arrived with its version bump and its audit row, or not at all.
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        for pid in patients:
            seqs = list(session.scalars(select(EventRow.seq).where(EventRow.patient_id == pid).order_by(EventRow.seq)))
            assert seqs == list(range(1, len(seqs) + 1))
            assert session.get(PatientRow, pid).version == len(seqs)  # type: ignore[union-attr]
            audited = session.scalar(
                select(func.count())
                .select_from(AuditRow)
                .where(AuditRow.patient_id == pid, AuditRow.action == "event.append", AuditRow.outcome == "ok")
            )
            assert audited == len(seqs)
            assert len(stored[pid]) == len(seqs)
    engine.dispose()
    log_text = log_path.read_text(errors="replace")
    assert FAKE_NAME not in log_text and FAKE_BIRTH.isoformat() not in log_text


@pytest.mark.slow
def test_sigkill_mid_run_loses_no_acknowledged_event_sqlite(tmp_path: Path) -> None:
    run_kill_and_restart(f"sqlite:///{tmp_path / 'durable.db'}", tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_mid_run_loses_no_acknowledged_event_postgresql(tmp_path: Path) -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with postgres_database() as url:
        run_kill_and_restart(url, tmp_path)
