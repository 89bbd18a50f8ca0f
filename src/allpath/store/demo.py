"""Clearly fake demo data: accounts and patients at different points of treatment.

Every name here is invented and marked "(demo)"; the passwords are for these demo accounts
only and are printed by `make run`. Dates are relative to the day of seeding, so each
patient's plan is current whenever the demo is started.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allpath.course.companion import load_companion
from allpath.store.auth import create_user
from allpath.store.companion import Contact, FamilyRecords
from allpath.store.models import UserRow
from allpath.store.service import Actor, Records, utcnow

DEMO_PASSWORDS: dict[str, tuple[str, str]] = {
    # username: (role, password) -- FAKE credentials for the local demo only.
    "demo-admin": ("admin", "demo-admin-password"),
    "demo-clinician": ("clinician", "demo-clinician-password"),
    "demo-family": ("patient", "demo-family-password"),
    "demo-family-2": ("patient", "demo-family-2-password"),
}


@dataclass(frozen=True)
class DemoPatient:
    key: str
    display_name: str
    age_years: int
    # (days before today, event fields)
    events: tuple[tuple[int, dict[str, Any]], ...]


def _first_line(
    start: int, *, lineage: str = "B", ph: str = "negative", cns: bool = False
) -> list[tuple[int, dict[str, Any]]]:
    return [
        (start, {"type": "diagnosed", "lineage": lineage, "ph_status": ph, "cns_involvement": cns}),
        (start - 2, {"type": "phase_started", "phase": "induction"}),
        (start - 30, {"type": "remission_achieved"}),
        (start - 30, {"type": "mrd_result", "result": "negative"}),
        (start - 32, {"type": "phase_completed", "phase": "induction"}),
    ]


DEMO_PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient(
        "newly-diagnosed",
        "Robin Example (demo)",
        7,
        ((3, {"type": "diagnosed", "lineage": "B", "ph_status": "negative", "cns_involvement": False}),),
    ),
    DemoPatient(
        "induction",
        "Sam Sample (demo)",
        12,
        (
            (20, {"type": "diagnosed", "lineage": "T", "ph_status": "negative", "cns_involvement": False}),
            (18, {"type": "phase_started", "phase": "induction"}),
        ),
    ),
    DemoPatient(
        "consolidation",
        "Jo Placeholder (demo)",
        15,
        (*_first_line(80), (45, {"type": "phase_started", "phase": "consolidation"})),
    ),
    DemoPatient(
        "maintenance",
        "Kim Fictional (demo)",
        9,
        (
            *_first_line(400),
            (365, {"type": "phase_started", "phase": "consolidation"}),
            (200, {"type": "phase_completed", "phase": "consolidation"}),
            (195, {"type": "phase_started", "phase": "maintenance"}),
        ),
    ),
    DemoPatient(
        "relapse",
        "Lee Madeup (demo)",
        10,
        (
            *_first_line(1200),
            (1165, {"type": "phase_started", "phase": "consolidation"}),
            (1000, {"type": "phase_completed", "phase": "consolidation"}),
            (995, {"type": "phase_started", "phase": "maintenance"}),
            (60, {"type": "relapsed", "site": "marrow"}),
            (55, {"type": "phase_started", "phase": "reinduction"}),
        ),
    ),
    DemoPatient(
        "refractory",
        "Alex Invented (demo)",
        45,
        (
            (70, {"type": "diagnosed", "lineage": "B", "ph_status": "positive", "cns_involvement": True}),
            (68, {"type": "phase_started", "phase": "induction"}),
            (38, {"type": "induction_failed"}),
        ),
    ),
    DemoPatient(
        "hospice",
        "Pat Pretend (demo)",
        71,
        (
            (900, {"type": "diagnosed", "lineage": "unknown", "ph_status": "positive", "cns_involvement": False}),
            (898, {"type": "phase_started", "phase": "induction"}),
            (870, {"type": "remission_achieved"}),
            (868, {"type": "phase_completed", "phase": "induction"}),
            (700, {"type": "relapsed", "site": "marrow"}),
            (695, {"type": "phase_started", "phase": "reinduction"}),
            (660, {"type": "remission_achieved"}),
            (40, {"type": "relapsed", "site": "marrow"}),
            (20, {"type": "survival_estimate", "months": 4}),
            (14, {"type": "hospice_started"}),
        ),
    ),
    DemoPatient(
        "completed",
        "Max Notreal (demo)",
        16,
        (
            *_first_line(1400),
            (1365, {"type": "phase_started", "phase": "consolidation"}),
            (1200, {"type": "phase_completed", "phase": "consolidation"}),
            (1195, {"type": "phase_started", "phase": "maintenance"}),
            (100, {"type": "phase_completed", "phase": "maintenance"}),
            (100, {"type": "treatment_completed"}),
        ),
    ),
)
# Which demo patient each demo family account is linked to.
FAMILY_LINKS = {"demo-family": "consolidation", "demo-family-2": "maintenance"}


@dataclass(frozen=True)
class SeedResult:
    created: bool
    patients: dict[str, str]  # demo key -> patient id
    logins: dict[str, tuple[str, str, str | None]]  # username -> (role, password, patient id)


def _birth_date(today: dt.date, age_years: int) -> dt.date:
    try:
        return today.replace(year=today.year - age_years) - dt.timedelta(days=40)
    except ValueError:  # 29 February
        return dt.date(today.year - age_years, 3, 1) - dt.timedelta(days=40)


def seed_demo(session: Session, today: dt.date | None = None) -> SeedResult:
    """Create the demo accounts and patients, once. A second call changes nothing."""
    existing = session.scalar(select(UserRow).where(UserRow.username == "demo-clinician"))
    if existing is not None:
        known: dict[str, str | None] = {
            u.username: u.patient_id for u in session.scalars(select(UserRow).where(UserRow.username.like("demo-%")))
        }
        linked_patients = {key: pid for user, key in FAMILY_LINKS.items() if (pid := known.get(user)) is not None}
        return SeedResult(False, linked_patients, _logins(known))

    today = today or utcnow().date()
    create_user(session, "demo-admin", DEMO_PASSWORDS["demo-admin"][1], "admin")
    clinician = create_user(session, "demo-clinician", DEMO_PASSWORDS["demo-clinician"][1], "clinician")
    records = Records(session, clinician.actor())
    patients: dict[str, str] = {}
    for demo in DEMO_PATIENTS:
        patient = records.create_patient(_birth_date(today, demo.age_years), demo.display_name)
        patients[demo.key] = patient.id
        for days_ago, fields in demo.events:
            records.append_event(patient.id, {**fields, "date": today - dt.timedelta(days=days_ago)})
    linked: dict[str, str | None] = {"demo-admin": None, "demo-clinician": None}
    for username, key in FAMILY_LINKS.items():
        create_user(session, username, DEMO_PASSWORDS[username][1], "patient", patients[key])
        linked[username] = patients[key]
    _seed_companion(session, clinician.actor(), patients, today)
    return SeedResult(True, patients, _logins(linked))


def _seed_companion(session: Session, actor: Actor, patients: dict[str, str], today: dt.date) -> None:
    """The family companion's demo data: fake contacts (555-01xx numbers are reserved for
    fiction), the maintenance doses with their counts, and a visit and a lab draw."""
    family = FamilyRecords(session, actor, load_companion())
    for key in FAMILY_LINKS.values():
        family.set_contacts(
            patients[key],
            [
                Contact("Dr Demo Oncologist (demo)", "Oncologist", "+1 555 0101", "+1 555 0199"),
                Contact("Nurse Demo (demo)", "Nurse coordinator", "+1 555 0102", "+1 555 0199"),
            ],
        )
    maintenance = patients["maintenance"]
    start = today - dt.timedelta(days=195)
    family.add_prescription(maintenance, "mercaptopurine", 50, "daily", start, 1800, 180000, start)
    family.add_prescription(maintenance, "methotrexate", 20, "weekly", start, 1800, 180000, start)
    changed = today - dt.timedelta(days=60)
    family.add_prescription(maintenance, "mercaptopurine", 40, "daily", changed, 900, 140000, changed)
    at = dt.datetime.combine(today + dt.timedelta(days=7), dt.time(9, 30), tzinfo=dt.UTC)
    family.add_calendar_event(maintenance, "lab", at, 30, "Demo clinic, lab desk")
    family.add_calendar_event(maintenance, "visit", at + dt.timedelta(hours=1), 45, "Demo clinic, room 2")


def _logins(linked: dict[str, str | None]) -> dict[str, tuple[str, str, str | None]]:
    return {
        name: (role, password, linked.get(name)) for name, (role, password) in DEMO_PASSWORDS.items() if name in linked
    }
