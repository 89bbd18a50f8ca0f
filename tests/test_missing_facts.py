"""`Plan.missing_facts` is exact: it equals brute-force enumeration of every allowed value.

The brute force shares nothing with `rules.sensitivity` but the engine's `fired` (read as the
tuple of rule choices it is built from, checked against it for every patient): it tries each
value of each unknown field (numbers over a dense grid, which also holds every number written in
the KB and in the facts, and their close neighbours), keeps the values that give valid facts by
the contract's own `contradictions`, and compares the rules that fire and their variants.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from allpath.engine import Engine
from allpath.facts import FACT_KINDS, PatientFacts, contradictions
from allpath.knowledge import available_packs, load_kb
from allpath.rules.tree import leaves
from tests.factsgen import valid_facts

PACK_SETS = [("base",), ("base", "updates-2026"), tuple(available_packs())]


@cache
def engine_for(packs: tuple[str, ...]) -> Engine:
    return Engine(load_kb(list(packs)))


@cache
def kb_numbers(packs: tuple[str, ...]) -> tuple[float, ...]:
    kb = engine_for(packs).kb
    found: set[float] = set()
    for rule in kb.rules:
        for node in (kb.conditions[rule.id], *kb.variant_conditions[rule.id]):
            for t in leaves(node):
                values = t.value if isinstance(t.value, tuple) else (t.value,)
                found.update(float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    return tuple(sorted(found))


def number_grid(facts: PatientFacts, packs: tuple[str, ...]) -> list[float]:
    grid = {x / 2 for x in range(0, 81)} | {60.0, 120.0, 240.0}
    for c in kb_numbers(packs):
        grid |= {c - 0.001, c, c + 0.001}
    for value in facts.model_dump().values():
        if isinstance(value, int | float) and not isinstance(value, bool):
            grid |= {float(value), value - 0.001, value + 0.001}
    return sorted(g for g in grid if g >= 0)


def candidate_values(field: str, grid: list[float]) -> list[Any]:
    kind = FACT_KINDS[field]
    if kind.type == "enum":
        return [v for v in kind.values if v != "unknown"]
    if kind.type == "boolean":
        return [True, False]
    if kind.type == "integer":
        return sorted({int(g) for g in grid if float(g).is_integer()} | {0, 1, 2, 3, 4, 5, 10})
    return grid


def is_unknown(value: Any) -> bool:
    return value is None or value == "unknown"


def choices(engine: Engine, facts: PatientFacts) -> tuple[int, ...]:
    """What `Engine.fired` is built from: each rule's chosen output, in rule order, -1 when it does not fire.

    Tuples of ints compare in C; building `fired`'s dict for each of the few hundred candidates
    of a patient cost most of the brute force. `brute_force` checks that the two agree.
    """
    return tuple(engine._choose(facts))


def brute_force(engine: Engine, facts: PatientFacts, packs: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    ids = engine.kb.rule_ids
    base = choices(engine, facts)
    assert engine.fired(facts) == {ids[i]: c for i, c in enumerate(base) if c != -1}
    assert all(c >= -1 for c in base)
    data = facts.model_dump()
    grid = number_grid(facts, packs)
    found = []
    for field in sorted(FACT_KINDS):
        if FACT_KINDS[field].type == "list" or not is_unknown(data[field]):
            continue
        changed: set[str] = set()
        for value in candidate_values(field, grid):
            # The facts contract decides what is allowed: the value's own range and type (the grid
            # holds only in-range values of the field's type) and `contradictions` across fields.
            other = facts.model_copy(update={field: value})
            if contradictions(other):
                continue
            chosen = choices(engine, other)
            if chosen != base:
                changed |= {ids[i] for i, (was, now) in enumerate(zip(base, chosen, strict=True)) if was != now}
        if changed:
            found.append((field, sorted(changed)))
    return found


def check_against_brute_force(packs: tuple[str, ...], facts: PatientFacts) -> None:
    engine = engine_for(packs)
    plan = engine.recommend(facts)
    assert [(m.field, m.affects) for m in plan.missing_facts] == brute_force(engine, facts, packs)


# 5,000 generated patients on the default packs (the floor), in four parts of 1,250 so
# that xdist spreads them and no single test dominates the suite's critical path; 1,000 each on
# the other pack sets.
@pytest.mark.parametrize("part", [1, 2, 3, 4])
@settings(max_examples=1250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts=valid_facts)
def test_missing_facts_equal_brute_force_on_the_default_packs(part: int, facts: PatientFacts) -> None:
    check_against_brute_force(PACK_SETS[-1], facts)


@pytest.mark.parametrize("packs", PACK_SETS[:-1], ids="+".join)
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts=valid_facts)
def test_missing_facts_equal_brute_force_enumeration(packs: tuple[str, ...], facts: PatientFacts) -> None:
    check_against_brute_force(packs, facts)


def test_missing_facts_are_sorted_by_field_and_name_only_unknown_fields() -> None:
    facts = PatientFacts.parse({"age_years": 8, "disease_status": "relapsed", "relapse_count": 1, "remission_count": 1})
    plan = engine_for(tuple(available_packs())).recommend(facts)
    fields = [m.field for m in plan.missing_facts]
    assert fields == sorted(fields)
    assert "lineage" in fields and "age_years" not in fields and "disease_status" not in fields


def test_known_facts_are_never_listed_as_missing() -> None:
    facts = PatientFacts.parse(
        {"age_years": 30, "lineage": "B", "ph_status": "negative", "disease_status": "newly_diagnosed"}
    )
    plan = engine_for(tuple(available_packs())).recommend(facts)
    assert not {"lineage", "ph_status"} & {m.field for m in plan.missing_facts}


def test_recommend_can_skip_the_missing_facts_search() -> None:
    facts = PatientFacts.parse({"age_years": 8, "disease_status": "newly_diagnosed"})
    engine = engine_for(tuple(available_packs()))
    assert engine.recommend(facts).missing_facts
    assert engine.recommend(facts, with_missing_facts=False).missing_facts == []
