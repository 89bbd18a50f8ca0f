"""FHIR export: the PlanDefinition and the $apply CarePlan validate as FHIR R4 and carry the plan faithfully."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from tests.factsgen import NOTHING_MISSING

from allpath.engine import Engine
from allpath.facts import PatientFacts
from allpath.fhir import facts_from_bundle
from allpath.fhir.codes import RXNORM
from allpath.fhir.export import care_plan, patient_reference, plan_definition
from allpath.rules.fhirpath import facts_to_parameters, literal, to_fhirpath

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = sorted((ROOT / "examples" / "fhir").glob("*.bundle.json"))
AS_OF = dt.date(2026, 11, 26)
SHARPEN = "What would sharpen this plan:"


@pytest.fixture(scope="module")
def exported(engine: Engine) -> dict[str, Any]:
    return plan_definition(engine.kb)


def test_plan_definition_validates_as_fhir_r4(exported: dict[str, Any]) -> None:
    from fhir.resources.R4B.plandefinition import PlanDefinition

    PlanDefinition.model_validate(exported)


def test_plan_definition_has_one_action_per_rule_in_kb_order(engine: Engine, exported: dict[str, Any]) -> None:
    assert [a["id"] for a in exported["action"]] == [r.id for r in engine.kb.rules]


def test_every_action_cites_its_rules_sources(engine: Engine, exported: dict[str, Any]) -> None:
    for rule, action in zip(engine.kb.rules, exported["action"], strict=True):
        # A superseded rule also carries a `successor` artifact; the citations are the rest.
        citations = [d for d in action["documentation"] if d["type"] != "successor"]
        cited = [(d["label"], d["display"].rsplit("section: ", 1)[1]) for d in citations]
        assert cited[: len(rule.citations)] == [(c.source_id, c.section) for c in rule.citations]


def test_every_action_condition_is_fhirpath_over_the_facts(engine: Engine, exported: dict[str, Any]) -> None:
    for rule, action in zip(engine.kb.rules, exported["action"], strict=True):
        (condition,) = action["condition"]
        assert condition["kind"] == "applicability"
        assert condition["expression"]["language"] == "text/fhirpath"
        assert condition["expression"]["expression"] == to_fhirpath(engine.kb.conditions[rule.id])


def test_agents_are_activity_definitions_with_their_rxnorm_codes(engine: Engine, exported: dict[str, Any]) -> None:
    from fhir.resources.R4B.activitydefinition import ActivityDefinition

    contained = {c["id"]: c for c in exported["contained"]}
    for agent in engine.kb.agents.values():
        definition = contained[f"agent-{agent.id}"]
        ActivityDefinition.model_validate(definition)
        # Agents with no confirmed code (the updates pack's products) get no coding at all.
        coding = definition["productCodeableConcept"].get("coding", [])
        rx = [c["code"] for c in coding if c["system"] == RXNORM]
        assert rx == [c.code for c in agent.codes if c.system == RXNORM]
    imatinib = contained["agent-imatinib"]["productCodeableConcept"]["coding"]
    assert {"system": RXNORM, "code": "282388", "display": "imatinib"} in imatinib


def test_agent_actions_point_at_contained_activity_definitions(exported: dict[str, Any]) -> None:
    ids = {c["id"] for c in exported["contained"]}
    refs = [
        s["definitionCanonical"] for a in exported["action"] for s in a.get("action", []) if "definitionCanonical" in s
    ]
    assert refs and all(r.removeprefix("#") in ids for r in refs)


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name)
def test_bundle_to_facts_to_plan_to_care_plan_round_trip(engine: Engine, path: Path) -> None:
    from fhir.resources.R4B.careplan import CarePlan
    from fhir.resources.R4B.parameters import Parameters
    from fhir.resources.R4B.requestgroup import RequestGroup

    bundle = json.loads(path.read_text(encoding="utf-8"))
    imported = facts_from_bundle(bundle, as_of=AS_OF)
    plan = engine.recommend(imported.facts)
    care = care_plan(engine, imported.facts, imported=imported, subject=patient_reference(bundle))
    CarePlan.model_validate(care)
    group, parameters, *_orders = care["contained"]
    RequestGroup.model_validate(group)
    Parameters.model_validate(parameters)
    assert care["intent"] == group["intent"] == "option"
    assert care["subject"] == {"reference": f"Patient/{bundle['entry'][0]['resource']['id']}"}
    assert [a["id"] for a in group["action"]] == plan.recommendation_ids()
    for action, rec in zip(group["action"], plan.recommendations, strict=True):
        citations = [d for d in action["documentation"] if d["type"] != "successor"]
        assert [d["label"] for d in citations] == [c.source_id for c in rec.citations]
        successors = [d for d in action["documentation"] if d["type"] == "successor"]
        assert len(successors) == (1 if rec.superseded_by else 0)
    # The facts travel with the CarePlan in the exact form the PlanDefinition conditions read.
    assert parameters["parameter"] == facts_to_parameters(imported.facts)["parameter"]
    notes = " ".join(n["text"] for n in group.get("note", []))
    for alert in imported.alerts:
        assert alert.id in notes
    assert len(sharpen_notes(care)) == (1 if plan.missing_facts else 0)


def sharpen_notes(care: dict[str, Any]) -> list[str]:
    return [n["text"] for n in care["note"] if n["text"].startswith(SHARPEN)]


def test_care_plan_has_one_note_naming_lineage_and_what_it_would_change_when_unknown(engine: Engine) -> None:
    from fhir.resources.R4B.careplan import CarePlan

    facts = PatientFacts.parse({"age_years": 8, "disease_status": "newly_diagnosed", "ph_status": "negative"})
    care = care_plan(engine, facts)
    CarePlan.model_validate(care)
    [note] = sharpen_notes(care)
    lines = note.splitlines()
    plan = engine.recommend(facts)
    # One list line per missing fact, in the plan's order (by field).
    assert [line.split("(`")[1].split("`")[0] for line in lines[1:]] == [m.field for m in plan.missing_facts]
    lineage = next(line for line in lines if "(`lineage`)" in line)
    assert lineage.startswith("- Whether the leukemia is B-cell or T-cell (`lineage`) would change: ")
    assert "Nelarabine for T-cell ALL (nelarabine-t-cell)" in lineage
    assert "Nelarabine for T-cell ALL (nelarabine-t-cell)" in lineage


def test_care_plan_has_no_missing_facts_note_when_no_unknown_fact_matters(engine: Engine) -> None:
    facts = PatientFacts.parse(NOTHING_MISSING)
    assert engine.recommend(facts).missing_facts == []
    care = care_plan(engine, facts)
    assert sharpen_notes(care) == []
    assert len(care["note"]) == 1


def test_care_plan_agents_carry_rxnorm_codes(engine: Engine) -> None:
    facts = PatientFacts.parse({"age_years": 40, "ph_status": "positive", "disease_status": "newly_diagnosed"})
    care = care_plan(engine, facts)
    group = care["contained"][0]
    tki = next(a for a in group["action"] if a["id"] == "tki-ph-positive")
    codes = {c["code"] for sub in tki["action"] for concept in sub["code"] for c in concept.get("coding", [])}
    assert codes == {"282388", "475342", "662281"}


def test_facts_parameters_omit_missing_facts_and_repeat_completed_phases() -> None:
    facts = PatientFacts.parse(
        {
            "age_years": 12,
            "disease_status": "in_remission",
            "remission_count": 1,
            "completed_phases": ["induction", "consolidation"],
        }
    )
    parameters = facts_to_parameters(facts)["parameter"]
    names = [p["name"] for p in parameters]
    assert "cns_involvement" not in names and "remission_duration_months" not in names
    assert [p["valueCode"] for p in parameters if p["name"] == "completed_phases"] == ["induction", "consolidation"]
    assert {"name": "age_years", "valueDecimal": 12.0} in parameters
    assert {"name": "lineage", "valueCode": "unknown"} in parameters


def test_fhirpath_string_literals_are_escaped() -> None:
    assert literal("it's") == "'it\\'s'"
    assert literal(18.0) == "18" and literal(0.5) == "0.5" and literal(True) == "true"


def test_a_superseded_rule_is_exported_with_a_successor_artifact(engine: Engine) -> None:
    import dataclasses

    from allpath.fhir.export import plan_definition as export

    rules = tuple(
        r.model_copy(update={"superseded_by": "newer-pack:ponatinib"}) if r.id == "ponatinib-ph-positive" else r
        for r in engine.kb.rules
    )
    exported = export(dataclasses.replace(engine.kb, rules=rules))
    action = next(a for a in exported["action"] if a["id"] == "ponatinib-ph-positive")
    successors = [d for d in action["documentation"] if d["type"] == "successor"]
    assert successors == [
        {"type": "successor", "label": "superseded_by", "display": "Superseded by newer-pack:ponatinib"}
    ]
    from fhir.resources.R4B.plandefinition import PlanDefinition

    PlanDefinition.model_validate(exported)
