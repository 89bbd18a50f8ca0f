"""API models, one family per entity (Create / Update / Public). Table models never leave the store."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from allpath.course import CourseEvent
from allpath.facts import PatientFacts
from allpath.plan import Plan
from allpath.store.auth import USERNAME_PATTERN, UserRecord
from allpath.store.service import PATIENT_ID_PATTERN, AuditRecord, EventRecord, PatientRecord

# Printable text only: no control characters (and so no NUL, which PostgreSQL refuses).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
MAX_VERSION = 2**31 - 1


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: dt.datetime


class UserPublic(BaseModel):
    id: int
    username: str
    role: Literal["clinician", "patient", "admin"]
    patient_id: str | None
    active: bool = True

    @classmethod
    def of(cls, user: UserRecord) -> UserPublic:
        return cls(id=user.id, username=user.username, role=user.role, patient_id=user.patient_id, active=user.active)


class UserUpdate(_In):
    active: bool = Field(description="false deactivates the account and revokes all its tokens and sessions.")


class PasswordChange(_In):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=10, max_length=200, pattern=TEXT_PATTERN)


class UserCreate(_In):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=10, max_length=200, pattern=TEXT_PATTERN)
    role: Literal["clinician", "patient", "admin"]
    patient_id: str | None = Field(None, pattern=PATIENT_ID_PATTERN)


class PatientCreate(_In):
    birth_date: dt.date
    display_name: str | None = Field(
        None, min_length=1, max_length=200, pattern=TEXT_PATTERN, description="Optional; never logged."
    )


class PatientUpdate(_In):
    expected_version: int = Field(ge=0, le=MAX_VERSION, description="The version this change is based on.")
    birth_date: dt.date | None = None
    display_name: str | None = Field(None, min_length=1, max_length=200, pattern=TEXT_PATTERN)
    clear_display_name: bool = False


class PatientSummary(BaseModel):
    """A patient as the list shows it: the record and where treatment stands."""

    id: str
    birth_date: dt.date
    display_name: str | None
    version: int
    created_at: dt.datetime
    status: str = Field(description="not_diagnosed, newly_diagnosed, in_remission, refractory, relapsed or deceased.")
    current_phase: str | None


class PatientPage(BaseModel):
    items: list[PatientSummary]
    total: int = Field(description="Patients this account may see, on all pages.")
    limit: int
    offset: int
    next: str | None = Field(description="The next page's path and query, or null on the last page.")


class TokenRequest(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class PatientPublic(BaseModel):
    id: str
    birth_date: dt.date
    display_name: str | None
    version: int
    created_at: dt.datetime

    @classmethod
    def of(cls, p: PatientRecord) -> PatientPublic:
        return cls(
            id=p.id, birth_date=p.birth_date, display_name=p.display_name, version=p.version, created_at=p.created_at
        )


class EventCreate(_In):
    """An event, wrapped as `{"event": {...}, "expected_version": N}` or flat as
    `{"type": ..., "date": ..., "expected_version": N}`."""

    expected_version: int | None = Field(
        None,
        ge=0,
        le=MAX_VERSION,
        description="The patient version this event is based on; stale gives 409. Omitted: checked at write time.",
    )
    event: CourseEvent

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        # The flat form is what most clients send first; it means the same as the wrapped one.
        if isinstance(data, dict) and "event" not in data and "type" in data:
            rest = {k: v for k, v in data.items() if k != "expected_version"}
            return {
                "event": rest,
                **({"expected_version": data["expected_version"]} if "expected_version" in data else {}),
            }
        return data


class EventPublic(BaseModel):
    id: str
    seq: int
    type: str
    date: dt.date
    data: dict[str, Any] = Field(description="The fields particular to this type of event.")
    supersedes: str | None
    superseded_by: str | None
    recorded_by: str
    recorded_at: dt.datetime

    @classmethod
    def of(cls, e: EventRecord) -> EventPublic:
        return cls(
            id=e.id,
            seq=e.seq,
            type=e.type,
            date=e.date,
            data=e.payload,
            supersedes=e.supersedes,
            superseded_by=e.superseded_by,
            recorded_by=e.recorded_by,
            recorded_at=e.recorded_at,
        )


class EventCreated(BaseModel):
    event: EventPublic
    version: int = Field(description="The patient's version after this event.")


class CourseStatePublic(BaseModel):
    status: str
    current_phase: str | None
    completed_phases: list[str]
    remission_count: int
    relapse_count: int
    in_hospice: bool
    treatment_completed: bool
    died_on: dt.date | None


class PatientPlan(BaseModel):
    patient_id: str
    as_of: dt.date
    version: int
    course: CourseStatePublic
    facts: PatientFacts
    plan: Plan


class AuditPublic(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    patient_id: str | None
    outcome: str
    detail: str | None

    @classmethod
    def of(cls, a: AuditRecord) -> AuditPublic:
        return cls(
            id=a.id,
            at=a.at,
            actor=a.actor,
            action=a.action,
            patient_id=a.patient_id,
            outcome=a.outcome,
            detail=a.detail,
        )


class SearchHitPublic(BaseModel):
    kind: Literal["agent", "phase", "topic", "source"]
    id: str
    title: str
    snippet: str
    score: float
