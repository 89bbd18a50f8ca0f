"""The treatment course: an append-only history of dated events, and the facts it establishes.

Pure: standard library and pydantic only. The store keeps the events; this package says
which histories are possible (`apply`, `replay`) and what they mean (`derive_facts`).
"""

from allpath.course.derive import age_in_years, derive_facts, facts_from_state
from allpath.course.events import (
    EVENT_TYPES,
    PHASES,
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
    event_json_schema,
    event_payload,
    parse_event,
)
from allpath.course.state import CourseError, CourseState, apply, chronological, effective_events, replay

__all__ = [
    "EVENT_TYPES",
    "PHASES",
    "CourseError",
    "CourseEvent",
    "CourseState",
    "Diagnosed",
    "Died",
    "HospiceStarted",
    "InductionFailed",
    "MrdResultEvent",
    "Phase",
    "PhaseCompleted",
    "PhaseStarted",
    "Relapsed",
    "RemissionAchieved",
    "Retracted",
    "SurvivalEstimate",
    "Transplant",
    "TreatmentCompleted",
    "TrialEnrolled",
    "age_in_years",
    "apply",
    "chronological",
    "derive_facts",
    "effective_events",
    "event_json_schema",
    "event_payload",
    "facts_from_state",
    "parse_event",
    "replay",
]
