"""'My treatment plan': plain language, the right phase now and next, readable at grade 8, printable as PDF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allpath.facts import PatientFacts
from allpath.web.family import as_prose, build_family_plan, reading_grade, text_grade, visible_text
from allpath.web.render import html_to_pdf, render

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.json"))
MAX_GRADE = 8.0


def family_html(engine, facts: dict, template: str = "family_pdf.html", **kw) -> str:  # type: ignore[no-untyped-def]
    plan = engine.recommend(PatientFacts.parse(facts))
    f = build_family_plan(plan, engine.kb, **kw)
    return render(template, f=f, patient_label=None, as_of="2026-11-26")


def load(name: str) -> dict:
    return json.loads((Path(__file__).parents[2] / "examples" / f"{name}.json").read_text())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_family_page_reads_at_grade_8_or_below(engine, example: Path) -> None:
    html = family_html(engine, json.loads(example.read_text()))
    grade = reading_grade(html)
    assert grade <= MAX_GRADE, f"{example.stem}: Flesch-Kincaid grade {grade}"


def test_readability_check_can_fail_on_hard_text() -> None:
    hard = (
        "Notwithstanding considerable interindividual heterogeneity, consolidation chemotherapy "
        "substantially ameliorates the probability of subsequent haematological recurrence."
    )
    assert text_grade(hard) > MAX_GRADE


def test_text_extraction_keeps_blocks_apart_and_skips_references() -> None:
    html = (
        '<div id="plan"><h2>Now</h2><p>One. Two<sup data-readability="skip">[1]</sup></p>'
        '<ol data-readability="skip"><li>Ref</li></ol><br><p>Three</p></div><p>Outside</p>'
    )
    assert visible_text(html) == ["Now", "One. Two", "Three"]
    assert as_prose(visible_text(html)) == "Now. One. Two. Three."


def test_newly_diagnosed_is_in_induction_with_consolidation_next(engine) -> None:
    html = family_html(engine, load("newly-diagnosed-child-b-cell"))
    text = " ".join(visible_text(html))
    assert "You are in the Remission induction phase." in text
    assert "Next is the Consolidation (intensification) phase." in text


def test_remission_after_induction_moves_to_consolidation_then_maintenance(engine) -> None:
    facts = {"age_years": 30, "disease_status": "in_remission", "completed_phases": ["induction"], "remission_count": 1}
    text = " ".join(visible_text(family_html(engine, facts)))
    assert "You are in the Consolidation (intensification) phase." in text
    assert "Next is the Maintenance (continuation) phase." in text


def test_course_record_can_name_the_current_phase(engine) -> None:
    facts = {
        "age_years": 30,
        "disease_status": "in_remission",
        "completed_phases": ["induction", "consolidation"],
        "remission_count": 1,
    }
    text = " ".join(visible_text(family_html(engine, facts, current_phase="maintenance")))
    assert "You are in the Maintenance (continuation) phase." in text
    assert "When maintenance ends, you will have check-ups for a long time." in text


def test_chemotherapy_plan_lists_its_side_effects(engine) -> None:
    text = " ".join(visible_text(family_html(engine, load("newly-diagnosed-child-b-cell"))))
    assert "Hair loss, mouth sores, nausea and vomiting are common." in text
    assert "You have a fever or other signs of infection. Call at once." in text


def test_every_section_is_present(engine) -> None:
    blocks = visible_text(family_html(engine, load("refractory-adult")))
    for heading in (
        "What is happening now",
        "What comes next",
        "Side effects to watch for",
        "When to call your care team",
        "Questions to ask",
        "Words to know",
    ):
        assert heading in blocks
    assert "Should I get a second opinion?" in " ".join(blocks)


def test_glossary_only_explains_words_on_the_page(engine) -> None:
    newly = visible_text(family_html(engine, load("newly-diagnosed-child-b-cell")))
    refractory = visible_text(family_html(engine, load("refractory-adult")))
    assert "Refractory ALL" not in newly
    assert "Refractory ALL" in refractory


def test_every_footnote_points_to_a_reference(engine) -> None:
    import re

    html = family_html(engine, load("first-relapse-after-short-remission-teen"))
    targets = set(re.findall(r'href="#(ref-\d+)"', html))
    ids = set(re.findall(r'id="(ref-\d+)"', html))
    assert targets and targets <= ids


def test_pdf_renders(engine) -> None:
    pdf = html_to_pdf(family_html(engine, load("newly-diagnosed-child-b-cell")))
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 5_000


def test_family_sentences_and_their_footnotes_come_from_the_knowledge_base(engine, tmp_path: Path) -> None:
    import shutil
    from importlib import resources

    from allpath.engine import Engine
    from allpath.knowledge import load_kb

    with resources.as_file(resources.files("allpath.knowledge") / "packs") as folder:
        shutil.copytree(folder, tmp_path / "packs")
    family_yaml = tmp_path / "packs" / "base" / "family.yaml"
    text = family_yaml.read_text()
    old = (
        "text: Should I get a second opinion?\n"
        "    es:\n"
        "      title: Segunda opinión\n"
        "      text: ¿Debo pedir una segunda opinión?\n"
        "    citations:\n"
        "      - {source_id: cancernet-all-2017, section: Refractory ALL}"
    )
    assert old in text
    family_yaml.write_text(
        text.replace(old, old.replace("Should I get", "Would it help to get").replace("Refractory ALL", "Introduction"))
    )
    kb = load_kb(root=tmp_path / "packs")
    f = build_family_plan(Engine(kb).recommend(PatientFacts.parse(load("refractory-adult"))), kb)
    second = next(q for q in f.questions if q.title == "Second opinion")
    assert second.text == "Would it help to get a second opinion?"
    assert [(c.source_id, c.section) for c in second.citations] == [("cancernet-all-2017", "Introduction")]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_spanish_family_page_reads_easily(engine, example: Path) -> None:
    from allpath.web.family import family_kb, spanish_reading_ease

    plan = engine.recommend(PatientFacts.parse(json.loads(example.read_text())))
    f = build_family_plan(plan, family_kb(engine.kb, "es"))
    html = render("family_pdf.html", lang="es", f=f, patient_label=None, as_of="2026-11-26")
    ease = spanish_reading_ease(as_prose(visible_text(html)))
    assert ease >= 70, f"{example.stem}: Fernández-Huerta {ease:.1f}"
