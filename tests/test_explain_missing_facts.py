"""The text plan says what would sharpen it: each missing fact by its plain-language label, with the
options it would change; and says nothing of the kind when no unknown fact matters."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from allpath.cli import app
from allpath.engine import Engine
from allpath.explain import render_text
from allpath.explain.labels import FACT_LABELS, fact_label, missing_fact_views
from allpath.facts import FIELD_NAMES, PatientFacts
from allpath.knowledge import load_kb
from tests.factsgen import NOTHING_MISSING

HEADER = "WHAT WOULD SHARPEN THIS PLAN"
# A first relapse with the length of the remission before it not recorded.
RELAPSED_DURATION_UNKNOWN = {
    "age_years": 30,
    "disease_status": "relapsed",
    "lineage": "B",
    "ph_status": "negative",
    "remission_count": 1,
    "relapse_count": 1,
}
NEWLY_DIAGNOSED_LINEAGE_UNKNOWN = {"age_years": 8, "disease_status": "newly_diagnosed", "ph_status": "negative"}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_kb())


def _section(text: str) -> str:
    start = text.index(HEADER)
    return text[start : text.index("\n\n", start)]


def test_every_fact_field_has_a_plain_language_label() -> None:
    assert set(FACT_LABELS) == set(FIELD_NAMES)
    assert all(label and "_" not in label for label in FACT_LABELS.values())


def test_text_plan_lists_remission_duration_when_unknown_for_a_relapsed_patient(engine: Engine) -> None:
    plan = engine.recommend(PatientFacts.parse(RELAPSED_DURATION_UNKNOWN))
    missing = {m.field: m.affects for m in plan.missing_facts}
    assert "remission_duration_months" in missing
    section = _section(render_text(plan, engine.kb))
    assert "* Length of the remission before the relapse\n" in section
    titles = {r.id: r.title for r in plan.recommendations}
    for rule_id in missing["remission_duration_months"]:
        if rule_id in titles:
            assert titles[rule_id] in " ".join(section.split()), rule_id
    assert "remission_duration_months" not in section


def test_text_plan_names_options_not_in_the_plan_by_their_knowledge_base_title(engine: Engine) -> None:
    plan = engine.recommend(PatientFacts.parse(NEWLY_DIAGNOSED_LINEAGE_UNKNOWN))
    lineage = next(m for m in plan.missing_facts if m.field == "lineage")
    assert "nelarabine-t-cell" in lineage.affects
    assert "nelarabine-t-cell" not in plan.fired_ids()
    with_kb = " ".join(_section(render_text(plan, engine.kb)).split())
    assert f"* {fact_label('lineage')} Would change:" in with_kb
    assert "Nelarabine for T-cell ALL" in with_kb
    # Without the knowledge base, a rule the plan does not hold can only be named by its id.
    assert "nelarabine-t-cell" in _section(render_text(plan))


def test_text_plan_names_an_affected_alert_by_its_opening_words(engine: Engine) -> None:
    plan = engine.recommend(PatientFacts.parse(NEWLY_DIAGNOSED_LINEAGE_UNKNOWN))
    view = next(v for v in missing_fact_views(plan, engine.kb) if v.field == "lineage")
    assert "Note: Whether the leukemia is B-cell or T-cell is not known" in [a.label for a in view.affects]


def test_text_plan_has_no_sharpen_section_when_no_unknown_fact_matters(engine: Engine) -> None:
    plan = engine.recommend(PatientFacts.parse(NOTHING_MISSING))
    assert plan.missing_facts == []
    assert HEADER not in render_text(plan, engine.kb)


def test_emptied_missing_facts_render_exactly_as_a_plan_without_the_section(engine: Engine) -> None:
    plan = engine.recommend(PatientFacts.parse(RELAPSED_DURATION_UNKNOWN))
    full = render_text(plan, engine.kb)
    emptied = render_text(plan.model_copy(update={"missing_facts": []}), engine.kb)
    start = full.index(HEADER)
    end = full.index("\n\n", start) + 2
    assert emptied == full[:start] + full[end:]


def test_cli_text_output_shows_what_would_sharpen_the_plan() -> None:
    result = CliRunner().invoke(
        app, ["recommend", "-", "--format", "text"], input=json.dumps(NEWLY_DIAGNOSED_LINEAGE_UNKNOWN)
    )
    assert result.exit_code == 0, result.output
    section = " ".join(_section(result.stdout).split())
    assert "Whether the leukemia is B-cell or T-cell" in section
    assert "Nelarabine for T-cell ALL" in section
