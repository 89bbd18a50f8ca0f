"""The v2 facts the course derives: the journey, relapse timing, biology, therapies received, the person."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from allpath.course import (
    PHASE_ENDING_EVENTS,
    CourseError,
    derive_facts,
    parse_event,
    parse_stored_event,
    replay,
)
from allpath.course.state import months_between
from allpath.facts import PatientFacts

BIRTH = dt.date(1990, 3, 1)
D0 = dt.date(2024, 1, 1)


def ev(day: int, type_: str, **fields: Any) -> Any:
    return parse_event({"type": type_, "date": D0 + dt.timedelta(days=day), **fields})


def facts(events: list[Any], day: int | None = None) -> PatientFacts:
    as_of = D0 + dt.timedelta(days=day) if day is not None else events[-1].date
    return derive_facts(BIRTH, events, as_of)


def refused(events: list[Any]) -> CourseError:
    with pytest.raises(CourseError) as info:
        replay(events)
    return info.value


def diagnosis(**fields: Any) -> list[Any]:
    return [ev(0, "diagnosed", lineage="B", ph_status="unknown", **fields)]


def through_induction() -> list[Any]:
    return [*diagnosis(), ev(1, "phase_started", phase="induction"), ev(30, "remission_achieved")]


def through_consolidation() -> list[Any]:
    return [
        *through_induction(),
        ev(31, "phase_completed", phase="induction"),
        ev(35, "phase_started", phase="consolidation"),
        ev(180, "phase_completed", phase="consolidation"),
    ]


def in_maintenance() -> list[Any]:
    return [*through_consolidation(), ev(185, "phase_started", phase="maintenance")]


def treatment_ended(day: int = 900) -> list[Any]:
    return [*in_maintenance(), ev(day - 1, "phase_completed", phase="maintenance"), ev(day, "treatment_completed")]


# --- phase in progress ---------------------------------------------------------------------------


def test_no_phase_is_in_progress_at_diagnosis() -> None:
    assert facts(diagnosis()).phase_in_progress == "none"


def test_the_phase_under_way_is_in_progress() -> None:
    assert facts(through_induction()).phase_in_progress == "induction"
    assert facts(in_maintenance()).phase_in_progress == "maintenance"


def test_between_phases_none_is_in_progress() -> None:
    assert facts(through_consolidation()).phase_in_progress == "none"


def test_reinduction_in_progress_is_induction() -> None:
    history = [*in_maintenance(), ev(400, "relapsed"), ev(410, "phase_started", phase="reinduction")]
    assert facts(history).phase_in_progress == "induction"


def test_relapse_ends_the_phase_under_way() -> None:
    history = [*in_maintenance(), ev(400, "relapsed")]
    assert facts(history).phase_in_progress == "none"
    assert replay(history).current_phase is None


@pytest.mark.parametrize("kind", sorted(PHASE_ENDING_EVENTS))
def test_phase_ending_events_end_the_phase_in_the_state_machine(kind: str) -> None:
    # The timeline closes its bars on these kinds: the state machine must agree.
    before = in_maintenance() if kind == "relapsed" else [*diagnosis(), ev(1, "phase_started", phase="induction")]
    state = replay([*before, ev(400, kind)])
    assert state.current_phase is None


# --- relapse timing and site ---------------------------------------------------------------------


def test_relapse_twenty_months_into_therapy_is_during_therapy() -> None:
    day = 609  # 609 days = 20.0 months of 365.25/12 days
    found = facts([*in_maintenance(), ev(day, "relapsed", site="marrow")])
    assert found.relapse_during_therapy is True
    assert found.months_from_diagnosis_to_relapse == 20.0
    assert found.months_from_therapy_end_to_relapse is None
    assert found.relapse_site == "marrow"


def test_relapse_after_treatment_completed_is_off_therapy_and_counts_from_its_end() -> None:
    found = facts([*treatment_ended(day=900), ev(900 + 365, "relapsed", site="cns")])
    assert found.relapse_during_therapy is False
    assert found.months_from_therapy_end_to_relapse == 12.0
    assert found.relapse_site == "cns"


def test_relapse_with_therapy_never_recorded_complete_is_during_therapy() -> None:
    # Every phase done but no treatment_completed: the end of therapy is not assumed.
    history = [*in_maintenance(), ev(800, "phase_completed", phase="maintenance"), ev(1000, "relapsed")]
    assert facts(history).relapse_during_therapy is True


def test_relapse_months_use_the_month_of_the_remission_duration() -> None:
    found = facts([*treatment_ended(day=900), ev(1333, "relapsed")])
    assert found.months_from_diagnosis_to_relapse == months_between(D0, D0 + dt.timedelta(days=1333))
    assert found.remission_duration_months == months_between(D0 + dt.timedelta(days=30), D0 + dt.timedelta(1333))
    assert found.months_from_therapy_end_to_relapse == months_between(
        D0 + dt.timedelta(days=900), D0 + dt.timedelta(days=1333)
    )


def test_second_relapse_is_timed_from_the_first_diagnosis_and_its_own_line() -> None:
    history = [
        *treatment_ended(day=900),
        ev(1265, "relapsed", site="marrow"),
        ev(1270, "phase_started", phase="reinduction"),
        ev(1300, "remission_achieved"),
        ev(1400, "relapsed", site="testicular"),
    ]
    found = facts(history)
    assert found.relapse_site == "testicular"
    assert found.months_from_diagnosis_to_relapse == months_between(D0, D0 + dt.timedelta(days=1400))
    # The second line (re-induction) was still under way, whatever the first line's end.
    assert found.relapse_during_therapy is True
    assert found.months_from_therapy_end_to_relapse is None


def test_relapse_site_not_given_is_unknown() -> None:
    assert facts([*in_maintenance(), ev(400, "relapsed")]).relapse_site == "unknown"


def test_before_any_relapse_the_relapse_facts_are_unknown() -> None:
    found = facts(treatment_ended())
    assert (found.relapse_site, found.months_from_diagnosis_to_relapse, found.relapse_during_therapy) == (
        "unknown",
        None,
        None,
    )


def test_stored_relapse_site_other_of_v1_reads_as_unknown_but_new_events_cannot_use_it() -> None:
    stored = parse_stored_event({"type": "relapsed", "date": "2024-06-01", "site": "other", "id": "e1"})
    assert stored.site == "unknown"
    with pytest.raises(ValidationError):
        parse_event({"type": "relapsed", "date": "2024-06-01", "site": "other"})


# --- MRD timepoint -------------------------------------------------------------------------------


def test_no_mrd_result_means_the_timepoint_is_unknown() -> None:
    assert facts(in_maintenance()).mrd_timepoint == "unknown"


def test_mrd_during_induction_is_end_of_induction() -> None:
    assert facts([*through_induction(), ev(29, "mrd_result", result="negative")]).mrd_timepoint == "end_of_induction"


def test_mrd_after_induction_before_consolidation_is_end_of_induction() -> None:
    history = [
        *through_induction(),
        ev(31, "phase_completed", phase="induction"),
        ev(33, "mrd_result", result="positive"),
    ]
    assert facts(history).mrd_timepoint == "end_of_induction"


def test_mrd_during_or_right_after_consolidation_is_end_of_consolidation() -> None:
    during = [*through_consolidation()[:-1], ev(170, "mrd_result", result="negative")]
    after = [*through_consolidation(), ev(182, "mrd_result", result="negative")]
    assert facts(during).mrd_timepoint == facts(after).mrd_timepoint == "end_of_consolidation"


def test_mrd_in_maintenance_or_after_treatment_is_later() -> None:
    assert facts([*in_maintenance(), ev(300, "mrd_result", result="negative")]).mrd_timepoint == "later"
    assert facts([*treatment_ended(), ev(950, "mrd_result", result="negative")]).mrd_timepoint == "later"


def test_mrd_before_the_first_phase_measures_no_response_and_has_no_timepoint() -> None:
    assert facts([*diagnosis(), ev(0, "mrd_result", result="positive")]).mrd_timepoint == "unknown"


def test_the_latest_mrd_result_gives_the_timepoint() -> None:
    history = [*through_induction(), ev(29, "mrd_result", result="positive")]
    history += [ev(31, "phase_completed", phase="induction"), ev(35, "phase_started", phase="consolidation")]
    history += [ev(150, "mrd_result", result="negative")]
    found = facts(history)
    assert (found.mrd_status, found.mrd_timepoint) == ("negative", "end_of_consolidation")


def test_relapse_resets_the_mrd_timepoint_with_the_result() -> None:
    history = [*in_maintenance(), ev(300, "mrd_result", result="negative"), ev(400, "relapsed")]
    found = facts(history)
    assert (found.mrd_status, found.mrd_timepoint) == ("unknown", "unknown")


def test_mrd_in_reinduction_is_end_of_induction() -> None:
    history = [*in_maintenance(), ev(400, "relapsed"), ev(401, "phase_started", phase="reinduction")]
    assert facts([*history, ev(430, "mrd_result", result="negative")]).mrd_timepoint == "end_of_induction"


# --- prior therapies -----------------------------------------------------------------------------


def test_therapies_given_are_prior_therapies() -> None:
    history = [*through_induction(), ev(40, "therapy_given", therapy="tki"), ev(50, "therapy_given", therapy="car-t")]
    assert facts(history).prior_therapies == ("car-t", "tki")


def test_an_allogeneic_transplant_is_a_prior_allogeneic_sct_and_an_autologous_one_is_not() -> None:
    assert facts([*through_induction(), ev(60, "transplant", kind="allogeneic")]).prior_therapies == ("allogeneic-sct",)
    assert facts([*through_induction(), ev(60, "transplant", kind="autologous")]).prior_therapies == ()


def test_allogeneic_sct_as_a_therapy_given_is_refused_naming_the_field() -> None:
    error = refused([*diagnosis(), ev(5, "therapy_given", therapy="allogeneic-sct")])
    assert error.field == "therapy" and "transplant" in error.reason


def test_unknown_therapy_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="therapy"):
        parse_event({"type": "therapy_given", "date": "2024-01-01", "therapy": "aspirin"})


# --- markers and genetics ------------------------------------------------------------------------


def test_immunophenotype_sets_the_markers_it_reports_and_keeps_the_others() -> None:
    history = [*diagnosis(), ev(1, "immunophenotype", cd19="positive", cd22="negative")]
    history.append(ev(2, "immunophenotype", cd20="positive", cd22="positive"))
    found = facts(history)
    assert (found.cd19_status, found.cd20_status, found.cd22_status) == ("positive", "positive", "positive")


def test_markers_are_unknown_after_a_relapse_until_measured_again() -> None:
    history = [*through_induction(), ev(20, "immunophenotype", cd19="positive"), ev(200, "relapsed")]
    assert facts(history).cd19_status == "unknown"


def test_an_immunophenotype_reporting_no_marker_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one of cd19"):
        parse_event({"type": "immunophenotype", "date": "2024-01-01"})


def test_genetics_results_add_up() -> None:
    history = [
        *diagnosis(),
        ev(3, "genetics_result", findings=["kmt2a"]),
        ev(9, "genetics_result", findings=["iamp21"]),
    ]
    assert facts(history).genetic_subtypes == ("kmt2a", "iamp21")


def test_bcr_abl1_answers_an_unknown_ph_status() -> None:
    assert facts([*diagnosis(), ev(3, "genetics_result", findings=["bcr-abl1"])]).ph_status == "positive"


def test_bcr_abl1_with_ph_negative_is_refused_naming_findings() -> None:
    history = [ev(0, "diagnosed", ph_status="negative"), ev(3, "genetics_result", findings=["bcr-abl1"])]
    error = refused(history)
    assert error.field == "findings" and "ph_status negative" in error.reason


def test_t315i_needs_bcr_abl1_in_this_or_an_earlier_result() -> None:
    assert refused([*diagnosis(), ev(3, "genetics_result", findings=["abl1-t315i"])]).field == "findings"
    history = [*diagnosis(), ev(3, "genetics_result", findings=["bcr-abl1"])]
    history.append(ev(90, "genetics_result", findings=["abl1-t315i"]))
    assert facts(history).genetic_subtypes == ("bcr-abl1", "abl1-t315i")


def test_ph_like_beside_bcr_abl1_is_refused() -> None:
    history = [
        *diagnosis(),
        ev(3, "genetics_result", findings=["bcr-abl1"]),
        ev(4, "genetics_result", findings=["ph-like"]),
    ]
    assert "excludes bcr-abl1" in refused(history).reason


def test_a_genetics_result_without_findings_is_refused() -> None:
    with pytest.raises(ValidationError, match="findings"):
        parse_event({"type": "genetics_result", "date": "2024-01-01", "findings": []})


# --- the person ----------------------------------------------------------------------------------


def test_unrecorded_fitness_pregnancy_and_down_syndrome_are_unknown() -> None:
    found = facts(diagnosis())
    assert (found.fit_for_intensive_therapy, found.pregnant, found.down_syndrome) == (None, None, None)


def test_down_syndrome_comes_from_the_diagnosis() -> None:
    assert facts(diagnosis(down_syndrome=True)).down_syndrome is True


def test_the_latest_fitness_assessment_counts() -> None:
    history = [*diagnosis(), ev(1, "fitness_assessed", fit=True), ev(200, "fitness_assessed", fit=False)]
    assert facts(history, day=100).fit_for_intensive_therapy is True
    assert facts(history).fit_for_intensive_therapy is False


def test_fitness_must_be_a_boolean() -> None:
    with pytest.raises(ValidationError, match="fit"):
        parse_event({"type": "fitness_assessed", "date": "2024-01-01", "fit": "yes"})


def test_a_pregnancy_is_unknown_once_42_weeks_have_passed() -> None:
    history = [*diagnosis(), ev(1, "pregnancy_status", pregnant=True)]
    assert facts(history, day=1 + 7 * 42).pregnant is True
    assert facts(history, day=2 + 7 * 42).pregnant is None


def test_not_pregnant_stays_until_recorded_otherwise() -> None:
    history = [*diagnosis(), ev(1, "pregnancy_status", pregnant=True), ev(100, "pregnancy_status", pregnant=False)]
    assert facts(history, day=50).pregnant is True
    assert facts(history, day=1000).pregnant is False
