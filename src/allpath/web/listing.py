"""The clinician's patient list: one row per patient, searched, filtered, sorted and paged.

The rows are built from each patient's course (the store replays it); filtering happens here,
in memory, which is plain and fast for a clinic's few thousand records (see docs/web.md).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from allpath.course.state import CourseState
from allpath.store.service import Course

PAGE_SIZE = 25
SORTS = {
    "updated": "Last update (newest first)",
    "name": "Name",
    "age": "Age (youngest first)",
    "diagnosed": "Diagnosis date (newest first)",
}


@dataclass(frozen=True, slots=True)
class PatientRow:
    id: str
    name: str | None
    age: str
    age_days: int
    diagnosed_on: dt.date | None
    status: str
    phase: str | None
    flags: list[str]
    updated: dt.datetime


@dataclass(frozen=True, slots=True)
class Listing:
    rows: list[PatientRow]
    total: int
    page: int
    pages: int
    q: str
    status: str
    phase: str
    flag: str
    sort: str
    sorts: dict[str, str]


def status_key(state: CourseState) -> str:
    """The course status as the labels know it; a death outranks the disease status."""
    return "deceased" if state.died_on is not None else state.status


def age_label(born: dt.date, on: dt.date) -> str:
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    if years >= 2:
        return f"{years} years"
    months = (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
    return f"{max(months, 0)} months"


def patient_row(course: Course, flags: list[str]) -> PatientRow:
    p = course.patient
    updated = max((e.recorded_at for e in course.events), default=p.created_at)
    return PatientRow(
        p.id,
        p.display_name,
        age_label(p.birth_date, course.as_of),
        (course.as_of - p.birth_date).days,
        course.state.diagnosed_on,
        status_key(course.state),
        course.state.current_phase,
        flags,
        updated,
    )


def list_patients_view(
    rows: list[PatientRow],
    *,
    q: str = "",
    status: str = "",
    phase: str = "",
    flag: str = "",
    sort: str = "updated",
    page: int = 1,
) -> Listing:
    q = q.strip()[:100]
    needle = q.casefold()
    chosen = [
        r
        for r in rows
        if (not needle or needle in (r.name or "").casefold() or needle in r.id.casefold())
        and (not status or r.status == status)
        and (not phase or (r.phase or "none") == phase)
        and (not flag or flag in r.flags)
    ]
    sort = sort if sort in SORTS else "updated"
    if sort == "name":
        chosen.sort(key=lambda r: ((r.name or "").casefold(), r.id))
    elif sort == "age":
        chosen.sort(key=lambda r: r.age_days)
    elif sort == "diagnosed":
        chosen.sort(key=lambda r: r.diagnosed_on or dt.date.min, reverse=True)
    else:
        chosen.sort(key=lambda r: r.updated, reverse=True)
    pages = max(1, math.ceil(len(chosen) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    return Listing(
        chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], len(chosen), page, pages, q, status, phase, flag, sort, SORTS
    )
