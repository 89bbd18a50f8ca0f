"""Statements a later knowledge pack supersedes carry their note on the web pages too."""

from __future__ import annotations

from pathlib import Path

from allpath.engine import Engine
from allpath.facts import PatientFacts
from allpath.web.family import build_family_plan
from allpath.web.render import render

ADULT_SECOND_RELAPSE = {
    "age_years": 30, "lineage": "T", "ph_status": "positive", "disease_status": "relapsed",
    "remission_count": 2, "relapse_count": 2, "prior_regimen_count": 3,
}  # fmt: skip


def test_family_page_shows_the_withdrawal_of_liposomal_vincristine() -> None:
    from allpath.knowledge import load_kb

    # base + updates: the practice pack (default) does not offer the withdrawn medicine at all.
    engine = Engine(load_kb(["base", "updates-2026"]))
    plan = engine.recommend(PatientFacts.parse(ADULT_SECOND_RELAPSE))
    rule = next(r for r in plan.recommendations if r.id == "liposomal-vincristine")
    assert rule.superseded_by
    html = render("family_pdf.html", f=build_family_plan(plan, engine.kb), patient_label=None, as_of="2026-11-26")
    assert "Update:" in html
    assert "withdrew the approval of liposomal vincristine" in html


def test_family_page_has_no_update_note_with_the_base_pack_alone() -> None:
    from allpath.knowledge import load_kb

    base = Engine(load_kb(["base"]))
    plan = base.recommend(PatientFacts.parse(ADULT_SECOND_RELAPSE))
    html = render("family_pdf.html", f=build_family_plan(plan, base.kb), patient_label=None, as_of="2026-11-26")
    assert "update-note" not in html


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
