"""Statements a later knowledge pack supersedes carry their note on the web pages too."""

from __future__ import annotations

from pathlib import Path

import pytest

from allpath.engine import Engine
from allpath.facts import PatientFacts
from allpath.web.family import build_family_plan
from allpath.web.render import render

ADULT_SECOND_RELAPSE = {
    "age_years": 30, "lineage": "T", "ph_status": "positive", "disease_status": "relapsed",
    "remission_count": 2, "relapse_count": 2, "prior_regimen_count": 3,
}  # fmt: skip


@pytest.mark.parametrize("packs", [["base"], ["base", "updates-2026"], ["base", "updates-2026", "practice-2026"]])
def test_family_page_never_offers_liposomal_vincristine(packs: list[str]) -> None:
    from allpath.knowledge import load_kb

    engine = Engine(load_kb(packs))
    plan = engine.recommend(PatientFacts.parse(ADULT_SECOND_RELAPSE))
    family = build_family_plan(plan, engine.kb)
    offered = {o.rule_id for g in family.treatments for o in g.options}
    assert offered, "the plan offers families nothing: the check below would pass vacuously"
    assert "liposomal-vincristine" not in offered
    html = render("family_pdf.html", f=family, patient_label=None, as_of="2026-11-26")
    assert "liposomal" not in html.lower() and "marqibo" not in html.lower()


def test_clinicians_still_see_liposomal_vincristine_with_its_withdrawal_note() -> None:
    from allpath.knowledge import load_kb

    engine = Engine(load_kb(["base", "updates-2026"]))
    plan = engine.recommend(PatientFacts.parse(ADULT_SECOND_RELAPSE))
    rule = next(r for r in plan.recommendations if r.id == "liposomal-vincristine")
    assert rule.superseded_by and "withdrew" in rule.superseded_by


def test_knowledge_page_flags_superseded_rules_and_agents(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from allpath.api import create_app
    from allpath.knowledge import load_kb

    kb = load_kb(["base", "updates-2026"])
    with TestClient(create_app(kb, database_url=f"sqlite:///{tmp_path / 'kb.db'}")) as client:
        response = client.get("/learn")
    assert response.status_code == 200, response.text[:200]
    html = response.text
    assert 'data-superseded="liposomal-vincristine"' in html
    assert "Not approved for ALL" in html  # nilotinib's note, on its agent row


def test_family_option_names_leave_out_the_discontinued_elspar_brand() -> None:
    from allpath.knowledge import load_kb

    engine = Engine(load_kb())
    plan = engine.recommend(PatientFacts.parse({"age_years": 7, "disease_status": "newly_diagnosed", "lineage": "B"}))
    induction = next(r for r in plan.recommendations if r.id == "induction-chemotherapy")
    assert "asparaginase" in {a.id for a in induction.agents}  # the clinician's list still has it
    names = [o.title for g in build_family_plan(plan, engine.kb).treatments for o in g.options]
    assert any("Pegaspargase" in n or "pegaspargase" in n for n in names)
    assert not any("Elspar" in n for n in names)
