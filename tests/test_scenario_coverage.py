"""Every rule has a clinical scenario where it fires and one where it must not."""

from __future__ import annotations

from pathlib import Path

import pytest

from allpath.knowledge import available_packs, load_kb, yamlio

SCENARIOS = [
    case
    for path in sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))
    for case in yamlio.safe_load(path.read_text(encoding="utf-8")) or []
]
FIRES = {rule_id for case in SCENARIOS for rule_id in case.get("fires", [])}
NOT_FIRES = {rule_id for case in SCENARIOS for rule_id in case.get("not_fires", [])}
# Rules that fire for every patient have no "must not fire" case by design.
ALWAYS = {"clinical-trial", "palliative-care", "knowledge-date", "scope-of-advice"}
RULE_IDS = load_kb(available_packs()).rule_ids


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rule_has_a_scenario_where_it_fires(rule_id: str) -> None:
    assert rule_id in FIRES


@pytest.mark.parametrize("rule_id", [r for r in RULE_IDS if r not in ALWAYS])
def test_rule_has_a_scenario_where_it_must_not_fire(rule_id: str) -> None:
    assert rule_id in NOT_FIRES


@pytest.mark.parametrize("rule_id", sorted(ALWAYS))
def test_always_rules_really_have_no_condition(rule_id: str) -> None:
    from allpath.knowledge.schema import AllOf

    condition = load_kb().conditions[rule_id]
    assert isinstance(condition, AllOf) and condition.all == []
