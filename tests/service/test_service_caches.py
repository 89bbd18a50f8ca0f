"""What the serving caches must never change: a cached course or plan is the one the stored version
gives, every read is audited whether it was served from a cache or not, the CDS replay cache in the
database refuses a second use, and the CDS card templates stay bounded."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from allpath.api.cds.cards import TEMPLATE_CACHE_MAX, CardFactory
from allpath.api.importcache import CachingImporter
from allpath.engine import default_engine
from allpath.facts import PatientFacts
from allpath.plan import Alert, Citation
from allpath.store import make_engine, upgrade
from allpath.store.models import AuditRow
from allpath.store.replay import DatabaseReplayCache
from tests.service.conftest import new_patient, post_event


def _plan_reads(app: FastAPI, patient_id: str) -> int:
    with app.state.allpath.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditRow)
                .where(AuditRow.patient_id == patient_id, AuditRow.action == "plan.read")
            )
            or 0
        )


def test_every_plan_read_is_audited_even_when_served_from_the_cache(
    app: FastAPI, client: TestClient, clinician: dict[str, str]
) -> None:
    pid = new_patient(client, clinician)
    post_event(client, clinician, pid, type="diagnosed", date="2024-01-05", lineage="B")
    answers = [client.get(f"/patients/{pid}/plan", headers=clinician) for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert _plan_reads(app, pid) == 5


def test_a_plan_read_after_a_new_event_shows_the_event(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician)
    post_event(client, clinician, pid, type="diagnosed", date="2024-01-05", lineage="B")
    before = client.get(f"/patients/{pid}/plan", headers=clinician).json()
    post_event(client, clinician, pid, type="phase_started", date="2024-01-08", phase="induction")
    after = client.get(f"/patients/{pid}/plan", headers=clinician).json()
    assert before["version"] + 1 == after["version"]
    assert before["facts"]["phase_in_progress"] == "none"
    assert after["facts"]["phase_in_progress"] == "induction"


def test_a_birth_date_change_changes_the_cached_plan(client: TestClient, clinician: dict[str, str]) -> None:
    pid = new_patient(client, clinician, birth_date="2015-06-01")
    post_event(client, clinician, pid, type="diagnosed", date="2024-01-05", lineage="B")
    age = client.get(f"/patients/{pid}/plan?as_of=2025-01-01", headers=clinician).json()["facts"]["age_years"]
    version = client.get(f"/patients/{pid}", headers=clinician).json()["version"]
    changed = client.patch(
        f"/patients/{pid}", headers=clinician, json={"expected_version": version, "birth_date": "2005-06-01"}
    )
    assert changed.status_code == 200
    later = client.get(f"/patients/{pid}/plan?as_of=2025-01-01", headers=clinician).json()["facts"]["age_years"]
    assert later == age + 10


def test_a_patient_account_still_cannot_read_another_patients_cached_plan(
    client: TestClient,
    clinician: dict[str, str],
    make_user: Callable[..., str],
    login: Callable[[str], dict[str, str]],
) -> None:
    mine = new_patient(client, clinician)
    other = new_patient(client, clinician)
    for pid in (mine, other):
        post_event(client, clinician, pid, type="diagnosed", date="2024-01-05", lineage="B")
        assert client.get(f"/patients/{pid}/plan", headers=clinician).status_code == 200  # now cached
    family = login(make_user("patient", mine))
    assert client.get(f"/patients/{mine}/plan", headers=family).status_code == 200
    assert client.get(f"/patients/{other}/plan", headers=family).status_code == 404


def test_the_database_replay_cache_refuses_a_second_use_until_the_token_expires(database_url: str) -> None:
    # SQLite and PostgreSQL (when reachable): the two answer an upsert's row count differently.
    engine = make_engine(database_url)
    upgrade(engine)
    first, other_worker = DatabaseReplayCache(engine), DatabaseReplayCache(engine)
    jti = f"jti-{uuid.uuid4()}"
    assert first.check_and_add("https://ehr", jti, forget_after=1_000.0, now=900.0)
    assert not other_worker.check_and_add("https://ehr", jti, forget_after=1_000.0, now=950.0)
    assert other_worker.check_and_add("https://ehr", jti + "-2", forget_after=1_000.0, now=950.0)
    # Once the first use has expired the pair may be taken again (the token itself is expired by then).
    assert other_worker.check_and_add("https://ehr", jti, forget_after=2_000.0, now=1_001.0)
    engine.dispose()


def test_card_templates_stay_bounded_when_every_call_brings_new_alerts() -> None:
    engine = default_engine()
    factory = CardFactory(engine.kb, engine.kb.disclaimer)
    source_id, source = next(iter(engine.kb.sources.items()))
    facts = PatientFacts(age_years=8, disease_status="newly_diagnosed", lineage="B")
    for i in range(TEMPLATE_CACHE_MAX + 500):
        # Like an import alert: a new object on every call.
        alert = Alert(
            id=f"import-{i}",
            severity="warning",
            message="The record had a problem.",
            citations=[Citation(source_id=source_id, section=source.sections[0])],
        )
        factory.plan_cards(engine.recommend(facts, extra_alerts=[alert]), f"hook-{i}")
    assert len(factory._templates) <= TEMPLATE_CACHE_MAX


class _CountingImporter:
    def __init__(self) -> None:
        self.calls = 0

    def wants(self, resource: dict[str, Any]) -> bool:
        return True

    def from_resources(self, resources: list[dict[str, Any]], *, validated: bool = False) -> Any:
        self.calls += 1
        if any(r.get("broken") for r in resources):
            raise ValueError("cannot read this record")
        return {"read": [r["id"] for r in resources]}


def test_the_cds_import_is_reused_only_for_the_same_resources_on_the_same_day() -> None:
    inner = _CountingImporter()
    days = iter([dt.date(2026, 12, 2)] * 3 + [dt.date(2026, 12, 3)] * 2)
    importer = CachingImporter(inner, today=lambda: next(days))
    chart = [{"resourceType": "Patient", "id": "p1", "birthDate": "2010-01-01"}]
    first = importer.from_resources(chart)
    assert importer.from_resources([dict(chart[0])]) is first  # same content, another object
    assert inner.calls == 1
    importer.from_resources([{**chart[0], "birthDate": "2011-01-01"}])
    assert inner.calls == 2
    importer.from_resources(chart)  # the next day: ages change, so it is read again
    assert inner.calls == 3


def test_a_cds_record_that_cannot_be_read_is_read_again_every_time() -> None:
    inner = _CountingImporter()
    importer = CachingImporter(inner)
    broken = [{"resourceType": "Patient", "id": "p1", "broken": True}]
    for _ in range(2):
        with pytest.raises(ValueError):
            importer.from_resources(broken)
    assert inner.calls == 2


def _audit_actions(app: FastAPI) -> list[str]:
    with app.state.allpath.sessions() as session:
        return list(session.scalars(select(AuditRow.action).order_by(AuditRow.id)))


def test_the_patient_list_reads_every_course_in_one_audited_read_and_agrees_with_each_course(
    app: FastAPI, client: TestClient, clinician: dict[str, str]
) -> None:
    ids = [new_patient(client, clinician) for _ in range(3)]
    post_event(client, clinician, ids[0], type="diagnosed", date="2024-01-05", lineage="B")
    post_event(client, clinician, ids[0], type="phase_started", date="2024-01-08", phase="induction")
    post_event(client, clinician, ids[1], type="diagnosed", date="2024-02-05", lineage="T")
    before = _audit_actions(app)
    listed = {p["id"]: p for p in client.get("/patients?limit=200", headers=clinician).json()["items"]}
    assert _audit_actions(app)[len(before) :] == ["course.list"]
    for pid in ids[:2]:
        course = client.get(f"/patients/{pid}/plan", headers=clinician).json()["course"]
        assert (listed[pid]["status"], listed[pid]["current_phase"]) == (course["status"], course["current_phase"])
    assert listed[ids[0]]["current_phase"] == "induction"
    assert listed[ids[2]]["status"] == "not_diagnosed"
    # A new event changes the record's version, so the list reads it again rather than the cache.
    post_event(client, clinician, ids[1], type="phase_started", date="2024-02-08", phase="induction")
    relisted = {p["id"]: p for p in client.get("/patients?limit=200", headers=clinician).json()["items"]}
    assert relisted[ids[1]]["current_phase"] == "induction"
