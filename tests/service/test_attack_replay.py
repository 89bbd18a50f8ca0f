"""The loopback replay of issue #15's ten attacks (`benchmarks/attack_replay.py`) against a real server."""

from __future__ import annotations

from pathlib import Path

from benchmarks.attack_replay import report, run


def test_every_attack_of_issue_15_is_held_by_a_real_server(tmp_path: Path) -> None:
    outcomes = run(log_path=tmp_path / "server.log")
    assert [o.item for o in outcomes] == list(range(1, 11))
    assert all(o.held for o in outcomes), report(outcomes)
    # No attack left a traceback in the server's log (item 3 used to).
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
