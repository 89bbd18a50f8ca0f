"""Browser tests: Debian's chromium, headless, driven by Playwright, against the real service.

The service runs in a subprocess (uvicorn) on a free loopback port with a temporary SQLite
database. Every page visited is checked with axe-core (no serious or critical violation) and
screenshotted under test-artifacts/browser/.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from allpath.testing import running_server

ROOT = Path(__file__).parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CLINICIAN = ("test-clinician", "clinician-password-1")
FAMILY = ("test-family", "family-password-1")

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


def _days_ago(n: int) -> str:
    return (dt.date.today() - dt.timedelta(days=n)).isoformat()


def _seed(database_url: str) -> dict[str, str]:
    """Accounts and two patients with a diagnosis, made through the store as the service would."""
    from allpath.store import Records, make_engine, make_sessionmaker, upgrade
    from allpath.store.auth import create_user
    from allpath.store.service import SYSTEM

    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    ids: dict[str, str] = {}
    with sessions() as session:
        records = Records(session, SYSTEM)
        for key, born in (("own", dt.date(2014, 5, 1)), ("other", dt.date(1990, 2, 1))):
            patient = records.create_patient(born, f"{key.capitalize()} Testpatient (fake)")
            ids[key] = patient.id
            records.append_event(patient.id, {"type": "diagnosed", "date": _days_ago(40), "lineage": "B"})
            records.append_event(patient.id, {"type": "phase_started", "date": _days_ago(39), "phase": "induction"})
        create_user(session, *CLINICIAN, "clinician")
        create_user(session, *FAMILY, "patient", ids["own"])
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("browser")
    database_url = f"sqlite:///{tmp / 'allpath.db'}"
    ids = _seed(database_url)
    env = {
        **os.environ,
        "ALLPATH_DATABASE_URL": database_url,
        "ALLPATH_SECRET_KEY": "browser-test-secret-not-for-production",
    }
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
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module", autouse=True)
def _artifacts() -> None:
    # Overwritten by name on each run; never emptied, so no two processes race on a delete.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def page(browser: Browser, server: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(base_url=server["base"], accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def check(page: Page, name: str) -> None:
    """Screenshot the page and run axe-core on it: no serious or critical violation."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    # Evaluated over the DevTools protocol, not added as a <script>: the pages' Content-Security-
    # Policy (rightly) blocks inline scripts, and the browser tests keep that policy in force.
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


def login(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_clinician_records_a_course_and_the_plan_moves_to_consolidation(page: Page) -> None:
    page.goto("/login")
    check(page, "01-login")
    page.get_by_label("User name").fill(CLINICIAN[0])
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("The user name or password is not right.")
    check(page, "02-login-failed")

    login(page, *CLINICIAN)
    expect(page.get_by_role("heading", name="Patients", exact=True)).to_be_visible()
    check(page, "03-patient-list")

    page.get_by_role("link", name="New patient").first.click()
    page.get_by_role("button", name="Create patient").click()  # empty: field-level error
    expect(page.locator("#birth_date-error")).to_have_text("Enter the birth date.")
    check(page, "04-new-patient-error")
    page.get_by_label("Birth date").fill("2012-04-03")
    page.get_by_label("Display name").fill("Browser Test (fake)")
    page.get_by_role("button", name="Create patient").click()
    expect(page.get_by_role("status")).to_contain_text("Patient record created.")
    patient_url = page.url.split("?")[0]
    assert re.search(r"/clinic/patients/P[0-9A-Z]{10}$", patient_url)
    expect(page.locator("#course-status")).to_have_text("No diagnosis recorded")
    check(page, "05-patient-empty")

    diagnosis = page.locator("#form-diagnosed")
    diagnosis.get_by_label("Date").fill(_days_ago(60))
    diagnosis.get_by_label("Lineage").select_option("B")
    diagnosis.get_by_label("Philadelphia chromosome").select_option("negative")
    diagnosis.get_by_label("Leukemia in the brain or spinal fluid").select_option("false")
    diagnosis.get_by_role("button", name="Record diagnosis").click()
    expect(page.locator("#course-status")).to_have_text("Newly diagnosed")

    started = page.locator("#form-phase_started")
    started.get_by_label("Date").fill(_days_ago(59))
    started.get_by_label("Phase").select_option("induction")
    started.get_by_role("button", name="Record phase start").click()
    expect(page.locator("#current-phase")).to_have_text("Induction")
    expect(page.locator("#plan-phase-now")).to_have_text("Induction")
    expect(page.locator("#plan-phase-next")).to_have_text("Consolidation")
    expect(page.locator('li[data-rule="induction-chemotherapy"]')).to_be_visible()
    expect(page.locator('li[data-rule="consolidation-chemotherapy"]')).to_have_count(0)
    check(page, "06-patient-induction")

    # An event the course model refuses: the reason is shown on that form, nothing is saved.
    started = page.locator("#form-phase_started")
    started.get_by_label("Date").fill(_days_ago(58))
    started.get_by_label("Phase").select_option("maintenance")
    started.get_by_role("button", name="Record phase start").click()
    expect(page.locator("#form-phase_started .field-error")).to_have_text(
        "Phase: induction is still in progress: complete it first."
    )
    expect(page.locator("#current-phase")).to_have_text("Induction")
    check(page, "07-patient-refused-event")

    remission = page.locator("#form-remission_achieved")
    remission.get_by_label("Date").fill("")
    remission.get_by_role("button", name="Record remission").click()
    expect(page.locator("#ev-remission_achieved-date-error")).to_have_text("Date is required.")
    check(page, "08-patient-missing-date")
    remission = page.locator("#form-remission_achieved")
    remission.get_by_label("Date").fill(_days_ago(31))
    remission.get_by_role("button", name="Record remission").click()
    expect(page.locator("#course-status")).to_have_text("In remission")

    completed = page.locator("#form-phase_completed")
    completed.get_by_label("Date").fill(_days_ago(30))
    completed.get_by_label("Phase").select_option("induction")
    completed.get_by_role("button", name="Record phase completion").click()
    expect(page.locator("#plan-phase-now")).to_have_text("Consolidation")
    expect(page.locator("#plan-phase-next")).to_have_text("Maintenance")
    expect(page.locator('li[data-rule="consolidation-chemotherapy"]')).to_be_visible()
    expect(page.locator('li[data-rule="induction-chemotherapy"]')).to_have_count(0)
    # the timeline shows the finished induction as a bar and the remission as a marker
    expect(page.locator('svg.timeline g[data-phase="induction"]')).to_have_count(1)
    expect(page.locator('svg.timeline g[data-kind="remission_achieved"]')).to_have_count(1)
    check(page, "09-patient-consolidation")

    page.goto(patient_url.replace("/clinic/patients/", "/plan/"))
    expect(page.get_by_role("heading", name="Our treatment plan")).to_be_visible()
    expect(page.locator("#plan")).to_contain_text("You are in the Consolidation (intensification) phase.")
    check(page, "10-clinician-family-preview")


def test_a_stale_form_gets_a_conflict_and_saves_nothing(page: Page, browser: Browser, server: dict) -> None:
    login(page, *CLINICIAN)
    url = f"/clinic/patients/{server['ids']['other']}"
    page.goto(url)
    other = browser.new_context(base_url=server["base"]).new_page()
    login(other, *CLINICIAN)
    other.goto(url)
    mrd = other.locator("#form-mrd_result")
    mrd.get_by_label("Date").fill(_days_ago(20))
    mrd.get_by_role("button", name="Record MRD result").click()
    expect(other.get_by_role("status")).to_contain_text("MRD result: recorded.")
    other.context.close()

    mrd = page.locator("#form-mrd_result")
    mrd.get_by_label("Date").fill(_days_ago(19))
    mrd.get_by_role("button", name="Record MRD result").click()
    expect(page.locator("#ev-mrd_result-form-error")).to_contain_text("Someone else changed this record")
    check(page, "11-patient-conflict")
    assert page.locator("table.events tbody tr").count() == 3  # diagnosis, induction, the other's MRD


def test_patient_reads_and_downloads_own_plan_but_not_another(page: Page, server: dict) -> None:
    from allpath.web.family import reading_grade

    login(page, *FAMILY)
    expect(page.get_by_role("heading", name="Our treatment plan")).to_be_visible()
    own = server["ids"]["own"]
    assert page.url.endswith(f"/plan/{own}")
    for heading in ("What is happening now", "What comes next", "Side effects to watch for"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.locator("#plan")).to_contain_text("You are in the Remission induction phase.")
    grade = reading_grade(page.content())
    assert grade <= 8.0, f"rendered family page reads at grade {grade}"
    check(page, "12-family-plan")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download as PDF").click()
    download = info.value
    target = ARTIFACTS / "my-treatment-plan.pdf"
    download.save_as(target)
    assert download.suggested_filename == "my-treatment-plan.pdf"
    assert target.read_bytes().startswith(b"%PDF-")

    other = server["ids"]["other"]
    for url in (f"/plan/{other}", f"/plan/{other}/plan.pdf"):
        response = page.goto(url)
        assert response is not None and response.status == 404, url
    expect(page.get_by_role("heading", name="Plan not found")).to_be_visible()
    check(page, "13-family-other-patient-404")
    response = page.goto(f"/clinic/patients/{other}")
    assert response is not None and response.status == 403
    response = page.goto("/clinic/patients")
    assert response is not None and response.status == 403
    check(page, "14-family-clinic-403")


def test_knowledge_browser_search(page: Page) -> None:
    page.goto("/learn")
    expect(page.get_by_role("heading", name="Learn about ALL")).to_be_visible()
    check(page, "15-knowledge")
    page.get_by_label("Search the knowledge base").fill("spinal tap")
    page.get_by_role("button", name="Search").click()
    first = page.locator("ol.results li a").first
    expect(first).to_have_text("Central nervous system (CNS) prophylaxis")
    check(page, "16-knowledge-search")
    first.click()
    assert page.url.endswith("#phase-cns_prophylaxis")


def test_pages_need_a_login(page: Page, server: dict) -> None:
    page.goto(f"/clinic/patients/{server['ids']['own']}")
    assert "/login?next=" in page.url
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto(f"/plan/{server['ids']['own']}")
    assert "/login?next=" in page.url
    login_next = page.url
    page.get_by_label("User name").fill(FAMILY[0])
    page.get_by_label("Password").fill(FAMILY[1])
    page.get_by_role("button", name="Log in").click()
    assert page.url.endswith(f"/plan/{server['ids']['own']}"), login_next


def test_clinician_sees_what_would_sharpen_the_plan_as_an_accessible_box(page: Page, server: dict) -> None:
    # The seeded patients were diagnosed without a Philadelphia chromosome result.
    login(page, *CLINICIAN)
    page.goto(f"/clinic/patients/{server['ids']['other']}")
    box = page.get_by_role("region", name="What would sharpen this plan")
    expect(box).to_be_visible()
    expect(box.locator('li[data-fact="ph_status"] > strong')).to_have_text("Philadelphia chromosome (BCR-ABL1) status")
    expect(box.locator('li[data-affects="tki-ph-positive"]')).to_be_visible()
    check(page, "17-patient-sharpen-box")
