"""`PatientFacts` derived from the record, so the engine is always fed from the history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pydantic import ValidationError

from allpath import dates
from allpath.course.events import CourseEvent
from allpath.course.state import CourseError, CourseState, replay
from allpath.facts import FactsError, PatientFacts, describe_validation_error

# A pregnancy has certainly ended 42 weeks after it was recorded; what follows is not known.
PREGNANCY_LASTS_AT_MOST = dt.timedelta(weeks=42)


def age_in_years(birth_date: dt.date, as_of: dt.date) -> float:
    """`allpath.dates.age_in_years`, refusing an `as_of` before the birth date as a course error."""
    if as_of < birth_date:
        raise CourseError(f"as_of {as_of.isoformat()} is before the birth date", None, "as_of")
    return dates.age_in_years(birth_date, as_of)


def facts_from_state(state: CourseState, birth_date: dt.date, as_of: dt.date) -> PatientFacts:
    if state.status == "not_diagnosed":
        raise CourseError(f"no diagnosis recorded on or before {as_of.isoformat()}", None, "as_of")
    try:
        return _facts(state, birth_date, as_of)
    except ValidationError as exc:  # for example an as_of that makes the patient older than 120
        raise FactsError(describe_validation_error(exc)) from None


def _induction_type(phase: str) -> str:
    # A re-induction opens the way to consolidation just as induction does.
    return "induction" if phase == "reinduction" else phase


def _pregnant(state: CourseState, as_of: dt.date) -> bool | None:
    recorded = state.pregnancy_recorded_on
    if state.pregnant and recorded is not None and as_of - recorded > PREGNANCY_LASTS_AT_MOST:
        return None
    return state.pregnant


def _facts(state: CourseState, birth_date: dt.date, as_of: dt.date) -> PatientFacts:
    return PatientFacts(
        age_years=age_in_years(birth_date, as_of),
        lineage=state.lineage,
        ph_status=state.ph_status,
        cns_involvement=state.cns_involvement,
        disease_status=state.status,
        completed_phases=tuple(_induction_type(p) for p in state.completed_phases),
        mrd_status=state.mrd_status,
        remission_count=state.remission_count,
        relapse_count=state.relapse_count,
        remission_duration_months=state.remission_duration_months,
        prior_regimen_count=state.prior_regimen_count,
        expected_survival_months=state.expected_survival_months,
        phase_in_progress=_induction_type(state.current_phase) if state.current_phase else "none",
        mrd_timepoint=state.mrd_timepoint,
        relapse_site=state.relapse_site,
        months_from_diagnosis_to_relapse=state.months_from_diagnosis_to_relapse,
        relapse_during_therapy=state.relapse_during_therapy,
        months_from_therapy_end_to_relapse=state.months_from_therapy_end_to_relapse,
        cd19_status=state.cd19_status,
        cd20_status=state.cd20_status,
        cd22_status=state.cd22_status,
        genetic_subtypes=state.genetic_subtypes,
        prior_therapies=state.prior_therapies,
        fit_for_intensive_therapy=state.fit_for_intensive_therapy,
        pregnant=_pregnant(state, as_of),
        down_syndrome=state.down_syndrome,
    )


def derive_facts(birth_date: dt.date, events: Iterable[CourseEvent], as_of: dt.date) -> PatientFacts:
    """The facts the history establishes as of a date (events dated later are ignored).

    Raises `CourseError` when the history is not a possible one, or holds no diagnosis by
    `as_of`; `FactsError` when the facts it leads to are out of range (an age over 120).
    """
    return facts_from_state(replay(events, until=as_of), birth_date, as_of)
