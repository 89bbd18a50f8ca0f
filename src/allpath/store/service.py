"""The repository/service API over the tables: what the REST API and the web pages call.

`Records(session, actor)` is patient data as one actor may see it. Every method is one unit
of work: it checks access, does the read or write, writes the audit row and commits. A denied
access is audited too (in its own commit), then raised as `NotFoundError` for a record the actor
may not see (so ids cannot be probed) or `ForbiddenError` for an action their role may not take.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from allpath.course import (
    CourseError,
    CourseEvent,
    CourseState,
    derive_facts,
    event_payload,
    parse_event,
    parse_stored_event,
    replay,
)
from allpath.errors import AllpathError, BadInputError, NotAllowedError, RecordNotFoundError, StaleWriteError
from allpath.facts import FactsError, PatientFacts, Problem, describe_validation_error
from allpath.store.cache import COURSE_CACHE, LruCache
from allpath.store.db import durable_session
from allpath.store.models import AuditRow, EventRow, PatientRow

log = logging.getLogger("allpath.store")

Role = Literal["clinician", "patient", "admin"]
ROLES: tuple[Role, ...] = ("clinician", "patient", "admin")
# Crockford's base32 without look-alikes: ids are read aloud and typed by people.
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PATIENT_ID_PATTERN = r"^P[0-9A-Z]{10}$"
PATIENT_ID_RE = re.compile(PATIENT_ID_PATTERN)
# Every date the service accepts lies in this range (birth dates, as_of); beyond it date
# arithmetic (a birthday in year 10000) would fail, and no record of a living person needs it.
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2199, 12, 31)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_patient_id() -> str:
    return "P" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def new_event_id() -> str:
    return "ev_" + secrets.token_hex(8)


# --- errors ---------------------------------------------------------------------------------


# The store's errors are allpath's own; the name stays for the callers that catch any of them.
StoreError = AllpathError


class NotFoundError(RecordNotFoundError):
    pass


class ForbiddenError(NotAllowedError):
    pass


class ConflictError(StaleWriteError):
    def __init__(self, message: str, current_version: int):
        super().__init__(
            message, [Problem("expected_version", f"is stale: the record is at version {current_version}")]
        )
        self.current_version = current_version


class InvalidInputError(BadInputError):
    pass


# --- records (what leaves the store) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking. `patient_id` is set for patient accounts only."""

    username: str
    role: Role
    user_id: int | None = None
    patient_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in ("clinician", "admin")


SYSTEM = Actor(username="system", role="admin")


@dataclass(frozen=True, slots=True)
class PatientRecord:
    id: str
    birth_date: dt.date
    display_name: str | None
    version: int
    created_at: dt.datetime

    @classmethod
    def of(cls, row: PatientRow | PatientColumns) -> PatientRecord:
        return cls(row.id, row.birth_date, row.display_name, row.version, row.created_at)


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: str
    patient_id: str
    seq: int
    type: str
    date: dt.date
    payload: dict[str, Any]
    supersedes: str | None
    recorded_by: str
    recorded_at: dt.datetime
    superseded_by: str | None = None

    @classmethod
    def of(cls, row: EventRow | EventColumns, superseded_by: str | None = None) -> EventRecord:
        return cls(
            row.id,
            row.patient_id,
            row.seq,
            row.type,
            row.date,
            dict(row.payload),
            row.supersedes,
            row.recorded_by,
            row.recorded_at,
            superseded_by,
        )

    def to_event(self) -> CourseEvent:
        return parse_stored_event(
            {**self.payload, "id": self.id, "type": self.type, "date": self.date, "supersedes": self.supersedes}
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: dt.datetime
    actor: str
    action: str
    patient_id: str | None
    outcome: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Course:
    """A patient's record as of a date: the events, the state they lead to, the facts (if any)."""

    patient: PatientRecord
    events: list[EventRecord]
    state: CourseState
    as_of: dt.date
    facts: PatientFacts | None = None
    facts_problems: list[Problem] = field(default_factory=list)


# --- Core reads ---------------------------------------------------------------------------------

# Reads on the request path select columns through the session's connection: the same transaction,
# without the ORM's identity map and statement handling, which cost several times the SQL itself.
# Table columns, not the mapped attributes: plain columns skip the ORM's annotations.
_patients = PatientRow.__table__.c
_events = EventRow.__table__.c
_PATIENT_COLUMNS = (_patients.id, _patients.birth_date, _patients.display_name, _patients.version, _patients.created_at)
_PATIENT_BY_ID = select(*_PATIENT_COLUMNS).where(_patients.id == bindparam("patient_id"))
_PATIENT_BY_ID_FOR_UPDATE = _PATIENT_BY_ID.with_for_update()
_PATIENT_PAGE = (
    select(*_PATIENT_COLUMNS)
    .order_by(_patients.created_at, _patients.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_OWN_PATIENT_PAGE = _PATIENT_PAGE.where(_patients.id == bindparam("patient_id"))
_EVENTS_OF = select(*_events).where(_events.patient_id == bindparam("patient_id")).order_by(_events.seq)
_EVENTS_OF_MANY = (
    select(*_events)
    .where(_events.patient_id.in_(bindparam("patient_ids", expanding=True)))
    .order_by(_events.patient_id, _events.seq)
)


class PatientColumns(Protocol):
    id: str
    birth_date: dt.date
    display_name: str | None
    version: int
    created_at: dt.datetime


class EventColumns(Protocol):
    id: str
    patient_id: str
    seq: int
    type: str
    date: dt.date
    payload: dict[str, Any]
    supersedes: str | None
    recorded_by: str
    recorded_at: dt.datetime


# --- audit ------------------------------------------------------------------------------------


def audit(
    session: Session, actor: str, action: str, patient_id: str | None, outcome: str = "ok", detail: str | None = None
) -> None:
    """Write an audit row in the session's transaction. `detail` must never hold names or birth dates.

    A Core INSERT on the session's connection rather than `session.add` or `session.execute`: the
    row is never read back through the ORM, and the ORM's flush or statement handling cost more
    than the rest of an audited read's database work.
    """
    session.connection().execute(
        _AUDIT_INSERT,
        {
            "at": utcnow(),
            "actor": _printable(actor)[:64],
            "action": _printable(action)[:64],
            "patient_id": _printable(patient_id)[:32] if patient_id else None,
            "outcome": outcome,
            "detail": _printable(detail)[:200] if detail else None,
        },
    )


_AUDIT_INSERT = insert(cast(Table, AuditRow.__table__))


# Audit text can come from a request path; control characters (NUL above all, which PostgreSQL
# refuses in text) must not turn the audit of a bad request into a 500.
_CONTROL = dict.fromkeys([*range(32), 127], "?")


def _printable(text: str) -> str:
    return text.translate(_CONTROL)


# Unicode categories a display name may not hold: controls (Cc), format characters (Cf: the
# direction overrides U+202A-202E and U+2066-2069, zero-width U+200B-200D, the BOM U+FEFF),
# surrogates, private use and unassigned code points, line and paragraph separators. With them
# one patient's name can be made to look like another's.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_display_name(name: str | None) -> str | None:
    """The name in NFC, or `InvalidInputError` naming `display_name` when it is empty, too long or
    holds control, direction, invisible or space characters other than the plain space."""
    if name is None:
        return None
    name = unicodedata.normalize("NFC", name)
    refused = sorted(
        {
            f"U+{ord(c):04X}"
            for c in name
            if unicodedata.category(c) in _REFUSED_CATEGORIES or (c.isspace() and c != " ")
        }
    )
    if refused:
        problem = f"must not contain control, direction or invisible characters ({', '.join(refused[:5])})"
        raise InvalidInputError("invalid patient", [Problem("display_name", problem)])
    if not name.strip() or len(name) > 200:
        raise InvalidInputError(
            "invalid patient", [Problem("display_name", "must be 1-200 printable characters, or left out")]
        )
    return name


def audit_now(
    session: Session, actor: str, action: str, patient_id: str | None, outcome: str, detail: str | None = None
) -> None:
    """Audit in a transaction of its own (for denials: the request fails, the audit row stays)."""
    session.rollback()
    audit(session, actor, action, patient_id, outcome, detail)
    session.commit()


def list_audit(
    session: Session,
    actor: Actor,
    *,
    patient_id: str | None = None,
    limit: int = 100,
    by: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
) -> list[AuditRecord]:
    """The audit trail, newest first (admin only), optionally for one patient, actor, action or outcome."""
    if actor.role != "admin":
        audit_now(session, actor.username, "audit.read", patient_id, "denied", "role")
        raise ForbiddenError("only an admin may read the audit trail")
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if patient_id is not None:
        query = query.where(AuditRow.patient_id == patient_id)
    if by:
        query = query.where(AuditRow.actor == by)
    if action:
        # "event" matches event.append; a dotted name matches exactly.
        query = query.where(AuditRow.action == action if "." in action else AuditRow.action.like(f"{action}.%"))
    if outcome:
        query = query.where(AuditRow.outcome == outcome)
    rows = session.scalars(query).all()
    out = [AuditRecord(r.id, r.at, r.actor, r.action, r.patient_id, r.outcome, r.detail) for r in rows]
    audit(session, actor.username, "audit.read", patient_id)
    session.commit()
    return out


# --- patient records ----------------------------------------------------------------------------


def _event_problems(exc: ValidationError, prefix: str) -> list[Problem]:
    return [
        Problem(f"{prefix}.{p.field}" if p.field != "$" else prefix, p.problem) for p in describe_validation_error(exc)
    ]


class Records:
    """Patient data for one actor; every call is checked, audited and committed."""

    def __init__(self, session: Session, actor: Actor):
        self.session = session
        self.actor = actor

    # access -------------------------------------------------------------------------------

    def _deny(self, action: str, patient_id: str | None, error: StoreError, reason: str) -> StoreError:
        audit_now(self.session, self.actor.username, action, patient_id, "denied", reason)
        log.info("denied %s on %s for %s (%s)", action, patient_id or "-", self.actor.username, reason)
        return error

    def _can_see(self, patient_id: str) -> bool:
        return self.actor.is_staff or self.actor.patient_id == patient_id

    def _check_id(self, patient_id: str, action: str) -> None:
        if not PATIENT_ID_RE.match(patient_id):
            raise self._deny(action, None, NotFoundError(f"no patient {patient_id[:40]}"), "malformed id")
        if not self._can_see(patient_id):
            raise self._deny(
                action, patient_id, NotFoundError(f"no patient {patient_id}"), "not this patient's account"
            )

    def _readable(self, patient_id: str, action: str, *, lock: bool = False) -> PatientColumns:
        self._check_id(patient_id, action)
        # FOR UPDATE with `lock` (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers).
        statement = _PATIENT_BY_ID_FOR_UPDATE if lock else _PATIENT_BY_ID
        row = self.session.connection().execute(statement, {"patient_id": patient_id}).first()
        if row is None:
            raise self._deny(action, patient_id, NotFoundError(f"no patient {patient_id}"), "no such patient")
        return cast(PatientColumns, row)

    def _writable(self, patient_id: str, action: str) -> PatientRow:
        durable_session(self.session)
        self._check_id(patient_id, action)
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) makes
        # concurrent writers to one patient queue up instead of racing to the version check.
        row = self.session.get(PatientRow, patient_id, with_for_update=True)
        if row is None:
            raise self._deny(action, patient_id, NotFoundError(f"no patient {patient_id}"), "no such patient")
        if not self.actor.is_staff:
            raise self._deny(action, patient_id, ForbiddenError("patient accounts are read-only"), "read-only role")
        return row

    def _require_staff(self, action: str) -> None:
        if not self.actor.is_staff:
            raise self._deny(action, None, ForbiddenError("patient accounts are read-only"), "read-only role")

    # patients -----------------------------------------------------------------------------

    def list_patients(self, *, limit: int = 1000, offset: int = 0) -> list[PatientRecord]:
        query, params = (
            (_PATIENT_PAGE, {"limit": limit, "offset": offset})
            if self.actor.is_staff
            else (_OWN_PATIENT_PAGE, {"limit": limit, "offset": offset, "patient_id": self.actor.patient_id or ""})
        )
        rows = self.session.connection().execute(query, params).all()
        audit(self.session, self.actor.username, "patient.list", None, detail=f"{len(rows)} records")
        self.session.commit()
        return [PatientRecord.of(cast(PatientColumns, r)) for r in rows]

    def list_courses(self, *, limit: int = 1000, offset: int = 0, as_of: dt.date | None = None) -> list[Course]:
        """A page of patients, each with its course as of a date (default today), for the patient lists.

        One list read: the rows and their events are read in one transaction and audited once
        (`course.list`, with the count), where reading each course with `course` would audit and
        commit once per patient. Courses come from the session's course cache when the record's
        version is the cached one, exactly as `course` does.
        """
        as_of = as_of or utcnow().date()
        query, params = (
            (_PATIENT_PAGE, {"limit": limit, "offset": offset})
            if self.actor.is_staff
            else (_OWN_PATIENT_PAGE, {"limit": limit, "offset": offset, "patient_id": self.actor.patient_id or ""})
        )
        connection = self.session.connection()
        rows = cast(list[PatientColumns], connection.execute(query, params).all())
        cache: LruCache[Course] | None = self.session.info.get(COURSE_CACHE)
        found: dict[str, Course] = {}
        for row in rows:
            cached = cache.get((row.id, row.version, as_of)) if cache is not None else None
            if cached is not None:
                found[row.id] = cached
        missing = [row.id for row in rows if row.id not in found]
        events: dict[str, list[EventColumns]] = {patient_id: [] for patient_id in missing}
        # In slices: SQLite caps the number of bound parameters in one statement.
        for start in range(0, len(missing), 500):
            ids = missing[start : start + 500]
            for event in connection.execute(_EVENTS_OF_MANY, {"patient_ids": ids}).all():
                events[event.patient_id].append(cast(EventColumns, event))
        audit(self.session, self.actor.username, "course.list", None, detail=f"{len(rows)} records as of {as_of}")
        self.session.commit()
        for row in rows:
            if row.id in found:
                continue
            course = self._derive_course(PatientRecord.of(row), self._records(events[row.id]), as_of)
            if cache is not None:
                cache.put((row.id, row.version, as_of), course)
            found[row.id] = course
        return [found[row.id] for row in rows]

    def count_patients(self) -> int:
        """How many patients this actor may see (for paging)."""
        query = select(func.count()).select_from(PatientRow)
        if not self.actor.is_staff:
            query = query.where(PatientRow.id == (self.actor.patient_id or ""))
        return int(self.session.scalar(query) or 0)

    def create_patient(self, birth_date: dt.date, display_name: str | None = None) -> PatientRecord:
        self._require_staff("patient.create")
        durable_session(self.session)
        display_name = clean_display_name(display_name)
        today = utcnow().date()
        if birth_date > today:
            raise InvalidInputError("invalid patient", [Problem("birth_date", "must not be in the future")])
        if birth_date < MIN_DATE:
            raise InvalidInputError("invalid patient", [Problem("birth_date", "must be in 1900 or later")])
        for _ in range(5):
            row = PatientRow(
                id=new_patient_id(),
                birth_date=birth_date,
                display_name=display_name,
                version=0,
                created_at=utcnow(),
                created_by=self.actor.username,
            )
            if self.session.get(PatientRow, row.id) is None:
                break
        self.session.add(row)
        audit(self.session, self.actor.username, "patient.create", row.id)
        self.session.commit()
        log.info("patient %s created by %s", row.id, self.actor.username)
        return PatientRecord.of(row)

    def get_patient(self, patient_id: str) -> PatientRecord:
        row = self._readable(patient_id, "patient.read")
        audit(self.session, self.actor.username, "patient.read", patient_id)
        self.session.commit()
        return PatientRecord.of(row)

    def update_patient(
        self,
        patient_id: str,
        expected_version: int,
        *,
        display_name: str | None = None,
        clear_display_name: bool = False,
        birth_date: dt.date | None = None,
    ) -> PatientRecord:
        row = self._writable(patient_id, "patient.update")
        if row.version != expected_version:
            raise ConflictError(f"patient {patient_id} changed since version {expected_version}", row.version)
        display_name = clean_display_name(display_name)
        values: dict[str, Any] = {"version": row.version + 1}
        if display_name is not None or clear_display_name:
            values["display_name"] = display_name
        if birth_date is not None:
            if birth_date > utcnow().date():
                raise InvalidInputError("invalid patient", [Problem("birth_date", "must not be in the future")])
            if birth_date < MIN_DATE:
                raise InvalidInputError("invalid patient", [Problem("birth_date", "must be in 1900 or later")])
            first = self.session.scalar(select(func.min(EventRow.date)).where(EventRow.patient_id == patient_id))
            if first is not None and birth_date > first:
                raise InvalidInputError(
                    "invalid patient", [Problem("birth_date", "must be on or before the first event")]
                )
            values["birth_date"] = birth_date
        self._bump(row, values)
        audit(self.session, self.actor.username, "patient.update", patient_id)
        self.session.commit()
        self.session.refresh(row)
        return PatientRecord.of(row)

    def _bump(self, row: PatientRow, values: dict[str, Any]) -> None:
        # The WHERE on the version is what makes a concurrent writer lose cleanly (409), even on
        # PostgreSQL where two transactions may both have read the old version.
        result = self.session.execute(
            update(PatientRow)
            .where(PatientRow.id == row.id, PatientRow.version == row.version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self.session.rollback()
            current = self.session.get(PatientRow, row.id)
            raise ConflictError(f"patient {row.id} changed concurrently", current.version if current else -1)

    # events -------------------------------------------------------------------------------

    def _event_rows(self, patient_id: str) -> list[EventColumns]:
        rows = self.session.connection().execute(_EVENTS_OF, {"patient_id": patient_id}).all()
        return cast(list[EventColumns], rows)

    @staticmethod
    def _records(rows: list[EventColumns]) -> list[EventRecord]:
        superseded_by = {r.supersedes: r.id for r in rows if r.supersedes}
        return [EventRecord.of(r, superseded_by.get(r.id)) for r in rows]

    def list_events(self, patient_id: str) -> list[EventRecord]:
        self._readable(patient_id, "events.read")
        records = self._records(self._event_rows(patient_id))
        audit(self.session, self.actor.username, "events.read", patient_id)
        self.session.commit()
        return records

    def append_event(
        self, patient_id: str, event: CourseEvent | dict[str, Any], expected_version: int | None = None
    ) -> tuple[EventRecord, int]:
        """Check the event against the whole history and append it. Returns it and the new version.

        `expected_version` given and stale: `ConflictError` (409), nothing written. Not given: the
        event is checked against the history as it is at the moment of writing.
        """
        row = self._writable(patient_id, "event.append")
        if isinstance(event, dict):
            try:
                event = parse_event(event)
            except ValidationError as exc:
                raise InvalidInputError("invalid event", _event_problems(exc, "event")) from None
        if event.id is not None:
            raise InvalidInputError("invalid event", [Problem("event.id", "is assigned by the server; leave it out")])
        if expected_version is not None and row.version != expected_version:
            raise ConflictError(f"patient {patient_id} changed since version {expected_version}", row.version)
        if event.date < row.birth_date:
            raise InvalidInputError("invalid event", [Problem("event.date", "is before the patient's birth date")])
        if event.date > utcnow().date() + dt.timedelta(days=1):
            raise InvalidInputError("invalid event", [Problem("event.date", "must not be in the future")])
        rows = self._event_rows(patient_id)
        candidate = event.model_copy(update={"id": new_event_id()})
        try:
            replay([*(EventRecord.of(r).to_event() for r in rows), candidate])
        except CourseError as exc:
            self.session.rollback()
            raise InvalidInputError("event not possible now", [Problem(f"event.{exc.field}", exc.reason)]) from None
        self._bump(row, {"version": row.version + 1})
        seq = (max((r.seq for r in rows), default=0)) + 1
        new = EventRow(
            id=candidate.id,
            patient_id=patient_id,
            seq=seq,
            type=candidate.type,
            date=candidate.date,
            payload=event_payload(candidate),
            supersedes=candidate.supersedes,
            recorded_by=self.actor.username,
            recorded_at=utcnow(),
        )
        self.session.add(new)
        audit(self.session, self.actor.username, "event.append", patient_id, detail=candidate.type)
        self.session.commit()
        log.info("event %s (%s) appended to %s by %s", new.id, new.type, patient_id, self.actor.username)
        return EventRecord.of(new), row.version + 1

    # derived ------------------------------------------------------------------------------

    def course(self, patient_id: str, as_of: dt.date | None = None, *, action: str = "course.read") -> Course:
        """The record as of a date (default today): events, state, and the facts if a diagnosis exists.

        The result is shared through the session's course cache (when its sessionmaker has one,
        `COURSE_CACHE` in `Session.info`), keyed by the record's id and version and the date: every
        change bumps the version, so a cached course is the one the stored record gives. The
        patient row is read and the read audited on every call, hit or miss. Treat it as read-only.
        """
        row = self._readable(patient_id, action)
        as_of = as_of or utcnow().date()
        if not MIN_DATE <= as_of <= MAX_DATE:
            self.session.rollback()
            raise InvalidInputError(
                "invalid date", [Problem("as_of", f"must be between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}")]
            )
        cache: LruCache[Course] | None = self.session.info.get(COURSE_CACHE)
        key = (patient_id, row.version, as_of)
        cached = cache.get(key) if cache is not None else None
        records = self._records(self._event_rows(patient_id)) if cached is None else []
        audit(self.session, self.actor.username, action, patient_id, detail=f"as_of {as_of.isoformat()}")
        self.session.commit()
        if cached is not None:
            return cached
        course = self._derive_course(PatientRecord.of(row), records, as_of)
        if cache is not None:
            cache.put(key, course)
        return course

    @staticmethod
    def _derive_course(patient: PatientRecord, records: list[EventRecord], as_of: dt.date) -> Course:
        events = [r.to_event() for r in records]
        state = replay(events, until=as_of)
        if as_of < patient.birth_date:
            return Course(patient, records, state, as_of, None, [Problem("as_of", "is before the birth date")])
        try:
            facts = derive_facts(patient.birth_date, events, as_of)
        except CourseError as exc:
            return Course(patient, records, state, as_of, None, [Problem(exc.field, exc.reason)])
        except FactsError as exc:
            problems = [Problem("as_of", f"gives {p.field} that {p.problem}") for p in exc.problems]
            return Course(patient, records, state, as_of, None, problems)
        return Course(patient, records, state, as_of, facts)

    def facts(self, patient_id: str, as_of: dt.date | None = None, *, action: str = "facts.read") -> PatientFacts:
        """The derived facts, or `InvalidInputError` naming why there are none (no diagnosis by then...)."""
        course = self.course(patient_id, as_of, action=action)
        if course.facts is None:
            raise InvalidInputError("no facts for this date", course.facts_problems)
        return course.facts


# --- the patient list's flags ------------------------------------------------------------------


def patient_flags(
    session: Session,
    courses: Sequence[Course],
    plan_alerts: Mapping[str, Sequence[str]] | None = None,
    *,
    urgent: Collection[str] = (),
) -> dict[str, list[str]]:
    """What the patient list flags for each patient, by patient id, as flag keys (`FLAG_LABELS`).

    From the record: died, hospice, refractory, relapsed, MRD positive, pregnant. From the plan
    (`plan_alerts`, patient id to its alerts' severities, worked out by the caller that holds the
    engine): a critical alert. One function, so every source of a flag (later the family's
    urgent symptom reports, read through `session`) lands in the same column.
    """
    flags: dict[str, list[str]] = {}
    for course in courses:
        state = course.state
        found: list[str] = []
        if course.patient.id in urgent:  # the family diary's urgent entries (store.companion)
            found.append("urgent_diary")
        if state.died_on is not None:
            found.append("died")
        if state.in_hospice:
            found.append("hospice")
        if state.status in ("refractory", "relapsed"):
            found.append(state.status)
        if state.mrd_status == "positive":
            found.append("mrd_positive")
        if state.pregnant:
            found.append("pregnant")
        if plan_alerts and "critical" in plan_alerts.get(course.patient.id, ()):
            found.append("critical_alert")
        flags[course.patient.id] = found
    return flags
