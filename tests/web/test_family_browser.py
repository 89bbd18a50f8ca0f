"""The family companion in a real browser at phone width (390 px), in English and in Spanish.

One service and one chromium for the module (as in test_browser.py). A family reads the plan,
records a 38.5 °C temperature during induction and sees the call instruction with the team's
number; the clinician sees the patient flagged; a family logs 30 days of maintenance with 3
missed doses and the clinician sees 90% adherence. axe-core runs on every page visited.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from allpath.testing import running_server

ROOT = Path(__file__).parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CLINICIAN = ("fam-clinician", "clinician-password-1")
PASSWORD = "family-password-1"
DAY_PHONE = "+1 555 0142"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
MISSED = {4, 13, 22}  # days after the start of maintenance

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: run `make install` as root (apt-get install chromium)"
    if not AXE.exists():
        return f"{AXE.relative_to(ROOT)} is missing: run `make node-deps` (npm install axe-core@4)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: run `make install`"
    return None


if (reason := _missing()) is not None:
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

TODAY = dt.date.today()
MAINTENANCE_START = TODAY - dt.timedelta(days=29)


def _seed(database_url: str) -> dict[str, str]:
    """Per language: a child in induction and one in maintenance, each with a family account."""
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
        family = FamilyRecords(session, SYSTEM, load_companion())
        for lang in ("en", "es"):
            induction = records.create_patient(dt.date(2018, 6, 1), f"Induction {lang} (fake)").id
            diagnosed = (TODAY - dt.timedelta(days=12)).isoformat()
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
            create_user(session, f"fam-induction-{lang}", PASSWORD, "patient", induction)
            create_user(session, f"fam-maint-{lang}", PASSWORD, "patient", maint)
            ids[f"induction-{lang}"], ids[f"maint-{lang}"] = induction, maint
        create_user(session, *CLINICIAN, "clinician")
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("family-browser")
    database_url = f"sqlite:///{tmp / 'allpath.db'}"
    ids = _seed(database_url)
    env = {**os.environ, "ALLPATH_DATABASE_URL": database_url, "ALLPATH_SECRET_KEY": "family-browser-test-secret"}
    with running_server(["--log-level", "warning"], env=env, log_path=tmp / "server.log") as running:
        yield {"base": running.base_url, "ids": ids}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def new_page(browser: Browser, server: dict[str, Any], lang: str, viewport: dict[str, int] = PHONE) -> Page:
    context = browser.new_context(
        base_url=server["base"], locale="es-ES" if lang == "es" else "en-US", viewport=viewport
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def check(page: Page, name: str) -> None:
    """No sideways scrolling, a screenshot, then axe-core (injected over DevTools: the CSP forbids
    inline scripts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        wide = page.evaluate(
            """() => [...document.querySelectorAll('main *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 5)
                .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""
        )
        raise AssertionError(f"{name}: the page is {widths[0]} px wide in a {widths[1]} px window: {wide}")
    page.screenshot(path=str(ARTIFACTS / f"family-{name}.png"), full_page=True)
    page.evaluate(AXE.read_text(encoding="utf-8"))
    violations = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: accessibility violations {bad}"


def login(page: Page, username: str, password: str, lang: str) -> None:
    page.goto("/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Entrar" if lang == "es" else "Log in").click()


WORDS = {
    "en": {"plan": "Our treatment plan", "call": "Call the care team now", "save": "Save"},
    "es": {"plan": "Nuestro plan", "call": "Llame ya al equipo médico", "save": "Guardar"},
}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_family_reads_plan_records_fever_and_the_clinician_sees_the_flag(browser, server, lang: str) -> None:
    page = new_page(browser, server, lang)
    patient = server["ids"][f"induction-{lang}"]
    login(page, f"fam-induction-{lang}", PASSWORD, lang)
    expect(page.get_by_role("heading", name=WORDS[lang]["plan"], exact=True)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator('.roadmap [aria-current="step"]')).to_contain_text("induc", ignore_case=True)
    expect(page.locator(".call-now")).to_contain_text(DAY_PHONE)
    check(page, f"{lang}-plan-390")

    page.goto(f"/plan/{patient}/diary")
    page.locator("#temperature").fill("38,5" if lang == "es" else "38.5")
    page.get_by_role("button", name=WORDS[lang]["save"]).click()
    alert = page.locator("#urgent")
    expect(alert).to_be_visible()
    expect(alert.get_by_role("heading")).to_have_text(WORDS[lang]["call"])
    expect(alert.locator("a.phone").first).to_have_text(DAY_PHONE)
    expect(alert.locator("a.phone").first).to_have_attribute("href", "tel:" + DAY_PHONE.replace(" ", ""))
    check(page, f"{lang}-diary-urgent-390")
    page.context.close()

    clinic = new_page(browser, server, lang)
    login(clinic, *CLINICIAN, lang)
    clinic.goto("/clinic/patients")
    row = clinic.locator("tr", has=clinic.locator(f'a[href="/clinic/patients/{patient}"]'))
    expect(row.locator('[data-flag="urgent-diary"]')).to_be_visible()
    check(clinic, f"{lang}-clinic-list-flag-390")
    clinic.context.close()


@pytest.mark.parametrize("lang", ["en", "es"])
def test_thirty_days_of_maintenance_with_three_missed_show_ninety_percent(browser, server, lang: str) -> None:
    page = new_page(browser, server, lang)
    patient = server["ids"][f"maint-{lang}"]
    login(page, f"fam-maint-{lang}", PASSWORD, lang)
    week_end = TODAY
    while week_end >= MAINTENANCE_START:
        page.goto(f"/plan/{patient}/medicines?week_end={week_end.isoformat()}")
        for back in range(7):
            day = week_end - dt.timedelta(days=back)
            if day < MAINTENANCE_START:
                break
            choice = "missed" if (day - MAINTENANCE_START).days in MISSED else "taken"
            page.locator(f'input[name="dose:mercaptopurine:{day.isoformat()}"][value="{choice}"]').check()
        page.get_by_role("button", name=WORDS[lang]["save"]).click()
        expect(page.get_by_role("status")).to_be_visible()
        if week_end == TODAY:
            check(page, f"{lang}-medicines-390")
        week_end -= dt.timedelta(days=7)
    page.context.close()

    clinic = new_page(browser, server, lang, DESKTOP)
    login(clinic, *CLINICIAN, lang)
    clinic.goto(f"/clinic/patients/{patient}/family")
    expect(clinic.locator('[data-adherence="mercaptopurine-30"]')).to_have_text("90.0%")
    check(clinic, f"{lang}-clinic-companion-1280")
    clinic.set_viewport_size(PHONE)
    check(clinic, f"{lang}-clinic-companion-390")
    clinic.context.close()


def test_family_plan_at_desktop_width_in_spanish(browser, server) -> None:
    page = new_page(browser, server, "es", DESKTOP)
    login(page, "fam-maint-es", PASSWORD, "es")
    expect(page.get_by_role("heading", name="Nuestro plan", exact=True)).to_be_visible()
    page.goto(f"/plan/{server['ids']['maint-es']}/calendar")
    check(page, "es-calendar-1280")
    page.context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_every_family_page_fits_its_width_and_passes_axe(browser, server, viewport: dict[str, int]) -> None:
    page = new_page(browser, server, "en", viewport)
    patient = server["ids"]["maint-en"]
    login(page, "fam-maint-en", PASSWORD, "en")
    for name, path in (
        ("plan", f"/plan/{patient}"),
        ("diary", f"/plan/{patient}/diary"),
        ("medicines", f"/plan/{patient}/medicines"),
        ("calendar", f"/plan/{patient}/calendar"),
    ):
        page.goto(path)
        expect(page.locator("main")).to_be_visible()
        check(page, f"en-{name}-{viewport['width']}")
    page.context.close()
