"""What the browser tests (test_browser.py, test_family_browser.py) share: where chromium and
axe-core are, the check every visited page gets, and the data the one service starts with.

The fixtures themselves are in conftest.py: `server` is session-scoped (both modules are in the
`browser` xdist group, so one worker starts one service for both), `browser` module-scoped.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SHOT_HEIGHT = 4000

# test_browser.py's accounts
CLINICIAN = ("test-clinician", "clinician-password-1")
FAMILY = ("test-family", "family-password-1")
ADMIN = ("test-admin", "admin-password-123")
# test_family_browser.py's accounts: a clinician, and per language a family in induction and one in maintenance
FAMILY_CLINICIAN = ("fam-clinician", "clinician-password-1")
FAMILY_PASSWORD = "family-password-1"
DAY_PHONE = "+1 555 0142"

TODAY = dt.date.today()
MAINTENANCE_START = TODAY - dt.timedelta(days=29)


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: run `make install` as root (apt-get install chromium)"
    if not AXE.exists():
        return f"{AXE.relative_to(ROOT)} is missing: run `make node-deps` (npm install axe-core@4)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: run `make install`"
    return None


def days_ago(n: int) -> str:
    return (TODAY - dt.timedelta(days=n)).isoformat()


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def check(page: Page, name: str) -> None:
    """No sideways scrolling, a screenshot, then axe-core: no serious or critical violation."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        wide = page.evaluate(
            """() => [...document.querySelectorAll('main *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 5)
                .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""
        )
        raise AssertionError(f"{name}: the page is {widths[0]} px wide in a {widths[1]} px window: {wide}")
    # Overwritten by name on each run; never emptied, so no two processes race on a delete.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The shots are for people to look at, and cheap so: JPEG (chromium encodes a long page as
    # PNG in about twice the time) and at most SHOT_HEIGHT px from the top (the knowledge search
    # is tens of thousands of px long). The checks above and below cover the whole page.
    height = min(SHOT_HEIGHT, page.evaluate("() => document.documentElement.scrollHeight"))
    page.screenshot(
        path=str(ARTIFACTS / f"{name}.jpg"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": widths[1], "height": height},
        type="jpeg",
        quality=70,
    )
    # Evaluated over the DevTools protocol, not added as a <script>: the pages' Content-Security-
    # Policy (rightly) blocks inline scripts, and the browser tests keep that policy in force.
    page.evaluate(_axe_source())
    violations = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: accessibility violations {bad}"


def seed(database_url: str) -> dict[str, str]:
    """Both modules' accounts and patients, made through the store as the service would.

    test_browser.py: two patients with a diagnosis ("own", with a family account, and "other")
    and one with a relapse ("rich"). test_family_browser.py, per language: a child in induction
    and one in maintenance since MAINTENANCE_START, each with a family account and a contact.
    """
    from allpath.course.companion import load_companion
    from allpath.store import Records, make_engine, make_sessionmaker, upgrade
    from allpath.store.auth import create_user
    from allpath.store.companion import Contact, FamilyRecords
    from allpath.store.service import SYSTEM

    engine = make_engine(database_url)
    upgrade(engine)
    ids: dict[str, str] = {}
    with make_sessionmaker(engine)() as session:
        records = Records(session, SYSTEM)
        for key, born in (("own", dt.date(2014, 5, 1)), ("other", dt.date(1990, 2, 1))):
            patient = records.create_patient(born, f"{key.capitalize()} Testpatient (fake)")
            ids[key] = patient.id
            records.append_event(patient.id, {"type": "diagnosed", "date": days_ago(40), "lineage": "B"})
            records.append_event(patient.id, {"type": "phase_started", "date": days_ago(39), "phase": "induction"})
        rich = records.create_patient(dt.date(2009, 3, 1), "Rich Testpatient (fake)").id
        ids["rich"] = rich
        for event in (
            {"type": "diagnosed", "date": days_ago(400), "lineage": "B", "ph_status": "negative"},
            {"type": "phase_started", "date": days_ago(399), "phase": "induction"},
            {"type": "remission_achieved", "date": days_ago(370)},
            {"type": "phase_completed", "date": days_ago(369), "phase": "induction"},
            {"type": "mrd_result", "date": days_ago(368), "result": "positive"},
            {"type": "relapsed", "date": days_ago(60), "site": "marrow"},
            {"type": "immunophenotype", "date": days_ago(59), "cd19": "positive", "cd22": "positive"},
        ):
            records.append_event(rich, event)
        create_user(session, *CLINICIAN, "clinician")
        create_user(session, *ADMIN, "admin")
        create_user(session, *FAMILY, "patient", ids["own"])

        family = FamilyRecords(session, SYSTEM, load_companion())
        for lang in ("en", "es"):
            induction = records.create_patient(dt.date(2018, 6, 1), f"Induction {lang} (fake)").id
            diagnosed = days_ago(12)
            records.append_event(induction, {"type": "diagnosed", "date": diagnosed, "lineage": "B"})
            records.append_event(induction, {"type": "phase_started", "date": diagnosed, "phase": "induction"})
            maint = records.create_patient(dt.date(2017, 2, 1), f"Maintenance {lang} (fake)").id
            for event in (
                {"type": "diagnosed", "date": "2026-01-05", "lineage": "B", "ph_status": "negative"},
                {"type": "phase_started", "date": "2026-01-06", "phase": "induction"},
                {"type": "remission_achieved", "date": "2026-02-02"},
                {"type": "phase_completed", "date": "2026-02-03", "phase": "induction"},
                {"type": "phase_started", "date": "2026-02-04", "phase": "consolidation"},
                {"type": "phase_completed", "date": MAINTENANCE_START.isoformat(), "phase": "consolidation"},
                {"type": "phase_started", "date": MAINTENANCE_START.isoformat(), "phase": "maintenance"},
            ):
                records.append_event(maint, event)
            for patient in (induction, maint):
                family.set_contacts(patient, [Contact("Dr Ana Ruiz", "Oncologist", DAY_PHONE, "+1 555 0199")])
            family.add_prescription(
                maint, "mercaptopurine", 50, "daily", MAINTENANCE_START, 1500, 160000, MAINTENANCE_START
            )
            create_user(session, f"fam-induction-{lang}", FAMILY_PASSWORD, "patient", induction)
            create_user(session, f"fam-maint-{lang}", FAMILY_PASSWORD, "patient", maint)
            ids[f"induction-{lang}"], ids[f"maint-{lang}"] = induction, maint
        create_user(session, *FAMILY_CLINICIAN, "clinician")
    engine.dispose()
    return ids
