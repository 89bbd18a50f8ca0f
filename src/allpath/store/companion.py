"""The family companion's storage: care-team contacts and call settings, the symptom diary, the
maintenance medicine log, the calendar and its secret links, and an account's language.

`FamilyRecords(session, actor)` follows `Records`: every call checks access (a family account
sees and writes only its own patient; writes the care team owns are staff-only), writes an
audit row and commits. What counts as urgent and how adherence is counted is the pure core's
(`allpath.course.companion`); this module only keeps the rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from allpath.course.companion import (
    GRADES,
    LANGUAGES,
    MAX_CELSIUS,
    MAX_THRESHOLD,
    MEDICINES,
    MIN_CELSIUS,
    MIN_THRESHOLD,
    AdherenceResult,
    Companion,
    Prescription,
    adherence,
    due_dates,
    urgency,
)
from allpath.facts import Problem
from allpath.store.db import durable_session
from allpath.store.models import (
    CalendarEventRow,
    CalendarLinkRow,
    CallSettingsRow,
    CareContactRow,
    DiaryEntryRow,
    DoseRow,
    PrescriptionRow,
    UserLanguageRow,
)
from allpath.store.service import (
    Actor,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    Records,
    audit,
    utcnow,
)

# Digits, spaces and the usual separators; a number a family can dial.
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,30}$")
MAX_CONTACTS = 10
# How long an urgent diary entry flags the patient on the clinician list when no one has marked it seen.
URGENT_FLAG_DAYS = 7
CALENDAR_KINDS = ("visit", "lab")


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    role: str
    day_phone: str
    after_hours_phone: str


@dataclass(frozen=True, slots=True)
class CallSettings:
    fever_celsius: float
    extra_items: tuple[str, ...]
    set_by_team: bool


@dataclass(frozen=True, slots=True)
class DiaryEntry:
    id: int
    at: dt.datetime
    temperature_c: float | None
    grades: dict[str, int]
    urgent: bool
    reasons: tuple[str, ...]
    threshold_c: float
    seen: bool


@dataclass(frozen=True, slots=True)
class PrescriptionRecord:
    id: int
    medicine: str
    dose_mg: float
    frequency: str
    start: dt.date
    anc_per_ul: int
    platelets_per_ul: int
    counts_date: dt.date

    def pure(self) -> Prescription:
        return Prescription(self.medicine, self.dose_mg, "daily" if self.frequency == "daily" else "weekly", self.start)


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    uid: str
    kind: str
    starts_at: dt.datetime
    minutes: int
    place: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _clean(value: str, field: str, limit: int, problems: list[Problem]) -> str:
    text = " ".join(value.split())
    if not text:
        problems.append(Problem(field, "is required"))
    elif len(text) > limit or any(ord(c) < 32 for c in value):
        problems.append(Problem(field, f"must be at most {limit} printable characters"))
    return text


class FamilyRecords:
    """The companion's data for one actor; every call is checked, audited and committed."""

    def __init__(self, session: Session, actor: Actor, companion: Companion):
        self.session = session
        self.actor = actor
        self.companion = companion
        self._records = Records(session, actor)

    # access ----------------------------------------------------------------------------------

    def _read(self, patient_id: str, action: str) -> None:
        self._records._readable(patient_id, action)

    def _family_write(self, patient_id: str, action: str) -> None:
        """The patient's own account or the care team (a family records its own child's diary)."""
        durable_session(self.session)
        self._records._readable(patient_id, action, lock=True)

    def _staff_write(self, patient_id: str, action: str) -> None:
        self._records._writable(patient_id, action)

    def _done(self, action: str, patient_id: str | None, detail: str | None = None) -> None:
        audit(self.session, self.actor.username, action, patient_id, detail=detail)
        self.session.commit()

    # contacts and call settings -----------------------------------------------------------------

    def contacts(self, patient_id: str) -> list[Contact]:
        self._read(patient_id, "contacts.read")
        rows = self.session.scalars(
            select(CareContactRow).where(CareContactRow.patient_id == patient_id).order_by(CareContactRow.position)
        ).all()
        self._done("contacts.read", patient_id)
        return [Contact(r.name, r.role, r.day_phone, r.after_hours_phone) for r in rows]

    def set_contacts(self, patient_id: str, contacts: list[Contact]) -> None:
        """Replace the patient's contact list (staff only). Problems name `contacts[i].field`."""
        problems: list[Problem] = []
        if len(contacts) > MAX_CONTACTS:
            problems.append(Problem("contacts", f"at most {MAX_CONTACTS}"))
        cleaned: list[Contact] = []
        for i, c in enumerate(contacts):
            name = _clean(c.name, f"contacts[{i}].name", 100, problems)
            role = _clean(c.role, f"contacts[{i}].role", 100, problems)
            phones = []
            for field in ("day_phone", "after_hours_phone"):
                value = getattr(c, field).strip()
                if not _PHONE.match(value):
                    problems.append(
                        Problem(f"contacts[{i}].{field}", "must be a phone number (digits, spaces, + ( ) - .)")
                    )
                phones.append(value)
            cleaned.append(Contact(name, role, phones[0], phones[1]))
        if problems:
            raise InvalidInputError("invalid contacts", problems)
        self._staff_write(patient_id, "contacts.update")
        self.session.execute(delete(CareContactRow).where(CareContactRow.patient_id == patient_id))
        now = utcnow()
        for i, c in enumerate(cleaned):
            self.session.add(
                CareContactRow(
                    patient_id=patient_id,
                    name=c.name,
                    role=c.role,
                    day_phone=c.day_phone,
                    after_hours_phone=c.after_hours_phone,
                    position=i,
                    recorded_by=self.actor.username,
                    recorded_at=now,
                )
            )
        self._done("contacts.update", patient_id, detail=f"{len(cleaned)} contacts")

    def _settings_row(self, patient_id: str) -> CallSettings:
        row = self.session.get(CallSettingsRow, patient_id)
        if row is None:
            return CallSettings(self.companion.fever.default_celsius, (), False)
        return CallSettings(row.fever_celsius, tuple(row.extra_items), True)

    def call_settings(self, patient_id: str) -> CallSettings:
        self._read(patient_id, "call_settings.read")
        settings = self._settings_row(patient_id)
        self._done("call_settings.read", patient_id)
        return settings

    def set_call_settings(self, patient_id: str, fever_celsius: float, extra_items: list[str]) -> None:
        problems: list[Problem] = []
        if not MIN_THRESHOLD <= fever_celsius <= MAX_THRESHOLD:
            problems.append(Problem("fever_celsius", f"must be between {MIN_THRESHOLD} and {MAX_THRESHOLD}"))
        known = {i.id for i in self.companion.call_items if not i.always}
        unknown = sorted(set(extra_items) - known)
        if unknown:
            problems.append(Problem("extra_items", f"unknown items: {', '.join(unknown)}"))
        if problems:
            raise InvalidInputError("invalid call settings", problems)
        self._staff_write(patient_id, "call_settings.update")
        row = self.session.get(CallSettingsRow, patient_id)
        if row is None:
            row = CallSettingsRow(patient_id=patient_id)
            self.session.add(row)
        row.fever_celsius = round(fever_celsius, 1)
        row.extra_items = sorted(set(extra_items))
        row.recorded_by = self.actor.username
        row.recorded_at = utcnow()
        self._done("call_settings.update", patient_id)

    # diary ------------------------------------------------------------------------------------

    def add_diary_entry(
        self, patient_id: str, temperature_c: float | None, grades: dict[str, int], at: dt.datetime | None = None
    ) -> DiaryEntry:
        """Record an entry (the family or the team). The urgency is decided now, with the team's
        threshold of now, and stored with it, so a later change of threshold never rewrites history."""
        problems: list[Problem] = []
        if temperature_c is not None and not MIN_CELSIUS <= temperature_c <= MAX_CELSIUS:
            problems.append(Problem("temperature_c", f"must be between {MIN_CELSIUS} and {MAX_CELSIUS} °C"))
        known = {s.id for s in self.companion.symptoms}
        for key, grade in grades.items():
            if key not in known:
                problems.append(Problem(f"grades.{key}", "is not a diary item"))
            elif grade not in GRADES:
                problems.append(Problem(f"grades.{key}", f"must be one of {list(GRADES)}"))
        if temperature_c is None and not any(grades.values()):
            problems.append(Problem("temperature_c", "enter a temperature or at least one symptom"))
        if problems:
            raise InvalidInputError("invalid diary entry", problems)
        self._family_write(patient_id, "diary.append")
        threshold = self._settings_row(patient_id).fever_celsius
        result = urgency(temperature_c, grades, threshold, self.companion)
        now = utcnow()
        row = DiaryEntryRow(
            patient_id=patient_id,
            at=at or now,
            temperature_c=temperature_c,
            grades={k: v for k, v in grades.items() if v},
            urgent=result.urgent,
            reasons=list(result.reasons),
            threshold_c=threshold,
            recorded_by=self.actor.username,
            recorded_at=now,
        )
        self.session.add(row)
        self.session.flush()
        entry = self._entry(row)
        self._done("diary.append", patient_id, detail="urgent" if result.urgent else None)
        return entry

    @staticmethod
    def _entry(r: DiaryEntryRow) -> DiaryEntry:
        return DiaryEntry(
            r.id,
            r.at,
            r.temperature_c,
            dict(r.grades),
            r.urgent,
            tuple(r.reasons),
            r.threshold_c,
            r.seen_at is not None,
        )

    def diary(self, patient_id: str, *, days: int = 30) -> list[DiaryEntry]:
        self._read(patient_id, "diary.read")
        since = utcnow() - dt.timedelta(days=days)
        rows = self.session.scalars(
            select(DiaryEntryRow)
            .where(DiaryEntryRow.patient_id == patient_id, DiaryEntryRow.at >= since)
            .order_by(DiaryEntryRow.at)
        ).all()
        self._done("diary.read", patient_id)
        return [self._entry(r) for r in rows]

    def mark_diary_seen(self, patient_id: str) -> int:
        """The team has seen the urgent entries: they stop flagging the patient."""
        self._staff_write(patient_id, "diary.seen")
        rows = self.session.scalars(
            select(DiaryEntryRow).where(
                DiaryEntryRow.patient_id == patient_id, DiaryEntryRow.urgent.is_(True), DiaryEntryRow.seen_at.is_(None)
            )
        ).all()
        now = utcnow()
        for r in rows:
            r.seen_at, r.seen_by = now, self.actor.username
        self._done("diary.seen", patient_id, detail=f"{len(rows)} entries")
        return len(rows)

    def urgent_patients(self) -> set[str]:
        """Patients with an urgent diary entry of the last `URGENT_FLAG_DAYS` not yet marked seen
        (staff only: the clinician list's flag)."""
        self._records._require_staff("diary.flags")
        since = utcnow() - dt.timedelta(days=URGENT_FLAG_DAYS)
        ids = self.session.scalars(
            select(DiaryEntryRow.patient_id)
            .where(DiaryEntryRow.urgent.is_(True), DiaryEntryRow.seen_at.is_(None), DiaryEntryRow.at >= since)
            .distinct()
        ).all()
        self._done("diary.flags", None, detail=f"{len(ids)} flagged")
        return set(ids)

    # maintenance medicines ----------------------------------------------------------------------

    def add_prescription(
        self,
        patient_id: str,
        medicine: str,
        dose_mg: float,
        frequency: str,
        start: dt.date,
        anc_per_ul: int,
        platelets_per_ul: int,
        counts_date: dt.date,
    ) -> PrescriptionRecord:
        problems: list[Problem] = []
        if medicine not in MEDICINES:
            problems.append(Problem("medicine", f"must be one of {list(MEDICINES)}"))
        if not 0 < dose_mg <= 1000:
            problems.append(Problem("dose_mg", "must be more than 0 and at most 1000"))
        if frequency not in ("daily", "weekly"):
            problems.append(Problem("frequency", "must be daily or weekly"))
        if not 0 <= anc_per_ul <= 100_000:
            problems.append(Problem("anc_per_ul", "must be between 0 and 100000 cells/µL"))
        if not 0 <= platelets_per_ul <= 2_000_000:
            problems.append(Problem("platelets_per_ul", "must be between 0 and 2000000 /µL"))
        if counts_date > start:
            problems.append(Problem("counts_date", "must be on or before the start of the dose"))
        if problems:
            raise InvalidInputError("invalid prescription", problems)
        self._staff_write(patient_id, "prescription.add")
        row = PrescriptionRow(
            patient_id=patient_id,
            medicine=medicine,
            dose_mg=dose_mg,
            frequency=frequency,
            start=start,
            anc_per_ul=anc_per_ul,
            platelets_per_ul=platelets_per_ul,
            counts_date=counts_date,
            recorded_by=self.actor.username,
            recorded_at=utcnow(),
        )
        self.session.add(row)
        self.session.flush()
        record = self._prescription(row)
        self._done("prescription.add", patient_id, detail=medicine)
        return record

    @staticmethod
    def _prescription(r: PrescriptionRow) -> PrescriptionRecord:
        return PrescriptionRecord(
            r.id, r.medicine, r.dose_mg, r.frequency, r.start, r.anc_per_ul, r.platelets_per_ul, r.counts_date
        )

    def _prescription_rows(self, patient_id: str) -> list[PrescriptionRecord]:
        rows = self.session.scalars(
            select(PrescriptionRow)
            .where(PrescriptionRow.patient_id == patient_id)
            .order_by(PrescriptionRow.start, PrescriptionRow.id)
        ).all()
        return [self._prescription(r) for r in rows]

    def _dose_map(self, patient_id: str) -> dict[tuple[str, dt.date], bool]:
        rows = self.session.scalars(select(DoseRow).where(DoseRow.patient_id == patient_id)).all()
        return {(r.medicine, r.day): r.taken for r in rows}

    def medicines(
        self, patient_id: str, as_of: dt.date
    ) -> tuple[list[PrescriptionRecord], dict[tuple[str, dt.date], bool]]:
        self._read(patient_id, "medicines.read")
        out = self._prescription_rows(patient_id), self._dose_map(patient_id)
        self._done("medicines.read", patient_id)
        return out

    def record_doses(self, patient_id: str, ticks: dict[tuple[str, dt.date], bool], today: dt.date) -> int:
        """The family ticks due doses taken (True) or missed (False); a later tick of a day replaces it."""
        self._family_write(patient_id, "doses.record")
        prescriptions = [p.pure() for p in self._prescription_rows(patient_id)]
        problems: list[Problem] = []
        for medicine, day in ticks:
            field = f"dose.{medicine}.{day.isoformat()}"
            if day > today:
                problems.append(Problem(field, "is in the future"))
            elif day not in due_dates(prescriptions, medicine, day, day):
                problems.append(Problem(field, "no dose was due that day"))
        if problems:
            self.session.rollback()
            raise InvalidInputError("invalid doses", problems)
        existing = {
            (r.medicine, r.day): r
            for r in self.session.scalars(select(DoseRow).where(DoseRow.patient_id == patient_id)).all()
        }
        now = utcnow()
        for (medicine, day), taken in ticks.items():
            row = existing.get((medicine, day))
            if row is None:
                self.session.add(
                    DoseRow(
                        patient_id=patient_id,
                        medicine=medicine,
                        day=day,
                        taken=taken,
                        recorded_by=self.actor.username,
                        recorded_at=now,
                    )
                )
            else:
                row.taken, row.recorded_by, row.recorded_at = taken, self.actor.username, now
        self._done("doses.record", patient_id, detail=f"{len(ticks)} doses")
        return len(ticks)

    def adherence(self, patient_id: str, as_of: dt.date, days: int) -> list[AdherenceResult]:
        self._read(patient_id, "adherence.read")
        prescriptions = [p.pure() for p in self._prescription_rows(patient_id)]
        doses = self._dose_map(patient_id)
        self._done("adherence.read", patient_id, detail=f"{days} days")
        return [adherence(prescriptions, doses, m, as_of, days) for m in MEDICINES]

    # calendar ---------------------------------------------------------------------------------

    def add_calendar_event(
        self, patient_id: str, kind: str, starts_at: dt.datetime, minutes: int, place: str
    ) -> CalendarEvent:
        problems: list[Problem] = []
        if kind not in CALENDAR_KINDS:
            problems.append(Problem("kind", f"must be one of {list(CALENDAR_KINDS)}"))
        if not 5 <= minutes <= 24 * 60:
            problems.append(Problem("minutes", "must be between 5 and 1440"))
        place = _clean(place, "place", 200, problems)
        if starts_at.tzinfo is None:
            problems.append(Problem("starts_at", "must carry a time zone"))
        if problems:
            raise InvalidInputError("invalid calendar event", problems)
        self._staff_write(patient_id, "calendar.add")
        row = CalendarEventRow(
            uid=f"{secrets.token_hex(12)}@allpath",
            patient_id=patient_id,
            kind=kind,
            starts_at=starts_at,
            minutes=minutes,
            place=place,
            recorded_by=self.actor.username,
            recorded_at=utcnow(),
        )
        self.session.add(row)
        self._done("calendar.add", patient_id, detail=kind)
        return CalendarEvent(row.uid, row.kind, row.starts_at, row.minutes, row.place)

    def calendar(self, patient_id: str) -> list[CalendarEvent]:
        self._read(patient_id, "calendar.read")
        events = _calendar_rows(self.session, patient_id)
        self._done("calendar.read", patient_id)
        return events

    def create_calendar_link(self, patient_id: str) -> str:
        """A new secret for the feed's address; returned once, only its hash is kept."""
        self._family_write(patient_id, "calendar_link.create")
        secret = secrets.token_urlsafe(32)
        self.session.add(
            CalendarLinkRow(
                token_hash=_hash(secret),
                patient_id=patient_id,
                created_by=self.actor.username,
                created_at=utcnow(),
                revoked=False,
            )
        )
        self._done("calendar_link.create", patient_id)
        return secret

    def revoke_calendar_links(self, patient_id: str) -> int:
        self._family_write(patient_id, "calendar_link.revoke")
        rows = self.session.scalars(
            select(CalendarLinkRow).where(CalendarLinkRow.patient_id == patient_id, CalendarLinkRow.revoked.is_(False))
        ).all()
        for r in rows:
            r.revoked = True
        self._done("calendar_link.revoke", patient_id, detail=f"{len(rows)} links")
        return len(rows)

    def active_calendar_links(self, patient_id: str) -> int:
        self._read(patient_id, "calendar_link.read")
        rows = self.session.scalars(
            select(CalendarLinkRow).where(CalendarLinkRow.patient_id == patient_id, CalendarLinkRow.revoked.is_(False))
        ).all()
        self._done("calendar_link.read", patient_id)
        return len(rows)


def _calendar_rows(session: Session, patient_id: str) -> list[CalendarEvent]:
    rows = session.scalars(
        select(CalendarEventRow).where(CalendarEventRow.patient_id == patient_id).order_by(CalendarEventRow.starts_at)
    ).all()
    return [CalendarEvent(r.uid, r.kind, r.starts_at, r.minutes, r.place) for r in rows]


def calendar_by_secret(session: Session, secret: str) -> tuple[str, list[CalendarEvent]]:
    """The feed behind a secret link, or `NotFoundError` (unknown or revoked: the same answer)."""
    row = session.get(CalendarLinkRow, _hash(secret)) if 16 <= len(secret) <= 100 else None
    if row is None or row.revoked:
        audit(session, "calendar-link", "calendar.read_by_link", None, "denied", "unknown or revoked link")
        session.commit()
        raise NotFoundError("no such calendar")
    events = _calendar_rows(session, row.patient_id)
    audit(session, "calendar-link", "calendar.read_by_link", row.patient_id)
    session.commit()
    return row.patient_id, events


def account_language(session: Session, user_id: int) -> str | None:
    row = session.get(UserLanguageRow, user_id)
    return row.language if row is not None else None


def set_account_language(session: Session, actor: Actor, language: str) -> None:
    if actor.user_id is None:
        raise ForbiddenError("no account to set a language for")
    if language not in LANGUAGES:
        raise InvalidInputError("invalid language", [Problem("language", f"must be one of {list(LANGUAGES)}")])
    durable_session(session)
    row = session.get(UserLanguageRow, actor.user_id)
    if row is None:
        session.add(UserLanguageRow(user_id=actor.user_id, language=language))
    else:
        row.language = language
    audit(session, actor.username, "account.language", None, detail=language)
    session.commit()
