"""The family companion in a real browser at phone width (390 px), in English and in Spanish.

One service, shared with test_browser.py (tests/web/conftest.py; the data is `browsing.seed`),
and one chromium for the module. A family reads the plan, records a 38.5 °C temperature during
induction and sees the call instruction with the team's number; the clinician sees the patient
flagged; a family logs 30 days of maintenance with 3 missed doses and the clinician sees 90%
adherence. axe-core runs on every page visited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.web import browsing
from tests.web.browsing import DAY_PHONE, MAINTENANCE_START, TODAY, missing
from tests.web.browsing import FAMILY_CLINICIAN as CLINICIAN
from tests.web.browsing import FAMILY_PASSWORD as PASSWORD

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
MISSED = {4, 13, 22}  # days after the start of maintenance

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

if (reason := missing()) is not None:
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402


def new_page(browser: Browser, server: dict[str, Any], lang: str, viewport: dict[str, int] = PHONE) -> Page:
    context = browser.new_context(
        base_url=server["base"], locale="es-ES" if lang == "es" else "en-US", viewport=viewport
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def check(page: Page, name: str) -> None:
    browsing.check(page, f"family-{name}")


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
