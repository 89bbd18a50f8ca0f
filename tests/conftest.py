"""Shared fixtures, and the collector that turns clinical scenarios (YAML) into test items.

A clinician can add a case to `tests/scenarios/*.yaml` without writing Python:

    - name: clofarabine_not_offered_at_age_22
      facts: {age_years: 22, disease_status: relapsed, ...}
      fires: [reinduction-chemotherapy]
      not_fires: [clofarabine-pediatric-relapse]
      strength: {clinical-trial: consider}
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from allpath.engine import Engine, default_engine
from allpath.facts import PatientFacts
from allpath.knowledge import load_kb, yamlio

SCENARIO_KEYS = {"name", "facts", "fires", "not_fires", "strength", "packs", "parameters", "why"}


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> None:
    # At argon2's production cost (~0.2 s of CPU a hash) the suite's thousands of log-ins were
    # most of the service and browser tests' time. Servers the tests start get the same through
    # ALLPATH_INSECURE_TEST_PASSWORD_HASH; tests/test_password_hash_cost.py keeps production's cost.
    from allpath.store.auth import use_insecure_test_password_hash

    use_insecure_test_password_hash()


@pytest.fixture(scope="session")
def engine() -> Engine:
    return default_engine()


@pytest.fixture(scope="session")
def kb():  # type: ignore[no-untyped-def]
    return load_kb()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make `--dist loadgroup` keep each `xdist_group` on one worker again.

    pytest-xdist (3.8) groups tests by suffixing `@group` to `item._nodeid`, which pytest 9 no
    longer reads (a node's id is `item._id`), so every group was silently spread over both
    workers: two Spark JVMs and two 100,000-patient cohort fixtures, two browsers. This puts the
    suffix where pytest reads it, in the workers only (they report the ids the scheduler groups
    by), and does nothing once the suffix is there.
    """
    if not (hasattr(config, "workerinput") and config.getvalue("loadgroup")):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
        )
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".yaml" and file_path.parent.name == "scenarios":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        cases = yamlio.safe_load(self.path.read_text(encoding="utf-8")) or []
        names: set[str] = set()
        for index, case in enumerate(cases):
            unknown = set(case) - SCENARIO_KEYS
            if unknown or "name" not in case or "facts" not in case:
                raise ValueError(f"{self.path.name}[{index}]: bad scenario keys {sorted(unknown)}")
            if case["name"] in names:
                raise ValueError(f"{self.path.name}: duplicate scenario name {case['name']!r}")
            names.add(case["name"])
            yield ScenarioItem.from_parent(self, name=f"test_{case['name']}", case=case)


_engines: dict[tuple[Any, ...], Engine] = {}


def _engine_for(case: dict[str, Any]) -> Engine:
    packs = tuple(case.get("packs") or ())
    params = tuple(sorted((case.get("parameters") or {}).items()))
    if not packs and not params:
        return default_engine()
    key = (packs, params)
    if key not in _engines:
        _engines[key] = Engine(load_kb(list(packs) or None, parameters=dict(params)))
    return _engines[key]


class ScenarioItem(pytest.Item):
    def __init__(self, *, case: dict[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        engine = _engine_for(self.case)
        plan = engine.recommend(PatientFacts.parse(self.case["facts"]))
        fired = set(plan.fired_ids())
        for rule_id in self.case.get("fires", []):
            assert rule_id in engine.kb.rule_ids, f"scenario names unknown rule {rule_id!r}"
            assert rule_id in fired, f"{rule_id} should fire; fired: {sorted(fired)}"
        for rule_id in self.case.get("not_fires", []):
            assert rule_id in engine.kb.rule_ids, f"scenario names unknown rule {rule_id!r}"
            assert rule_id not in fired, f"{rule_id} must not fire; fired: {sorted(fired)}"
        strengths = {r.id: r.strength for r in plan.recommendations}
        for rule_id, strength in (self.case.get("strength") or {}).items():
            assert strengths.get(rule_id) == strength, f"{rule_id}: strength {strengths.get(rule_id)} != {strength}"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        why = self.case.get("why", "")
        return f"scenario {self.case['name']} ({why}): {excinfo.value}"

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.case['name']}"
