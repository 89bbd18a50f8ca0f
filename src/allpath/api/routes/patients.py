"""Patients, their events, and the plan their record leads to."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response

from allpath.api.deps import ContextDep, RecommenderDep, RecordsDep
from allpath.api.errors import ERROR_RESPONSES
from allpath.api.models import (
    CourseStatePublic,
    EventCreate,
    EventCreated,
    EventPublic,
    PatientCreate,
    PatientPage,
    PatientPlan,
    PatientPublic,
    PatientSummary,
    PatientUpdate,
)
from allpath.course import CourseState
from allpath.store.service import InvalidInputError

router = APIRouter(prefix="/patients", tags=["patients"], responses=ERROR_RESPONSES)


def _json(body: bytes) -> Response:
    # The reads below build their answer from records the store made and serialise it once:
    # `response_model` (kept for the OpenAPI document) would validate and copy it again.
    return Response(body, media_type="application/json")


AsOf = Annotated[
    dt.date | None,
    Query(description="Date the record is read as of (default: today). Later events are ignored."),
]


@router.get("", response_model=PatientPage)
def list_patients(
    records: RecordsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Patients this account may see (a patient account: only its own), a page at a time, oldest
    first, each with its course status and current phase; `next` is the next page, null on the last."""
    total = records.count_patients()
    items = []
    for course in records.list_courses(limit=limit, offset=offset):
        state = course.state
        items.append(
            PatientSummary(
                **PatientPublic.of(course.patient).model_dump(),
                status="deceased" if state.died_on else state.status,
                current_phase=state.current_phase,
            )
        )
    following = offset + limit
    next_page = f"/patients?limit={limit}&offset={following}" if following < total else None
    page = PatientPage(items=items, total=total, limit=limit, offset=offset, next=next_page)
    return _json(page.model_dump_json().encode("utf-8"))


@router.post("", response_model=PatientPublic, status_code=201)
def create_patient(body: PatientCreate, records: RecordsDep, response: Response) -> PatientPublic:
    """Create a patient record with a new pseudonymous id."""
    patient = records.create_patient(body.birth_date, body.display_name)
    response.headers["Location"] = f"/patients/{patient.id}"
    return PatientPublic.of(patient)


@router.get("/{patient_id}", response_model=PatientPublic)
def get_patient(patient_id: str, records: RecordsDep) -> Response:
    return _json(PatientPublic.of(records.get_patient(patient_id)).model_dump_json().encode("utf-8"))


@router.patch("/{patient_id}", response_model=PatientPublic)
def update_patient(patient_id: str, body: PatientUpdate, records: RecordsDep) -> PatientPublic:
    """Change the birth date or display name; `expected_version` guards against lost updates (409)."""
    return PatientPublic.of(
        records.update_patient(
            patient_id,
            body.expected_version,
            display_name=body.display_name,
            clear_display_name=body.clear_display_name,
            birth_date=body.birth_date,
        )
    )


@router.get("/{patient_id}/events", response_model=list[EventPublic])
def list_events(patient_id: str, records: RecordsDep) -> list[EventPublic]:
    """The whole history in recording order, corrected events included (marked `superseded_by`)."""
    return [EventPublic.of(e) for e in records.list_events(patient_id)]


@router.post("/{patient_id}/events", response_model=EventCreated, status_code=201)
def append_event(patient_id: str, body: EventCreate, records: RecordsDep) -> EventCreated:
    """Record an event, wrapped (`{"event": {...}}`) or flat (`{"type": ..., "date": ...}`). Refused
    (422, with the reason) when the history makes it impossible; an unknown `type` is answered
    with the list of valid types."""
    event, version = records.append_event(patient_id, body.event, body.expected_version)
    return EventCreated(event=EventPublic.of(event), version=version)


def _course_public(state: CourseState) -> CourseStatePublic:
    return CourseStatePublic(
        status=state.status,
        current_phase=state.current_phase,
        completed_phases=list(state.completed_phases),
        remission_count=state.remission_count,
        relapse_count=state.relapse_count,
        in_hospice=state.in_hospice,
        treatment_completed=state.treatment_completed,
        died_on=state.died_on,
    )


@router.get("/{patient_id}/plan", response_model=PatientPlan)
def patient_plan(
    patient_id: str, records: RecordsDep, recommender: RecommenderDep, context: ContextDep, as_of: AsOf = None
) -> Response:
    """The engine's plan for the facts the record establishes as of a date."""
    course = records.course(patient_id, as_of, action="plan.read")
    if course.facts is None:
        raise InvalidInputError("no plan for this date", course.facts_problems)
    # The answer is a function of the stored version, the date and this process's knowledge base,
    # so its JSON is kept by those (the read itself was checked and audited above).
    key = (patient_id, course.patient.version, course.as_of)
    cached = context.plans.get(key)
    if cached is not None:
        return _json(cached)
    result = PatientPlan(
        patient_id=patient_id,
        as_of=course.as_of,
        version=course.patient.version,
        course=_course_public(course.state),
        facts=course.facts,
        plan=recommender.recommend(course.facts),
    )
    body = result.model_dump_json().encode("utf-8")
    context.plans.put(key, body)
    return _json(body)
