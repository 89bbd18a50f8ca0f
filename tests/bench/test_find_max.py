"""`bench_http.find_max` steps the rate up and confirms a missed step with a second try."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks import bench_http


def _fake_runs(monkeypatch: pytest.MonkeyPatch, verdicts: dict[float, list[bool]]) -> list[float]:
    """Each rate's successive runs meet or miss as listed; returns the rates run, in order."""
    ran: list[float] = []

    def run_once(
        base: str, token: str, patients: list[str], facts: list[dict], pid: int, rate: float, seconds: float
    ) -> dict[str, Any]:
        ran.append(rate)
        met = verdicts[rate].pop(0)
        row = {"p50_ms": 1.0, "p99_ms": 5.0 if met else 50.0, "errors": 0}
        return {
            "rate": rate,
            "met": met,
            "rows": [row],
            "server_cpu_ms_per_request": 1.0,
            "cpu_share_by_process": [1.0],
        }

    monkeypatch.setattr(bench_http, "run_once", run_once)
    return ran


def test_a_single_missed_step_is_tried_again_and_the_climb_goes_on(monkeypatch):
    ran = _fake_runs(
        monkeypatch, {100: [True], 120: [False, True], 144: [False, False], 132: [True], 138: [False, False]}
    )
    best, steps = bench_http.find_max("http://x", "t", [], [], 0, 100, 1)
    assert best == 132
    assert ran == [100, 120, 120, 144, 144, 132, 138, 138]
    assert [s.get("retry", False) for s in steps] == [False, False, True, False, True, False, False, True]


def test_a_confirmed_miss_at_the_first_rate_halves_it(monkeypatch):
    ran = _fake_runs(monkeypatch, {100: [False, False], 50: [True], 60: [False, False], 55: [True], 57.5: [True]})
    best, _ = bench_http.find_max("http://x", "t", [], [], 0, 100, 1)
    assert ran[:3] == [100, 100, 50]
    assert best == 57.5
