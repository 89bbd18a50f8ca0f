"""Differential test: the exported PlanDefinition, run by an independent FHIRPath engine (fhirpathpy),
applies exactly the actions the allpath engine fires.

For each facts object checked, every action condition (and each variant's nested condition) of
the exported PlanDefinition is evaluated by fhirpathpy against the facts' full Parameters
resource and compared with `Engine.fired`.

fhirpathpy takes milliseconds per expression, and almost every (expression, parameters) pair of
a generated facts object is new, so checking 10,000 facts cost minutes. The facts checked are now
picked from those 10,000 (same seed), greedily, until the picked ones show everything the 10,000
show: each rule and each variant both applying and not applying, and each value either side of
and at every numeric boundary of the KB. That keeps what the 10,000 proved about the translation
of each rule as a whole (its and/or/not structure, variant order, nulls), at a few dozen facts.
Each leaf shape, with every operator and fact, is compared separately and exhaustively in
`test_every_fact_and_operator_agrees_with_the_interpreter_in_fhirpathpy`.
"""

from __future__ import annotations

import heapq
import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.factsgen import boundaries, facts_stream, shape_for
from tests.v2_conditions import V2_RULE_IDS, every_leaf, kb_with_v2_rules

from allpath.engine import Engine
from allpath.facts import FACT_KINDS, FIELD_NAMES, PatientFacts
from allpath.fhir.export import plan_definition
from allpath.rules.fhirpath import facts_to_parameters, to_fhirpath
from allpath.rules.tree import describe, evaluate

POOL = 10_000


def _conditions(engine: Engine) -> list[tuple[str, int, str, Any]]:
    """(rule id, output index: 0 = rule, k = variant k, expression text, compiled expression)."""
    from fhirpathpy import compile as compile_fhirpath
    from fhirpathpy.models import models

    out = []
    for action in plan_definition(engine.kb)["action"]:
        text = action["condition"][0]["expression"]["expression"]
        out.append((action["id"], 0, text, compile_fhirpath(text, models["r4"])))
        for sub in action.get("action", []):
            if "condition" in sub:
                k = int(sub["id"].rsplit("variant-", 1)[1])
                text = sub["condition"][0]["expression"]["expression"]
                out.append((action["id"], k, text, compile_fhirpath(text, models["r4"])))
    return out


def _expected(engine: Engine, facts: PatientFacts) -> dict[tuple[str, int], bool]:
    fired = engine.fired(facts)
    expected: dict[tuple[str, int], bool] = {}
    for rule in engine.kb.rules:
        expected[(rule.id, 0)] = rule.id in fired
        for k in range(1, len(engine.kb.variant_conditions[rule.id]) + 1):
            # A variant's nested action applies when the rule fires with that variant chosen.
            expected[(rule.id, k)] = fired.get(rule.id) == k
    return expected


def _covering(engine: Engine, pool: list[PatientFacts]) -> list[PatientFacts]:
    """Facts from `pool`, picked until they show every rule outcome and boundary value the pool shows."""
    edges = {fact: set(values) for fact, values in boundaries(engine.kb).items()}

    def features(facts: PatientFacts) -> set[tuple[Any, ...]]:
        out: set[tuple[Any, ...]] = {(*key, applies) for key, applies in _expected(engine, facts).items()}
        for fact, values in edges.items():
            value = getattr(facts, fact)
            if value is not None and float(value) in values:
                out.add((fact, float(value)))
        return out

    shown = [features(f) for f in pool]
    wanted = set().union(*shown)
    picked: list[PatientFacts] = []
    # Greedy: each time the facts that show most of what is still wanted, the first of them on a
    # tie. Lazily: what a facts object would add only shrinks as facts are picked, so a bound
    # from an earlier round that is still exact beats every other bound (rescanning 10,000 facts
    # for each of ~40 picks cost seconds).
    heap = [(-len(features), i) for i, features in enumerate(shown)]
    heapq.heapify(heap)
    while wanted:
        bound, i = heapq.heappop(heap)
        gain = len(shown[i] & wanted)
        if gain == -bound:
            picked.append(pool[i])
            wanted -= shown[i]
        elif gain:
            heapq.heappush(heap, (-gain, i))
    return picked


def _result(value: Any, text: str) -> bool:
    assert value in ([True], [False]), f"{text} gave {value!r}, not a single boolean"
    return bool(value[0])


def _reads(text: str) -> frozenset[str]:
    """The parameters an exported expression reads, each through `parameter.where(name = '...')`."""
    names = re.findall(r"parameter\.where\(name = '([a-z0-9_]+)'\)", text)
    # Any other way in (an index, a count of all parameters...) would make a memo on these unsound.
    assert text.count("parameter") == len(names), f"an expression reads parameters another way: {text}"
    return frozenset(names)


def _only(parameters: dict[str, Any], reads: frozenset[str]) -> dict[str, Any]:
    """The Parameters resource cut down to the parameters named in `reads`, in their order."""
    return {**parameters, "parameter": [p for p in parameters["parameter"] if p["name"] in reads]}


def _check(engine: Engine, facts_list: list[PatientFacts]) -> None:
    conditions = [(*c, _reads(c[2])) for c in _conditions(engine)]
    # An expression's answer depends only on the parameters it reads, so it is evaluated once per
    # distinct value of those: most expressions read two or three facts, which the picked facts
    # repeat, and fhirpathpy takes milliseconds per evaluation. For the same reason it is run on
    # those parameters alone: each `where(name = ...)` then scans two or three parameters rather
    # than twenty, which makes fhirpathpy about three times faster. The first facts are also run
    # whole, so that a cut resource answering differently from the whole one would fail here.
    answers: dict[tuple[int, str], bool] = {}
    for n, facts in enumerate(facts_list):
        parameters = facts_to_parameters(facts)
        expected = _expected(engine, facts)
        parent: dict[str, bool] = {}
        for i, (rule_id, k, text, compiled, reads) in enumerate(conditions):
            read = _only(parameters, reads)
            key = (i, json.dumps(read["parameter"], sort_keys=True))
            if key not in answers:
                answers[key] = _result(compiled(read), text)
            if n == 0:
                whole = _result(compiled(parameters), text)
                assert whole == answers[key], f"{text}: {whole} on the whole resource, {answers[key]} on its reads"
            got = answers[key]
            if k == 0:
                parent[rule_id] = got
            else:
                # A nested (variant) action is only considered when its parent action applies.
                got = parent[rule_id] and got
            assert (rule_id, k) in expected, f"exported action {rule_id}/{k} has no rule in the engine"
            assert got == expected[(rule_id, k)], (
                f"{rule_id} (output {k}): fhirpathpy says {got}, engine says {expected[(rule_id, k)]}\n"
                f"facts: {facts.model_dump_json()}\nexpression: {text}"
            )


@pytest.mark.slow
def test_fhirpathpy_fires_exactly_the_engines_rules_on_facts_covering_10000_generated(engine: Engine) -> None:
    picked = _covering(engine, list(facts_stream(POOL, shape=shape_for(engine.kb))))
    # Fewer would mean the pool stopped varying the rules; far more, that the picking broke.
    assert 10 <= len(picked) <= 200, len(picked)
    _check(engine, picked)


@pytest.mark.slow
def test_fhirpathpy_agrees_on_rules_over_the_v2_fields(tmp_path: Path) -> None:
    engine = Engine(kb_with_v2_rules(tmp_path / "packs"))
    pool = list(facts_stream(1_000, seed=11, shape=shape_for(engine.kb)))
    fired = [set(engine.fired(f)) & V2_RULE_IDS for f in pool]
    for rule in V2_RULE_IDS:
        assert 0 < sum(rule in f for f in fired) < len(fired), f"{rule} does not split the generated facts"
    picked = _covering(engine, pool)
    for rule in V2_RULE_IDS:
        assert {rule in engine.fired(f) for f in picked} == {True, False}, rule
    _check(engine, picked)


def test_every_fact_and_operator_agrees_with_the_interpreter_in_fhirpathpy(engine: Engine) -> None:
    from fhirpathpy import compile as compile_fhirpath
    from fhirpathpy.models import models

    facts_list = list(facts_stream(300, seed=3, shape=shape_for(engine.kb)))
    parameters = [facts_to_parameters(f) for f in facts_list]
    wrong = []
    for test in every_leaf():
        compiled = compile_fhirpath(to_fhirpath(test), models["r4"])
        answers: dict[str, bool] = {}  # a leaf reads one parameter name only
        reads = _reads(to_fhirpath(test))
        for n, (facts, resource) in enumerate(zip(facts_list, parameters, strict=True)):
            cut = _only(resource, reads)
            read = json.dumps(cut["parameter"])
            if read not in answers:
                # Run on its one parameter, and once on the whole resource (see `_check`).
                answers[read] = _result(compiled(cut), to_fhirpath(test))
            if n == 0:
                assert _result(compiled(resource), to_fhirpath(test)) == answers[read], to_fhirpath(test)
            if answers[read] != evaluate(test, facts):
                wrong.append(f"{describe(test)}: fhirpathpy {answers[read]} for {facts.model_dump_json()}")
                break
    assert not wrong
    # The comparison proves little about a v2 fact the generated facts do not vary.
    for fact in FIELD_NAMES[FIELD_NAMES.index("phase_in_progress") :]:
        seen = {v for f in facts_list for v in _items(getattr(f, fact))}
        kind = FACT_KINDS[fact]
        if kind.type in ("enum", "list"):
            assert seen == set(kind.values), fact
        elif kind.type == "boolean":
            assert seen == {True, False, None}, fact
        else:
            assert None in seen and len(seen) > 10, fact


def _items(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


def test_every_rule_and_variant_is_exported_as_a_condition(engine: Engine) -> None:
    exported = {(rule_id, k) for rule_id, k, _, _ in _conditions(engine)}
    wanted = {(r.id, 0) for r in engine.kb.rules} | {
        (r.id, k) for r in engine.kb.rules for k in range(1, len(engine.kb.variant_conditions[r.id]) + 1)
    }
    assert exported == wanted


def test_generated_facts_cross_every_numeric_boundary_of_the_kb(engine: Engine) -> None:
    edges = boundaries(engine.kb)
    seen: dict[str, set[float]] = {fact: set() for fact in edges}
    for facts in facts_stream(2_000, shape=shape_for(engine.kb)):
        for fact in edges:
            value = getattr(facts, fact)
            if value is not None:
                seen[fact].add(float(value))
    for fact, values in edges.items():
        missing = [e for e in values if e not in seen[fact]]
        assert not missing, f"{fact}: boundary values never generated: {missing}"
