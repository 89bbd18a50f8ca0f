"""The event forms of the clinician's patient page: what each asks, and how a post becomes an event.

One small form per kind of event, so each asks only what that event needs and works without
JavaScript. A post is turned into plain data and checked by the course model (through the
store); every problem comes back named by the form field it belongs to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from allpath.course.events import PHASES, parse_event
from allpath.course.state import CourseError, CourseState, apply
from allpath.explain.labels import (
    EVENT_VALUE_LABELS,
    PHASE_LABELS,
    RELAPSE_SITE_LABELS,
    SUBTYPE_LABELS,
    THERAPY_LABELS,
)
from allpath.facts import GENETIC_SUBTYPES, PRIOR_THERAPIES, Problem


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    kind: str  # select | number | text
    options: tuple[tuple[str, str], ...] = ()
    hint: str | None = None
    required: bool = True
    # What the event holds: the text as is, a yes/no answer ("true"/"false"), or a one-item list.
    value: str = "text"  # text | bool | list


@dataclass(frozen=True, slots=True)
class EventForm:
    type: str
    title: str
    button: str
    fields: tuple[Field, ...] = ()


def _options(field: str, values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # The order is the form's (the likelier answer first); the words are the labels module's.
    return tuple((v, EVENT_VALUE_LABELS[field][v]) for v in values)


YES_NO = (("false", "No"), ("true", "Yes"))
NOT_KNOWN_YES_NO = (("", "Not known"), *YES_NO)
MARKER_OPTIONS = (("", "Not reported"), *_options("cd19", ("positive", "negative")))
PHASE_OPTIONS = tuple((p, PHASE_LABELS[p]) for p in PHASES)
EVENT_FORMS: tuple[EventForm, ...] = (
    EventForm(
        "diagnosed",
        "Diagnosis",
        "Record diagnosis",
        (
            Field("lineage", "Lineage", "select", _options("lineage", ("B", "T", "unknown"))),
            Field(
                "ph_status",
                "Philadelphia chromosome",
                "select",
                _options("ph_status", ("negative", "positive", "unknown")),
            ),
            Field(
                "cns_involvement",
                "Leukemia in the brain or spinal fluid",
                "select",
                NOT_KNOWN_YES_NO,
                required=False,
                value="bool",
            ),
            Field("down_syndrome", "Down syndrome", "select", NOT_KNOWN_YES_NO, required=False, value="bool"),
        ),
    ),
    EventForm(
        "phase_started", "Phase started", "Record phase start", (Field("phase", "Phase", "select", PHASE_OPTIONS),)
    ),
    EventForm(
        "phase_completed",
        "Phase completed",
        "Record phase completion",
        (Field("phase", "Phase", "select", PHASE_OPTIONS),),
    ),
    EventForm("remission_achieved", "Complete remission", "Record remission"),
    EventForm("induction_failed", "No remission after induction (refractory)", "Record refractory"),
    EventForm(
        "mrd_result",
        "MRD result",
        "Record MRD result",
        (Field("result", "Result", "select", _options("result", ("negative", "positive"))),),
    ),
    EventForm(
        "relapsed",
        "Relapse",
        "Record relapse",
        (Field("site", "Site", "select", tuple(RELAPSE_SITE_LABELS.items())),),
    ),
    EventForm(
        "transplant",
        "Stem cell transplant",
        "Record transplant",
        (
            Field(
                "kind",
                "Kind",
                "select",
                _options("kind", ("allogeneic", "autologous")),
            ),
        ),
    ),
    EventForm(
        "therapy_given",
        "Other therapy given",
        "Record therapy",
        (
            Field(
                "therapy",
                "Therapy",
                "select",
                # An allogeneic transplant is recorded with the transplant form.
                tuple((t, THERAPY_LABELS[t]) for t in PRIOR_THERAPIES if t != "allogeneic-sct"),
            ),
        ),
    ),
    EventForm(
        "immunophenotype",
        "Immunophenotype (surface markers)",
        "Record markers",
        tuple(Field(m, m.upper(), "select", MARKER_OPTIONS, required=False) for m in ("cd19", "cd20", "cd22")),
    ),
    EventForm(
        "genetics_result",
        "Genetic finding",
        "Record finding",
        (
            Field(
                "findings",
                "Finding",
                "select",
                tuple((g, SUBTYPE_LABELS[g]) for g in GENETIC_SUBTYPES),
                hint="One finding per entry; each adds to the earlier ones.",
                value="list",
            ),
        ),
    ),
    EventForm(
        "fitness_assessed",
        "Fitness for intensive chemotherapy",
        "Record assessment",
        (Field("fit", "Fit for intensive chemotherapy", "select", YES_NO, value="bool"),),
    ),
    EventForm(
        "pregnancy_status",
        "Pregnancy status",
        "Record pregnancy status",
        (Field("pregnant", "Pregnant", "select", YES_NO, value="bool"),),
    ),
    EventForm(
        "trial_enrolled",
        "Clinical trial enrolment",
        "Record trial enrolment",
        (Field("trial_id", "Trial identifier", "text", hint="For example an NCT number; optional.", required=False),),
    ),
    EventForm(
        "survival_estimate",
        "Expected survival",
        "Record estimate",
        (Field("months", "Months", "number", hint="The care team's estimate, in months."),),
    ),
    EventForm("hospice_started", "Hospice care started", "Record hospice"),
    EventForm("treatment_completed", "Treatment completed", "Record completion"),
    EventForm("died", "Death", "Record death"),
)
FORMS_BY_TYPE = {f.type: f for f in EVENT_FORMS}


def event_from_form(data: Mapping[str, str]) -> tuple[str | None, dict[str, object], list[Problem]]:
    """The event type, the event as plain data, and the problems found before the store sees it."""
    problems: list[Problem] = []
    event_type = data.get("type", "")
    form = FORMS_BY_TYPE.get(event_type)
    if form is None:
        return None, {}, [Problem("type", "is not a kind of event this page records")]
    event: dict[str, object] = {"type": event_type}
    # A correction names the entry it replaces; the store checks it exists and has this type.
    if (supersedes := (data.get("supersedes") or "").strip()) != "":
        event["supersedes"] = supersedes
    raw_date = (data.get("date") or "").strip()
    if not raw_date:
        problems.append(Problem("date", "is required"))
    else:
        try:
            event["date"] = dt.date.fromisoformat(raw_date)
        except ValueError:
            problems.append(Problem("date", "must be a date as YYYY-MM-DD"))
    for f in form.fields:
        value = (data.get(f.name) or "").strip()
        if not value:
            if f.required:
                problems.append(Problem(f.name, "is required"))
            continue
        if f.kind == "select" and value not in {v for v, _ in f.options}:
            problems.append(Problem(f.name, "is not one of the choices"))
        elif f.value == "bool":
            event[f.name] = value == "true"
        elif f.value == "list":
            event[f.name] = [value]
        elif f.kind == "number":
            try:
                event[f.name] = float(value)
            except ValueError:
                problems.append(Problem(f.name, "must be a number"))
        else:
            event[f.name] = value
    return event_type, event, problems


def form_field(form: EventForm, problem_field: str) -> str:
    """The input a problem belongs to ('event.phase' -> 'phase'); '_form' when it is about the whole event."""
    name = problem_field.removeprefix("event.")
    return name if name in {"date", *(f.name for f in form.fields)} else "_form"


def _sample(form: EventForm, overrides: Mapping[str, str]) -> dict[str, str]:
    # A stand-in for each field (its first choice, a 1 for numbers), enough to ask the state
    # machine whether this kind of event can happen now at all.
    values = {f.name: (f.options[0][0] if f.options and f.options[0][0] else "") for f in form.fields}
    for f in form.fields:
        if f.kind == "number":
            values[f.name] = "1"
        if f.kind == "select" and not values[f.name] and len(f.options) > 1:
            values[f.name] = f.options[1][0]
    return {**values, **overrides}


def _possible(state: CourseState, form: EventForm, on: dt.date, values: Mapping[str, str]) -> bool:
    _, data, problems = event_from_form({"type": form.type, "date": on.isoformat(), **values})
    if problems:
        return False
    try:
        apply(state, parse_event(data))
    except CourseError as exc:
        # Only "not now" counts: a refusal about the value chosen (a genetic finding that
        # contradicts the diagnosis) leaves the kind of event open with another value.
        return exc.field not in ("type", "phase", "date")
    return True


def forms_for_state(state: CourseState, on: dt.date) -> tuple[EventForm, ...]:
    """The event forms the course can take next, as of `on`; phase forms offer only the phases that fit.

    Asks the state machine (`course.state.apply`) with a stand-in event of each kind rather
    than repeating its rules here, so the page and the store can never disagree.
    """
    on = max(on, state.last_date or on)
    out = []
    for form in EVENT_FORMS:
        if form.type in ("phase_started", "phase_completed"):
            phases = tuple(o for o in PHASE_OPTIONS if _possible(state, form, on, {"phase": o[0]}))
            if phases:
                out.append(replace(form, fields=(replace(form.fields[0], options=phases),)))
            continue
        if _possible(state, form, on, _sample(form, {})):
            out.append(form)
    return tuple(out)


def form_values_of(payload: Mapping[str, Any], on: dt.date) -> dict[str, str]:
    """An event's stored values as a form holds them, to start a correction from."""
    values = {"date": on.isoformat()}
    for name, value in payload.items():
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            values[name] = str(value[0]) if value else ""
        elif value is None:
            values[name] = ""
        elif isinstance(value, float) and value.is_integer():
            values[name] = str(int(value))
        else:
            values[name] = str(value)
    return values
