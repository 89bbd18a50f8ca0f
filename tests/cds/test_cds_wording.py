"""How cards word things: ages, first sentences, cuts after whole words, and what discovery asks for."""

from __future__ import annotations

import pytest

from allpath.api.cds.prefetch import PREFETCH, TEMPLATES, observation_codes
from allpath.explain.labels import age_label, cut_at_word, first_sentence
from allpath.fhir.codes import code_tables


@pytest.mark.parametrize(
    ("age", "said"),
    [
        (5.91, "5 years 11 months"),  # the "Age 5.91"
        (0.0, "0 months"),
        (0.5, "6 months"),
        (1.0, "1 year"),
        (1.09, "1 year 1 month"),
        (21.99, "21 years 11 months"),  # never rounds up to the next birthday
        (22.0, "22 years"),
        (45.25, "45 years 3 months"),
    ],
)
def test_age_is_said_in_years_and_months(age, said):
    assert age_label(age) == said


def test_first_sentence_does_not_stop_at_an_initial_or_an_abbreviation():
    text = "Asparaginase sold as Elspar (from E. coli) is gone. Use another, e.g. pegaspargase. Next."
    assert first_sentence(text) == "Asparaginase sold as Elspar (from E. coli) is gone."
    assert first_sentence("Use another, e.g. pegaspargase. Next.") == "Use another, e.g. pegaspargase."


def test_cut_keeps_whole_words_and_marks_the_cut():
    text = "Remission induction chemotherapy; treatment to protect the brain and spinal cord"
    cut = cut_at_word(text, 40)
    assert cut == "Remission induction chemotherapy…"
    assert len(cut) <= 40
    assert text.startswith(cut.removesuffix("…"))
    assert cut_at_word("short enough", 40) == "short enough"


def test_discovery_asks_for_every_observation_code_the_importer_reads():
    (observations,) = [t for t in TEMPLATES if t.key == "observations"]
    query = PREFETCH["observations"]
    codes = observation_codes(code_tables())
    assert ("http://loinc.org", "97509-4") in codes  # mCODE CancerDiseaseStatus
    for system, code in codes:
        assert f"{system}|{code}" in query
    assert observations.codes == codes


def test_discovery_asks_for_treatment_history_with_the_medications_it_references():
    assert PREFETCH["medications"] == (
        "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication"
    )
    assert PREFETCH["administrations"] == (
        "MedicationAdministration?patient={{context.patientId}}&_include=MedicationAdministration:medication"
    )
    assert PREFETCH["statements"] == (
        "MedicationStatement?patient={{context.patientId}}&_include=MedicationStatement:medication"
    )
    for system, code in code_tables().procedures:
        assert f"{system}|{code}" in PREFETCH["procedures"]


def test_age_is_said_in_spanish_too():
    assert age_label(5.91, lang="es") == "5 años 11 meses"
    assert age_label(1.09, lang="es") == "1 año 1 mes"
    assert age_label(0.0, lang="es") == "0 meses"


def test_ages_can_be_said_in_every_language_allpath_speaks():
    from allpath.explain.labels import _AGE_WORDS
    from allpath.knowledge.schema import LANGUAGES

    assert set(_AGE_WORDS) == set(LANGUAGES)


def test_a_plan_with_nothing_to_cite_still_gets_a_valid_summary_card(engine):
    from allpath.api.cds.cards import CardFactory
    from allpath.api.cds.validate import validate_cds_response
    from allpath.facts import PatientFacts

    plan = engine.recommend(PatientFacts.parse({"age_years": 8, "disease_status": "newly_diagnosed"}))
    empty = plan.model_copy(update={"recommendations": [], "not_recommended": [], "alerts": []})
    cards, ids = CardFactory(engine.kb, engine.kb.disclaimer).plan_cards(empty, "hook-1")
    assert ids[0] == "plan-summary"
    assert cards[0]["summary"] == "8 years, ALL, newly diagnosed: no treatment option applies to these facts"
    assert validate_cds_response({"cards": cards}) == []
