"""Where a patient's course stands, and the state machine that moves it one event at a time.

`apply(state, event)` returns the next state or raises `CourseError` with the reason the
event cannot happen now (no maintenance before consolidation, no relapse without a
remission, nothing after death...). `replay(events)` resolves corrections (`supersedes`)
and folds `apply` over the history in date order, which is how the store checks an event
before it accepts it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from allpath.course.events import (
    CourseEvent,
    Diagnosed,
    Died,
    FitnessAssessed,
    GeneticsResult,
    HospiceStarted,
    Immunophenotype,
    InductionFailed,
    MrdResultEvent,
    Phase,
    PhaseCompleted,
    PhaseStarted,
    PregnancyStatus,
    Relapsed,
    RemissionAchieved,
    Retracted,
    SurvivalEstimate,
    TherapyGiven,
    Transplant,
    TreatmentCompleted,
    TrialEnrolled,
)
from allpath.dates import months_between
from allpath.errors import CourseConflictError, Problem
from allpath.facts import GeneticSubtype, MarkerStatus, MrdTimepoint, PriorTherapy, RelapseSite

_T = TypeVar("_T")
Status = Literal["not_diagnosed", "newly_diagnosed", "in_remission", "refractory", "relapsed"]
# Induction-type phases open a line of treatment: their outcome is a remission or a failure.
INDUCTION_PHASES: frozenset[str] = frozenset({"induction", "reinduction"})
# Events that end whatever phase is under way (without completing it). The timeline closes its
# bars on the same events, so it never shows a phase running on past a relapse.
PHASE_ENDING_EVENTS: frozenset[str] = frozenset({"induction_failed", "relapsed", "hospice_started", "died"})


@dataclass(frozen=True, slots=True)
class CourseError(CourseConflictError):
    """An event that cannot be accepted, with the reason and the event it concerns."""

    reason: str
    event_id: str | None = None
    field: str = "type"

    def __post_init__(self) -> None:
        # Frozen: the base's attributes are set past the dataclass's guard, once, here.
        object.__setattr__(self, "problems", [Problem(self.field, self.reason)])
        object.__setattr__(self, "message", self.title)

    def __str__(self) -> str:
        where = f"event {self.event_id}: " if self.event_id else ""
        return f"{where}{self.reason}"


class CourseState(BaseModel):
    """Everything the history says so far. Immutable: `apply` returns a new one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Status = "not_diagnosed"
    diagnosed_on: dt.date | None = None
    lineage: Literal["B", "T", "unknown"] = "unknown"
    ph_status: Literal["positive", "negative", "unknown"] = "unknown"
    cns_involvement: bool | None = None
    down_syndrome: bool | None = None
    current_phase: Phase | None = None
    current_phase_started: dt.date | None = None
    # Phases finished in the current line of treatment; a relapse starts a new line.
    completed_phases: tuple[Phase, ...] = ()
    # Whether the induction-type phase of the current line has reached an outcome yet.
    line_started: bool = False
    line_outcome_known: bool = False
    # The phase of the current line started last (in progress or ended): dates an MRD result.
    line_last_phase: Phase | None = None
    remission_count: int = 0
    relapse_count: int = 0
    remission_started: dt.date | None = None
    remission_duration_months: float | None = None
    regimens_started: int = 0
    mrd_status: Literal["positive", "negative", "unknown"] = "unknown"
    mrd_timepoint: MrdTimepoint = "unknown"
    expected_survival_months: float | None = None
    transplants: tuple[str, ...] = ()
    trials: int = 0
    in_hospice: bool = False
    treatment_completed: bool = False
    treatment_completed_on: dt.date | None = None
    # The latest relapse, as it stood when it came.
    relapse_site: RelapseSite = "unknown"
    months_from_diagnosis_to_relapse: float | None = None
    relapse_during_therapy: bool | None = None
    months_from_therapy_end_to_relapse: float | None = None
    cd19_status: MarkerStatus = "unknown"
    cd20_status: MarkerStatus = "unknown"
    cd22_status: MarkerStatus = "unknown"
    genetic_subtypes: tuple[GeneticSubtype, ...] = ()
    prior_therapies: tuple[PriorTherapy, ...] = ()
    fit_for_intensive_therapy: bool | None = None
    pregnant: bool | None = None
    pregnancy_recorded_on: dt.date | None = None
    died_on: dt.date | None = None
    last_date: dt.date | None = None

    @property
    def prior_regimen_count(self) -> int:
        """Regimens received: an induction-type phase counts once its outcome is known."""
        pending = 1 if self.line_started and not self.line_outcome_known else 0
        return self.regimens_started - pending


def apply(state: CourseState, event: CourseEvent) -> CourseState:
    """The state after `event`, or `CourseError` saying why it cannot happen now."""

    def fail(reason: str, field: str = "type") -> CourseError:
        return CourseError(reason, event.id, field)

    if isinstance(event, Retracted):
        raise fail("a retraction is resolved before replay, not applied")
    if state.died_on is not None:
        raise fail(f"nothing can be recorded after death (died {state.died_on.isoformat()})")
    if state.last_date is not None and event.date < state.last_date:
        raise fail(
            f"date {event.date.isoformat()} is before the previous event ({state.last_date.isoformat()})", "date"
        )
    if state.status == "not_diagnosed" and not isinstance(event, Diagnosed):
        raise fail("the first event of a course must be a diagnosis")

    change: dict[str, object] = {"last_date": event.date}
    match event:
        case Diagnosed():
            if state.status != "not_diagnosed":
                raise fail("already diagnosed; correct the diagnosis with an event that supersedes it")
            change.update(
                status="newly_diagnosed",
                diagnosed_on=event.date,
                lineage=event.lineage,
                ph_status=event.ph_status,
                cns_involvement=event.cns_involvement,
                down_syndrome=event.down_syndrome,
            )
        case PhaseStarted():
            change.update(_start_phase(state, event))
            change["current_phase_started"] = event.date
        case PhaseCompleted():
            if state.current_phase != event.phase:
                running = state.current_phase or "no phase"
                raise fail(f"cannot complete {event.phase}: {running} is in progress", "phase")
            if event.phase in INDUCTION_PHASES and state.status != "in_remission":
                raise fail(f"{event.phase} completes with a remission: record remission_achieved first", "phase")
            change.update(
                current_phase=None,
                current_phase_started=None,
                completed_phases=(*state.completed_phases, event.phase),
            )
        case RemissionAchieved():
            if state.status == "in_remission":
                raise fail("already in remission")
            if not state.line_started:
                raise fail("a remission follows an induction or re-induction: start one first")
            change.update(
                status="in_remission",
                remission_count=state.remission_count + 1,
                remission_started=event.date,
                line_outcome_known=True,
            )
        case InductionFailed():
            if state.current_phase not in INDUCTION_PHASES:
                raise fail("induction_failed needs an induction or re-induction in progress")
            if state.status == "in_remission":
                raise fail("induction cannot fail after a remission was recorded in it")
            change.update(status="refractory", current_phase=None, current_phase_started=None, line_outcome_known=True)
        case Relapsed():
            if state.status != "in_remission":
                raise fail("a relapse needs a remission first")
            assert state.remission_started is not None and state.diagnosed_on is not None
            # Therapy counts as ongoing until it is recorded complete: a line whose end was
            # never recorded is not read as finished.
            during = not state.treatment_completed
            ended = state.treatment_completed_on
            since_end = None if during or ended is None else months_between(ended, event.date)
            change.update(
                relapse_site=event.site,
                months_from_diagnosis_to_relapse=months_between(state.diagnosed_on, event.date),
                relapse_during_therapy=during,
                months_from_therapy_end_to_relapse=since_end,
                # A relapse may have lost a marker the earlier disease carried (CD19 or CD22
                # escape after targeted therapy): the markers must be measured again.
                cd19_status="unknown",
                cd20_status="unknown",
                cd22_status="unknown",
                mrd_timepoint="unknown",
                line_last_phase=None,
                treatment_completed_on=None,
            )
            change.update(
                status="relapsed",
                relapse_count=state.relapse_count + 1,
                remission_duration_months=months_between(state.remission_started, event.date),
                remission_started=None,
                # A relapse ends the line of treatment: completed phases start again.
                completed_phases=(),
                current_phase=None,
                current_phase_started=None,
                line_started=False,
                line_outcome_known=False,
                mrd_status="unknown",
                treatment_completed=False,
            )
        case MrdResultEvent():
            change.update(mrd_status=event.result, mrd_timepoint=_mrd_timepoint(state))
        case Transplant():
            change["transplants"] = (*state.transplants, event.kind)
            if event.kind == "allogeneic":
                change["prior_therapies"] = _with(state.prior_therapies, "allogeneic-sct")
        case TherapyGiven():
            if event.therapy == "allogeneic-sct":
                raise fail("record an allogeneic stem cell transplant as a transplant event", "therapy")
            change["prior_therapies"] = _with(state.prior_therapies, event.therapy)
        case Immunophenotype():
            for marker in ("cd19", "cd20", "cd22"):
                value = getattr(event, marker)
                if value is not None:
                    change[f"{marker}_status"] = value
        case GeneticsResult():
            subtypes = state.genetic_subtypes
            for finding in event.findings:
                subtypes = _with(subtypes, finding)
            problem = _genetics_problem(subtypes, state.ph_status)
            if problem:
                raise fail(problem, "findings")
            change["genetic_subtypes"] = subtypes
        case FitnessAssessed():
            change["fit_for_intensive_therapy"] = event.fit
        case PregnancyStatus():
            change.update(pregnant=event.pregnant, pregnancy_recorded_on=event.date)
        case TrialEnrolled():
            change["trials"] = state.trials + 1
        case SurvivalEstimate():
            change["expected_survival_months"] = event.months
        case HospiceStarted():
            if state.in_hospice:
                raise fail("hospice care has already started")
            change.update(in_hospice=True, current_phase=None, current_phase_started=None)
        case TreatmentCompleted():
            if state.status != "in_remission":
                raise fail("treatment can be completed only in remission")
            if state.current_phase is not None:
                raise fail(f"{state.current_phase} is still in progress: complete it first")
            if state.treatment_completed:
                raise fail("treatment is already completed")
            change.update(treatment_completed=True, treatment_completed_on=event.date)
        case Died():
            change.update(died_on=event.date, current_phase=None, current_phase_started=None)
    return state.model_copy(update=change)


def _start_phase(state: CourseState, event: PhaseStarted) -> dict[str, object]:
    phase = event.phase

    def no(reason: str) -> CourseError:
        return CourseError(reason, event.id, "phase")

    if state.in_hospice:
        raise no("no new treatment phase after hospice care started")
    if state.current_phase is not None:
        raise no(f"{state.current_phase} is still in progress: complete it first")
    if phase in state.completed_phases:
        raise no(f"{phase} is already completed in this line of treatment")
    change: dict[str, object] = {
        "current_phase": phase,
        "line_last_phase": phase,
        "treatment_completed": False,
        "treatment_completed_on": None,
    }
    if phase == "induction":
        if state.status != "newly_diagnosed" or state.line_started:
            raise no("induction is the first phase after diagnosis; after a relapse or failure use reinduction")
    elif phase == "reinduction":
        if state.status not in ("relapsed", "refractory"):
            raise no("reinduction needs a relapse or a failed induction")
    elif phase == "consolidation":
        if state.status != "in_remission":
            raise no("consolidation needs a remission")
        if not INDUCTION_PHASES & set(state.completed_phases):
            raise no("consolidation needs induction (or re-induction) completed first")
    elif phase == "maintenance":
        if state.status != "in_remission":
            raise no("maintenance needs a remission")
        if "consolidation" not in state.completed_phases:
            raise no("maintenance needs consolidation completed first")
    if phase in INDUCTION_PHASES:
        change.update(line_started=True, line_outcome_known=False, regimens_started=state.regimens_started + 1)
    return change


def _mrd_timepoint(state: CourseState) -> MrdTimepoint:
    """When an MRD result taken now was taken, by the phase of the line started last.

    Induction (or re-induction) in progress or ended, and consolidation not yet started: end of
    induction. Consolidation in progress or ended, maintenance not yet started: end of
    consolidation. Maintenance, or treatment recorded complete: later. No phase started yet in
    this line (at diagnosis, or after a relapse before re-induction): unknown, for the result
    measures no response to treatment.
    """
    if state.treatment_completed:
        return "later"
    match state.line_last_phase:
        case "induction" | "reinduction":
            return "end_of_induction"
        case "consolidation":
            return "end_of_consolidation"
        case "maintenance":
            return "later"
        case _:
            return "unknown"


def _with(values: tuple[_T, ...], value: _T) -> tuple[_T, ...]:
    return values if value in values else (*values, value)


def _genetics_problem(subtypes: tuple[GeneticSubtype, ...], ph_status: str) -> str | None:
    """Findings that cannot stand together (the course refuses what `PatientFacts` would)."""
    found = set(subtypes)
    if "bcr-abl1" in found:
        if ph_status == "negative":
            return "bcr-abl1 contradicts ph_status negative recorded at diagnosis (correct the diagnosis first)"
        for other in ("ph-like", "abl-class"):
            if other in found:
                return f"{other} excludes bcr-abl1: it names a BCR::ABL1-negative subtype"
    elif "abl1-t315i" in found:
        return "abl1-t315i is a mutation of BCR::ABL1: it needs bcr-abl1 (in this result or an earlier one)"
    return None


def effective_events(events: Iterable[CourseEvent]) -> list[CourseEvent]:
    """The history with corrections resolved: superseded and retracted events removed.

    An event may supersede only an earlier one (in recording order), that is not already
    superseded; a correction replaces it with an event of the same type.
    """
    by_id: dict[str, CourseEvent] = {}
    superseded: set[str] = set()
    kept: list[CourseEvent] = []
    for event in events:
        target_id = event.supersedes
        if target_id is not None:
            target = by_id.get(target_id)
            if target is None:
                raise CourseError(f"supersedes {target_id!r}: no earlier event with that id", event.id, "supersedes")
            if target_id in superseded:
                raise CourseError(f"supersedes {target_id!r}: that event is already superseded", event.id, "supersedes")
            if isinstance(target, Retracted):
                raise CourseError("a retraction cannot be superseded; record the event again", event.id, "supersedes")
            if not isinstance(event, Retracted) and event.type != target.type:
                raise CourseError(
                    f"a correction must have the type of the event it supersedes ({target.type})", event.id, "type"
                )
            superseded.add(target_id)
        if event.id is not None:
            if event.id in by_id:
                raise CourseError(f"duplicate event id {event.id!r}", event.id, "id")
            by_id[event.id] = event
        kept.append(event)
    return [e for e in kept if not isinstance(e, Retracted) and (e.id is None or e.id not in superseded)]


def chronological(events: Sequence[CourseEvent]) -> list[CourseEvent]:
    """Date order; events of one day stay in the order they were recorded."""
    return sorted(events, key=lambda e: e.date)


def replay(events: Iterable[CourseEvent], until: dt.date | None = None) -> CourseState:
    """Fold `apply` over the effective history (up to and including `until`, if given)."""
    state = CourseState()
    for event in chronological(effective_events(events)):
        if until is not None and event.date > until:
            break
        state = apply(state, event)
    return state
