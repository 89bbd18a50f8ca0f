"""The input contract: what PatientFacts accepts, and how it names what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from allpath.facts import FactsError, PatientFacts

NEW = {"age_years": 30, "disease_status": "newly_diagnosed"}


def problems(data: Any) -> list[str]:
    with pytest.raises(FactsError) as excinfo:
        PatientFacts.parse(data)
    return [str(p) for p in excinfo.value.problems]


def test_defaults_fill_unknowns() -> None:
    facts = PatientFacts.parse(NEW)
    assert (facts.lineage, facts.ph_status, facts.mrd_status) == ("unknown", "unknown", "unknown")
    assert facts.cns_involvement is None and facts.completed_phases == ()


def test_negative_age_names_the_field() -> None:
    assert problems({**NEW, "age_years": -1}) == ["age_years: must be >= 0"]


def test_age_above_120_is_refused() -> None:
    assert problems({**NEW, "age_years": 121}) == ["age_years: must be <= 120"]


def test_age_as_text_is_refused_not_coerced() -> None:
    assert problems({**NEW, "age_years": "30"}) == ["age_years: must be a number"]


def test_boolean_is_not_a_count() -> None:
    assert problems({**NEW, "remission_count": True}) == ["remission_count: must be a whole number"]


def test_unknown_field_is_an_error() -> None:
    assert problems({**NEW, "name": "Jane"}) == ["name: is not a known field"]


def test_misspelt_field_names_the_field_it_probably_meant() -> None:
    got = problems({**NEW, "mrd_stauts": "negative"})
    assert got == ["mrd_stauts: is not a known field (did you mean `mrd_status`?)"]


def test_missing_required_fields_are_all_named() -> None:
    assert problems({}) == ["age_years: is required", "disease_status: is required"]


def test_enum_error_lists_the_choices() -> None:
    (message,) = problems({**NEW, "lineage": "X"})
    assert message.startswith("lineage: must be one of") and "'B'" in message


def test_bad_phase_names_its_position() -> None:
    assert problems({**NEW, "completed_phases": ["transplant"]})[0].startswith("completed_phases[0]: must be one of")


def test_infinite_duration_is_refused() -> None:
    data = {"age_years": 30, "disease_status": "relapsed", "remission_count": 1, "relapse_count": 1}
    assert problems({**data, "remission_duration_months": float("inf")}) == [
        "remission_duration_months: must be a finite number"
    ]


def test_newly_diagnosed_with_history_names_each_field() -> None:
    found = problems({**NEW, "remission_count": 1, "prior_regimen_count": 1, "completed_phases": ["induction"]})
    assert "remission_count: must be 0 when disease_status is newly_diagnosed" in found
    assert "prior_regimen_count: must be 0 when disease_status is newly_diagnosed" in found
    assert "completed_phases: must be empty when disease_status is newly_diagnosed" in found


def test_in_remission_needs_more_remissions_than_relapses() -> None:
    found = problems({"age_years": 9, "disease_status": "in_remission", "remission_count": 1, "relapse_count": 1})
    assert found == ["remission_count: must be > relapse_count (1) when disease_status is in_remission"]


def test_relapsed_needs_a_relapse() -> None:
    found = problems({"age_years": 9, "disease_status": "relapsed", "remission_count": 1})
    assert found == ["relapse_count: must be >= 1 when disease_status is relapsed"]


def test_more_relapses_than_remissions_is_a_contradiction() -> None:
    found = problems({"age_years": 9, "disease_status": "relapsed", "remission_count": 1, "relapse_count": 2})
    assert found == ["relapse_count: must be <= remission_count (1): a relapse follows a remission"]


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        (["consolidation"], "completed_phases: consolidation needs induction completed first"),
        (["induction", "maintenance"], "completed_phases: maintenance needs consolidation completed first"),
    ],
)
def test_phases_must_complete_in_order(phases: list[str], message: str) -> None:
    data = {"age_years": 9, "disease_status": "in_remission", "remission_count": 1, "completed_phases": phases}
    assert message in problems(data)


def test_phases_are_normalised_to_treatment_order() -> None:
    facts = PatientFacts.parse(
        {
            "age_years": 9,
            "disease_status": "in_remission",
            "remission_count": 1,
            "completed_phases": ["consolidation", "induction", "induction"],
        }
    )
    assert facts.completed_phases == ("induction", "consolidation")


def test_malformed_json_text_says_so() -> None:
    (message,) = problems('{"age_years": 3,')
    assert message.startswith("$: malformed JSON")


def test_non_object_input_says_what_it_got() -> None:
    assert problems("[1, 2]") == ["$: expected a JSON object, got an array"]
