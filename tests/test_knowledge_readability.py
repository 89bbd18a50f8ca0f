"""Every patient-facing knowledge text reads easily in both languages, checked per page-sized group.

English: Flesch-Kincaid grade at most 8 (as the family page is checked). Spanish: Fernández-Huerta
reading ease at least 70 ("fairly easy" or easier), textstat's Spanish formula with its Spanish
syllable counter. Each group is the concatenated family-facing text of one kind of entry, about a
page of reading, so one long entry cannot hide behind many short ones elsewhere in the packs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import textstat

from allpath.knowledge import KnowledgeBase, load_kb
from allpath.web.family import as_prose, text_grade

KB = load_kb()
TOPIC_GROUPS = {
    "modality": "treatments",
    "side_effects": "side effects",
    "supportive_care": "side effects",
    "what_to_expect": "care",
    "care_team": "care",
    "disease_state": "the illness",
    "testing": "the illness",
    "support": "the illness",
}


def groups(kb: KnowledgeBase) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    out["phases"] = [s for p in kb.phases.values() for s in (p.name, p.timing, p.goal, p.setting, *p.facts)]
    for t in kb.topics.values():
        out.setdefault(f"topics: {TOPIC_GROUPS[t.kind]}", []).extend([t.title, t.summary, *t.points])
    out["family texts"] = [s for f in kb.family_texts.values() for s in (f.title, f.text) if s]
    out["glossary"] = [s for g in kb.glossary.values() for s in (g.term, g.definition)]
    out["medicines"] = [s for a in kb.agents.values() for s in (a.summary, a.boxed_warning) if s]
    out["disclaimer"] = [kb.disclaimer]
    return out


ENGLISH = groups(KB)
SPANISH = groups(KB.for_language("es"))


@contextmanager
def spanish_textstat() -> Iterator[None]:
    # textstat's language is process-wide: put English back for the tests that follow.
    textstat.set_lang("es")
    try:
        yield
    finally:
        textstat.set_lang("en_US")


def test_every_kind_of_patient_facing_entry_is_in_a_group() -> None:
    assert set(TOPIC_GROUPS) == {t.kind for t in KB.topics.values()} | set(TOPIC_GROUPS)
    assert set(ENGLISH) == set(SPANISH)
    assert {k for k, v in ENGLISH.items() if not v} == set()


@pytest.mark.parametrize("group", sorted(ENGLISH))
def test_english_group_reads_at_grade_8_or_below(group: str) -> None:
    grade = text_grade(as_prose(ENGLISH[group]))
    assert grade <= 8.0, f"{group}: Flesch-Kincaid grade {grade:.1f}"


@pytest.mark.parametrize("group", sorted(SPANISH))
def test_spanish_group_reads_at_fernandez_huerta_70_or_above(group: str) -> None:
    with spanish_textstat():
        ease = textstat.fernandez_huerta(as_prose(SPANISH[group]))
    assert ease >= 70, f"{group}: Fernández-Huerta {ease:.1f}"


def test_the_spanish_measure_tells_hard_spanish_from_easy() -> None:
    # Guards the check above: a dense clinical sentence must fail it, a plain one pass.
    hard = (
        "La administración intratecal de quimioterapia profiláctica constituye una intervención "
        "fundamental para la prevención de recidivas extramedulares en pacientes pediátricos."
    )
    easy = "La leucemia volvió. Esto se llama recaída. El equipo le dirá qué sigue."
    with spanish_textstat():
        assert textstat.fernandez_huerta(hard) < 70 <= textstat.fernandez_huerta(easy)
