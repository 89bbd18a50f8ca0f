"""The course state machine: which histories are possible, and what they establish."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from allpath.course import CourseError, CourseState, apply, derive_facts, effective_events, parse_event, replay
from allpath.course.derive import age_in_years

D0 = dt.date(2024, 1, 1)


def ev(day: int, type_: str, **fields: Any) -> Any:
    return parse_event({"type": type_, "date": D0 + dt.timedelta(days=day), **fields})


def first_line() -> list[Any]:
    return [
        ev(0, "diagnosed", lineage="B", ph_status="negative", cns_involvement=False),
        ev(1, "phase_started", phase="induction"),
        ev(30, "remission_achieved"),
        ev(31, "phase_completed", phase="induction"),
    ]


def rejects(events: list[Any], reason_part: str) -> None:
    with pytest.raises(CourseError) as info:
        replay(events)
    assert reason_part in info.value.reason


def test_first_event_must_be_a_diagnosis() -> None:
    rejects([ev(0, "phase_started", phase="induction")], "first event of a course must be a diagnosis")


def test_no_maintenance_before_consolidation() -> None:
    rejects([*first_line(), ev(40, "phase_started", phase="maintenance")], "needs consolidation completed first")


def test_no_consolidation_without_remission() -> None:
    history = [ev(0, "diagnosed"), ev(1, "phase_started", phase="induction"), ev(20, "induction_failed")]
    rejects([*history, ev(40, "phase_started", phase="consolidation")], "consolidation needs a remission")


def test_no_relapse_without_a_remission() -> None:
    rejects([ev(0, "diagnosed"), ev(1, "phase_started", phase="induction"), ev(9, "relapsed")], "needs a remission")


def test_nothing_after_death() -> None:
    rejects([ev(0, "diagnosed"), ev(5, "died"), ev(6, "mrd_result", result="negative")], "nothing can be recorded")


def test_induction_completes_only_with_a_remission() -> None:
    history = [ev(0, "diagnosed"), ev(1, "phase_started", phase="induction")]
    rejects([*history, ev(30, "phase_completed", phase="induction")], "record remission_achieved first")


def test_two_phases_cannot_run_at_once() -> None:
    rejects(
        [*first_line(), ev(40, "phase_started", phase="consolidation"), ev(41, "phase_started", phase="maintenance")],
        "still in progress",
    )


def test_reinduction_needs_relapse_or_failure() -> None:
    rejects([*first_line(), ev(40, "phase_started", phase="reinduction")], "reinduction needs a relapse")


def test_no_treatment_phase_after_hospice() -> None:
    history = [ev(0, "diagnosed"), ev(1, "phase_started", phase="induction"), ev(20, "induction_failed")]
    rejects([*history, ev(25, "hospice_started"), ev(26, "phase_started", phase="reinduction")], "after hospice")


def test_second_diagnosis_is_refused() -> None:
    rejects([ev(0, "diagnosed"), ev(3, "diagnosed")], "already diagnosed")


def test_apply_refuses_an_event_dated_before_the_previous_one() -> None:
    state = apply(CourseState(), ev(10, "diagnosed"))
    with pytest.raises(CourseError) as info:
        apply(state, ev(5, "mrd_result", result="positive"))
    assert info.value.field == "date"


def test_replay_orders_by_date_so_a_backdated_entry_fits() -> None:
    # Recorded late, dated between diagnosis and remission: still a possible history.
    history = [*first_line(), ev(15, "mrd_result", result="positive")]
    assert replay(history).mrd_status == "positive"


def test_relapse_resets_completed_phases_and_counts_remission_length() -> None:
    history = [
        *first_line(),
        ev(35, "phase_started", phase="consolidation"),
        ev(120, "phase_completed", phase="consolidation"),
        ev(30 + 365, "relapsed", site="cns"),
    ]
    facts = derive_facts(dt.date(2014, 6, 1), history, D0 + dt.timedelta(days=400))
    assert facts.disease_status == "relapsed"
    assert facts.completed_phases == ()
    assert facts.relapse_count == 1 and facts.remission_count == 1
    assert facts.remission_duration_months == 12.0
    assert facts.prior_regimen_count == 1


def test_induction_in_progress_is_newly_diagnosed_with_no_prior_regimen() -> None:
    facts = derive_facts(dt.date(2016, 1, 1), first_line()[:2], D0 + dt.timedelta(days=10))
    assert facts.disease_status == "newly_diagnosed"
    assert facts.prior_regimen_count == 0


def test_completed_reinduction_counts_as_induction_for_consolidation() -> None:
    history = [
        ev(0, "diagnosed"),
        ev(1, "phase_started", phase="induction"),
        ev(30, "induction_failed"),
        ev(35, "phase_started", phase="reinduction"),
        ev(60, "remission_achieved"),
        ev(61, "phase_completed", phase="reinduction"),
        ev(62, "phase_started", phase="consolidation"),
    ]
    facts = derive_facts(dt.date(1990, 1, 1), history, D0 + dt.timedelta(days=70))
    assert facts.completed_phases == ("induction",)
    assert facts.prior_regimen_count == 2
    assert facts.disease_status == "in_remission"


def test_facts_ignore_events_after_as_of() -> None:
    facts = derive_facts(dt.date(2016, 1, 1), first_line(), D0 + dt.timedelta(days=29))
    assert facts.disease_status == "newly_diagnosed"


def test_no_facts_before_the_diagnosis() -> None:
    with pytest.raises(CourseError) as info:
        derive_facts(dt.date(2016, 1, 1), first_line(), D0 - dt.timedelta(days=1))
    assert info.value.field == "as_of"


def test_survival_estimate_and_mrd_reach_the_facts() -> None:
    history = [*first_line(), ev(40, "mrd_result", result="positive"), ev(41, "survival_estimate", months=6)]
    facts = derive_facts(dt.date(1950, 1, 1), history, D0 + dt.timedelta(days=50))
    assert facts.mrd_status == "positive"
    assert facts.expected_survival_months == 6


def test_age_turns_over_exactly_on_the_birthday() -> None:
    assert age_in_years(dt.date(2004, 5, 10), dt.date(2026, 5, 9)) < 22
    assert age_in_years(dt.date(2004, 5, 10), dt.date(2026, 5, 10)) == 22
    assert age_in_years(dt.date(2008, 2, 29), dt.date(2026, 3, 1)) == 18


# --- corrections ------------------------------------------------------------------------------


def test_correction_replaces_the_superseded_event() -> None:
    history = [ev(0, "diagnosed", lineage="B").model_copy(update={"id": "e1"})]
    history.append(ev(2, "diagnosed", lineage="T", supersedes="e1").model_copy(update={"id": "e2"}))
    assert replay(history).lineage == "T"


def test_retraction_removes_an_event_entered_in_error() -> None:
    history = [
        ev(0, "diagnosed").model_copy(update={"id": "e1"}),
        ev(1, "phase_started", phase="induction").model_copy(update={"id": "e2"}),
        ev(2, "retracted", supersedes="e2").model_copy(update={"id": "e3"}),
    ]
    assert replay(history).current_phase is None


def test_correction_must_keep_the_event_type() -> None:
    history = [
        ev(0, "diagnosed").model_copy(update={"id": "e1"}),
        ev(1, "mrd_result", result="negative", supersedes="e1").model_copy(update={"id": "e2"}),
    ]
    with pytest.raises(CourseError, match="must have the type"):
        effective_events(history)


def test_an_event_cannot_be_superseded_twice() -> None:
    history = [
        ev(0, "diagnosed").model_copy(update={"id": "e1"}),
        ev(1, "diagnosed", supersedes="e1").model_copy(update={"id": "e2"}),
        ev(2, "diagnosed", supersedes="e1").model_copy(update={"id": "e3"}),
    ]
    with pytest.raises(CourseError, match="already superseded"):
        effective_events(history)


def test_supersedes_must_name_an_earlier_event() -> None:
    with pytest.raises(CourseError, match="no earlier event"):
        effective_events([ev(0, "diagnosed", supersedes="nope").model_copy(update={"id": "e1"})])
