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
from typing import Literal

from pydantic import BaseModel, ConfigDict

from allpath.course.events import (
    CourseEvent,
    Diagnosed,
    Died,
    HospiceStarted,
    InductionFailed,
    MrdResultEvent,
    Phase,
    PhaseCompleted,
    PhaseStarted,
    Relapsed,
    RemissionAchieved,
    Retracted,
    SurvivalEstimate,
    Transplant,
    TreatmentCompleted,
    TrialEnrolled,
)

Status = Literal["not_diagnosed", "newly_diagnosed", "in_remission", "refractory", "relapsed"]
# Induction-type phases open a line of treatment: their outcome is a remission or a failure.
INDUCTION_PHASES: frozenset[str] = frozenset({"induction", "reinduction"})
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True, slots=True)
class CourseError(ValueError):
    """An event that cannot be accepted, with the reason and the event it concerns."""

    reason: str
    event_id: str | None = None
    field: str = "type"

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
    current_phase: Phase | None = None
    current_phase_started: dt.date | None = None
    # Phases finished in the current line of treatment; a relapse starts a new line.
    completed_phases: tuple[Phase, ...] = ()
    # Whether the induction-type phase of the current line has reached an outcome yet.
    line_started: bool = False
    line_outcome_known: bool = False
    remission_count: int = 0
    relapse_count: int = 0
    remission_started: dt.date | None = None
    remission_duration_months: float | None = None
    regimens_started: int = 0
    mrd_status: Literal["positive", "negative", "unknown"] = "unknown"
    expected_survival_months: float | None = None
    transplants: tuple[str, ...] = ()
    trials: int = 0
    in_hospice: bool = False
    treatment_completed: bool = False
    died_on: dt.date | None = None
    last_date: dt.date | None = None

    @property
    def prior_regimen_count(self) -> int:
        """Regimens received: an induction-type phase counts once its outcome is known."""
        pending = 1 if self.line_started and not self.line_outcome_known else 0
        return self.regimens_started - pending


def months_between(start: dt.date, end: dt.date) -> float:
    return round((end - start).days / DAYS_PER_MONTH, 1)


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
            assert state.remission_started is not None
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
            change["mrd_status"] = event.result
        case Transplant():
            change["transplants"] = (*state.transplants, event.kind)
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
            change["treatment_completed"] = True
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
    change: dict[str, object] = {"current_phase": phase, "treatment_completed": False}
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
