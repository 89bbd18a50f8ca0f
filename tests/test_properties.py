"""Properties of the engine that must hold for any valid facts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings

from allpath.engine import Engine
from allpath.facts import PatientFacts
from allpath.plan import Plan
from allpath.rules.tree import evaluate
from tests.factsgen import valid_facts

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
PLAN_SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text())
FACTS_SCHEMA = json.loads((SCHEMAS / "patient-facts.schema.json").read_text())
# Built once: constructing a validator per example costs more than the whole engine call. The Rust
# validator (Draft 2020-12, like the schemas) takes ~0.1 ms a plan where `jsonschema` took ~16 ms.
PLAN_VALIDATOR = jsonschema_rs.Draft202012Validator(PLAN_SCHEMA)
FACTS_VALIDATOR = jsonschema_rs.Draft202012Validator(FACTS_SCHEMA)
PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(facts=valid_facts)
def test_any_valid_facts_give_a_plan_that_cites_every_item(engine: Engine, facts: PatientFacts) -> None:
    plan = engine.recommend(facts)
    assert plan.recommendations, "palliative care and a trial always apply"
    for item in [*plan.recommendations, *plan.not_recommended, *plan.alerts]:
        assert item.citations, item.id
        for citation in item.citations:
            source = engine.kb.sources[citation.source_id]
            assert citation.section in source.sections


@PROPERTY_SETTINGS
@given(facts=valid_facts)
def test_agents_come_only_from_the_knowledge_base(engine: Engine, facts: PatientFacts) -> None:
    known = {(a.name, a.drug_class) for a in engine.kb.agents.values()}
    for rec in engine.recommend(facts).recommendations:
        for agent in rec.agents:
            assert (agent.name, agent.drug_class) in known
            kb_agent = next(a for a in engine.kb.agents.values() if a.name == agent.name)
            assert set(agent.routes) <= set(kb_agent.routes)
            assert agent.brand_names == kb_agent.brand_names


@PROPERTY_SETTINGS
@given(facts=valid_facts)
def test_autologous_transplant_is_never_recommended(engine: Engine, facts: PatientFacts) -> None:
    plan = engine.recommend(facts)
    assert "autologous-sct" not in plan.recommendation_ids()
    transplant_offered = any(r.category == "stem_cell_transplant" for r in plan.recommendations)
    assert transplant_offered == ("autologous-sct" in [n.id for n in plan.not_recommended])


@PROPERTY_SETTINGS
@given(facts=valid_facts)
def test_plan_json_validates_against_the_published_schema(engine: Engine, facts: PatientFacts) -> None:
    document = json.loads(engine.recommend(facts).model_dump_json())
    PLAN_VALIDATOR.validate(document)
    FACTS_VALIDATOR.validate(document["facts"])
    assert Plan.model_validate(document) == engine.recommend(facts)


@PROPERTY_SETTINGS
@given(facts=valid_facts)
def test_compiled_conditions_agree_with_the_tree_interpreter(engine: Engine, facts: PatientFacts) -> None:
    fired = engine.fired(facts)
    for rule in engine.kb.rules:
        expected = evaluate(engine.kb.conditions[rule.id], facts)
        assert (rule.id in fired) == expected, rule.id
        if expected:
            variants = engine.kb.variant_conditions[rule.id]
            first = next((i + 1 for i, v in enumerate(variants) if evaluate(v, facts)), 0)
            assert fired[rule.id] == first, rule.id


@PROPERTY_SETTINGS
@given(facts=valid_facts)
def test_equal_facts_give_equal_plans(engine: Engine, facts: PatientFacts) -> None:
    again = PatientFacts.parse(json.loads(facts.model_dump_json()))
    assert engine.recommend(again).model_dump_json() == engine.recommend(facts).model_dump_json()


@pytest.mark.parametrize("which", ["facts", "plan"])
def test_published_schemas_match_the_models(which: str) -> None:
    generated = PatientFacts.model_json_schema() if which == "facts" else Plan.model_json_schema(mode="serialization")
    published = FACTS_SCHEMA if which == "facts" else PLAN_SCHEMA
    assert generated == published, "run `make schemas` and commit the result"
