"""The storage layer itself: migrations match the models, SQLite settings, the demo seed."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from allpath.cli import app as cli_app
from allpath.course import replay
from allpath.store import Actor, Records, make_engine, make_sessionmaker, upgrade
from allpath.store.db import normalise_url
from allpath.store.demo import DEMO_PATIENTS, seed_demo
from allpath.store.migrate import downgrade, head_revision, is_up_to_date
from allpath.store.models import Base
from allpath.store.service import EventRecord


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    assert is_up_to_date(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    downgrade(engine, "base")
    assert "events" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert {"patients", "events", "users", "audit", "tokens", "login_throttle", "cds_jti"} <= set(
        inspect(engine).get_table_names()
    )
    assert head_revision() == "0004"
    downgrade(engine, "0003")
    assert "cds_jti" not in inspect(engine).get_table_names()
    downgrade(engine, "0001")
    assert "login_throttle" not in inspect(engine).get_table_names()
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_demo_seed_covers_the_points_of_treatment(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        result = seed_demo(session)
        again = seed_demo(session)
        records = Records(session, Actor(username="t", role="clinician"))
        states = {}
        for key, pid in result.patients.items():
            states[key] = replay([e.to_event() for e in records.list_events(pid)])
    engine.dispose()
    assert result.created and not again.created
    assert len(result.patients) == len(DEMO_PATIENTS) >= 6
    assert states["newly-diagnosed"].status == "newly_diagnosed"
    assert states["induction"].current_phase == "induction"
    assert states["consolidation"].current_phase == "consolidation"
    assert states["maintenance"].current_phase == "maintenance"
    assert states["relapse"].status == "relapsed"
    assert states["refractory"].status == "refractory"
    assert states["hospice"].in_hospice
    assert states["completed"].treatment_completed
    assert Counter(role for role, _, _ in result.logins.values()) == {"patient": 2, "admin": 1, "clinician": 1}


def test_cli_db_commands_migrate_and_print_fake_logins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    upgraded = runner.invoke(cli_app, ["db", "upgrade", "--database-url", url])
    assert upgraded.exit_code == 0 and "revision 0004" in upgraded.output
    seeded = runner.invoke(cli_app, ["db", "seed-demo", "--database-url", url])
    assert seeded.exit_code == 0, seeded.output
    assert "FAKE" in seeded.output and "demo-clinician-password" in seeded.output


def test_a_v1_relapse_stored_with_site_other_still_reads_as_site_unknown() -> None:
    stored = EventRecord(
        "E1", "P0000000000", 5, "relapsed", dt.date(2024, 6, 1), {"site": "other"}, None, "c", dt.datetime(2024, 6, 1)
    )
    assert stored.to_event().site == "unknown"  # type: ignore[union-attr]
