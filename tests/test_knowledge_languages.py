"""The knowledge base in each language families read: `KnowledgeBase.for_language`."""

from __future__ import annotations

import pytest

from allpath import PatientFacts
from allpath.engine import Engine
from allpath.errors import UnsupportedLanguageError
from allpath.knowledge import load_kb

KB = load_kb()


def test_english_is_the_knowledge_base_as_loaded() -> None:
    assert KB.for_language("en") is KB
    assert KB.language == "en"


def test_each_language_is_built_once_and_leads_back_to_english() -> None:
    spanish = KB.for_language("es")
    assert spanish.language == "es"
    assert KB.for_language("es") is spanish
    assert spanish.for_language("es") is spanish
    assert spanish.for_language("en") is KB


def test_spanish_copy_carries_the_spanish_family_texts_and_disclaimer() -> None:
    spanish = KB.for_language("es")
    fever = spanish.family_texts["call-fever"]
    assert (fever.title, fever.text) == ("Fiebre", "Tiene fiebre u otras señales de infección. Llame de inmediato.")
    assert spanish.disclaimer.startswith("allpath ayuda a tomar decisiones")
    # The English KB is untouched by the copy.
    assert KB.family_texts["call-fever"].title == "Fever"


def test_spanish_copy_keeps_ids_citations_and_clinician_texts() -> None:
    spanish = KB.for_language("es")
    assert spanish.rules is KB.rules and spanish.conditions is KB.conditions and spanish.sources is KB.sources
    for kind in ("topics", "phases", "agents", "family_texts", "glossary"):
        english, translated = getattr(KB, kind), getattr(spanish, kind)
        assert list(translated) == list(english), kind
        for key, entry in english.items():
            assert translated[key].citations == entry.citations, f"{kind}.{key}"


def test_a_plan_made_with_the_spanish_copy_is_the_same_plan() -> None:
    facts = PatientFacts(age_years=8, disease_status="newly_diagnosed", lineage="B")
    english = Engine(KB).recommend(facts)
    spanish = Engine(KB.for_language("es")).recommend(facts)
    assert [r.id for r in spanish.recommendations] == [r.id for r in english.recommendations]


@pytest.mark.parametrize("lang", ["fr", "", "ES", "es-MX"])
def test_an_unsupported_language_is_a_typed_error_naming_the_field(lang: str) -> None:
    with pytest.raises(UnsupportedLanguageError) as caught:
        KB.for_language(lang)
    assert [p.field for p in caught.value.problems] == ["lang"]
    assert repr(lang) in caught.value.problems[0].problem
