"""Differential test: the exported PlanDefinition, run by an independent FHIRPath engine (fhirpathpy),
applies exactly the actions the allpath engine fires, on 10,000 generated facts.

For every generated facts object, each action condition (and each variant's nested condition)
of the exported PlanDefinition is evaluated by fhirpathpy against the facts' Parameters
resource and compared with `Engine.fired`. fhirpathpy takes a few milliseconds per
expression, so its answers are memoised on the expression and the parameters the expression
names (`parameter.where(name = '...')`): the result of such an expression cannot depend on
any other parameter. A second test runs without the memo, on a smaller sample, to check that.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from factgen import generate_facts
from tests.v2_conditions import V2_RULE_IDS, every_leaf, kb_with_v2_rules

from allpath.engine import Engine
from allpath.facts import FACT_KINDS, FIELD_NAMES, PatientFacts
from allpath.fhir.export import plan_definition
from allpath.rules.fhirpath import facts_to_parameters, to_fhirpath
from allpath.rules.tree import describe, evaluate

N_FACTS = 10_000
_NAME = re.compile(r"parameter\.where\(name = '([a-z0-9_]+)'\)")  # names hold digits too (cd19_status)


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


def _result(value: Any, text: str) -> bool:
    assert value in ([True], [False]), f"{text} gave {value!r}, not a single boolean"
    return bool(value[0])


def _check(engine: Engine, facts_list: list[PatientFacts], memo: bool) -> int:
    conditions = _conditions(engine)
    names = {text: sorted(set(_NAME.findall(text))) for _, _, text, _ in conditions}
    cache: dict[tuple[str, str], bool] = {}
    evaluations = 0
    for facts in facts_list:
        parameters = facts_to_parameters(facts)
        expected = _expected(engine, facts)
        parent: dict[str, bool] = {}
        for rule_id, k, text, compiled in conditions:
            if memo:
                read = [p for p in parameters["parameter"] if p["name"] in names[text]]
                key = (text, json.dumps(read))
                if key not in cache:
                    cache[key] = _result(compiled(parameters), text)
                    evaluations += 1
                got = cache[key]
            else:
                got = _result(compiled(parameters), text)
                evaluations += 1
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
    return evaluations


@pytest.mark.slow
def test_fhirpathpy_fires_exactly_the_engines_rules_on_10000_generated_facts(engine: Engine) -> None:
    facts_list = list(generate_facts(engine.kb, N_FACTS))
    assert len(facts_list) >= 10_000
    evaluations = _check(engine, facts_list, memo=True)
    assert evaluations > 0


@pytest.mark.slow
def test_fhirpathpy_agrees_without_memo_on_a_sample(engine: Engine) -> None:
    # Another seed, and every expression evaluated on every facts' full Parameters resource.
    _check(engine, list(generate_facts(engine.kb, 40, seed=7)), memo=False)


@pytest.mark.slow
def test_fhirpathpy_agrees_on_rules_over_the_v2_fields(tmp_path: Path) -> None:
    engine = Engine(kb_with_v2_rules(tmp_path / "packs"))
    facts_list = list(generate_facts(engine.kb, 1_000, seed=11))
    fired = [set(engine.fired(f)) & V2_RULE_IDS for f in facts_list]
    for rule in V2_RULE_IDS:
        assert 0 < sum(rule in f for f in fired) < len(fired), f"{rule} does not split the generated facts"
    _check(engine, facts_list, memo=True)


def test_every_fact_and_operator_agrees_with_the_interpreter_in_fhirpathpy(engine: Engine) -> None:
    from fhirpathpy import compile as compile_fhirpath
    from fhirpathpy.models import models

    facts_list = list(generate_facts(engine.kb, 300, seed=3))
    parameters = [facts_to_parameters(f) for f in facts_list]
    wrong = []
    for test in every_leaf():
        compiled = compile_fhirpath(to_fhirpath(test), models["r4"])
        answers: dict[str, bool] = {}  # a leaf reads one parameter name only
        for facts, resource in zip(facts_list, parameters, strict=True):
            read = json.dumps([p for p in resource["parameter"] if p["name"] == test.fact])
            if read not in answers:
                answers[read] = _result(compiled(resource), to_fhirpath(test))
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
    from factgen import boundaries

    seen: dict[str, set[float]] = {}
    for facts in generate_facts(engine.kb, 2_000):
        for fact in ("age_years", "remission_duration_months", "expected_survival_months", "relapse_count"):
            value = getattr(facts, fact)
            if value is not None:
                seen.setdefault(fact, set()).add(float(value))
    for fact, edges in boundaries(engine.kb).items():
        missing = [e for e in edges if e not in seen.get(fact, set())]
        if fact in seen:
            assert not missing, f"{fact}: boundary values never generated: {missing}"
