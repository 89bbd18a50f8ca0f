"""The loopback replay of issue #15's ten attacks (`benchmarks/attack_replay.py`) against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.attack_replay import report, run


def test_every_attack_of_issue_15_is_held_by_a_real_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Its accounts are hashed at the test session's cheap cost (tests/conftest.py); the server
    # keeps that cost (none of the ten attacks depends on it: the guessing one meets the throttle).
    monkeypatch.setenv("ALLPATH_INSECURE_TEST_PASSWORD_HASH", "1")
    outcomes = run(log_path=tmp_path / "server.log")
    assert [o.item for o in outcomes] == list(range(1, 11))
    assert all(o.held for o in outcomes), report(outcomes)
    # No attack left a traceback in the server's log (item 3 used to).
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
