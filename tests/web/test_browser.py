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
ADMIN = ("test-admin", "admin-password-123")

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
        rich = records.create_patient(dt.date(2009, 3, 1), "Rich Testpatient (fake)").id
        ids["rich"] = rich
        for event in (
            {"type": "diagnosed", "date": _days_ago(400), "lineage": "B", "ph_status": "negative"},
            {"type": "phase_started", "date": _days_ago(399), "phase": "induction"},
            {"type": "remission_achieved", "date": _days_ago(370)},
            {"type": "phase_completed", "date": _days_ago(369), "phase": "induction"},
            {"type": "mrd_result", "date": _days_ago(368), "result": "positive"},
            {"type": "relapsed", "date": _days_ago(60), "site": "marrow"},
            {"type": "immunophenotype", "date": _days_ago(59), "cd19": "positive", "cd22": "positive"},
        ):
            records.append_event(rich, event)
        create_user(session, *CLINICIAN, "clinician")
        create_user(session, *ADMIN, "admin")
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
    """Screenshot the page, check it fits its width, and run axe-core: no serious or critical violation."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{name}: page is {widths[0]} px wide in a {widths[1]} px window"
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


def record(page: Page, kind: str, date: str, **choices: str) -> None:
    """Record one event through the page's single "Record event" action."""
    page.locator("#record-type").select_option(kind)
    page.get_by_role("button", name="Record event").click()
    page.get_by_label("Date").fill(date)
    for label, value in choices.items():
        page.get_by_label(label.replace("_", " "), exact=True).select_option(value)
    page.locator("form.event-form button[type=submit]").click()


def offered(page: Page) -> list[str]:
    return page.locator("#record-type option").evaluate_all("els => els.map(e => e.value)")


def rules_in_plan(page: Page) -> set[str]:
    return set(page.locator("#plan-section li.recommendation").evaluate_all("els => els.map(e => e.dataset.rule)"))


def test_clinician_records_a_course_corrects_it_and_tries_a_what_if(page: Page) -> None:
    """The scripted clinician task, through the browser only."""
    login(page, *CLINICIAN)
    expect(page.get_by_role("heading", name="Patients", exact=True)).to_be_visible()

    page.get_by_role("link", name="New patient").first.click()
    page.get_by_label("Birth date").fill("2010-04-03")
    page.get_by_label("Display name").fill("Browser Test (fake)")
    page.get_by_role("button", name="Create patient").click()
    expect(page.get_by_role("status")).to_contain_text("Patient record created.")
    patient_url = page.url.split("?")[0]
    assert re.search(r"/clinic/patients/P[0-9A-Z]{10}$", patient_url)
    expect(page.locator("#course-status")).to_have_text("No diagnosis recorded")
    assert offered(page) == ["diagnosed"]  # nothing else can come first

    # A mistaken diagnosis (T-cell), corrected below.
    record(page, "diagnosed", _days_ago(300), Lineage="T", Philadelphia_chromosome="negative")
    expect(page.locator("#course-status")).to_have_text("Newly diagnosed")
    assert "diagnosed" not in offered(page) and "relapsed" not in offered(page)
    page.locator("#record-type").select_option("phase_started")
    page.get_by_role("button", name="Record event").click()
    phases = page.get_by_label("Phase").locator("option").evaluate_all("els => els.map(e => e.value)")
    assert phases == ["induction"], phases
    page.get_by_label("Date").fill(_days_ago(299))
    page.locator("form.event-form button[type=submit]").click()
    expect(page.locator("#current-phase")).to_have_text("Induction")
    assert "induction-chemotherapy" in rules_in_plan(page)

    # Induction completes with a remission: until one is recorded, completing it is not offered.
    assert "phase_completed" not in offered(page) and "remission_achieved" in offered(page)
    # Refused by the store: a remission dated before the patient was born. The error is
    # summarised at the top, linked to its field, and takes the focus.
    record(page, "remission_achieved", "2009-01-01")
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("Date is before the patient's birth date.")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_attribute("href", "#ev-date")
    page.get_by_role("link", name="Back to Browser Test (fake)").click()

    record(page, "remission_achieved", _days_ago(270))
    record(page, "phase_completed", _days_ago(269))
    expect(page.locator("#course-status")).to_have_text("In remission")
    expect(page.locator("#plan-phase-now")).to_have_text("Consolidation")
    record(page, "mrd_result", _days_ago(268), Result="negative")
    expect(page.get_by_role("status")).to_contain_text("MRD result: recorded.")
    assert "consolidation-chemotherapy" in rules_in_plan(page)

    # Correct the mistaken diagnosis: T-cell to B-cell. Both entries stay in the history.
    page.locator("tr", has_text="Diagnosed (T-cell").get_by_role("link", name="Correct").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Correct: Diagnosed (T-cell")
    page.get_by_label("Lineage").select_option("B")
    page.get_by_role("button", name="Save the correction").click()
    expect(page.locator("table.events")).to_contain_text("Corrected by a later entry")
    expect(page.locator("table.events")).to_contain_text("Diagnosed (B-cell")

    # A relapse; then CD19 on the cells: blinatumomab joins the plan.
    record(page, "relapsed", _days_ago(30), Site="marrow")
    expect(page.locator("#course-status")).to_have_text("Relapsed")
    assert "consolidation-chemotherapy" not in rules_in_plan(page)
    record(page, "immunophenotype", _days_ago(29), CD19="positive")
    assert "blinatumomab-r-r-b-all" in rules_in_plan(page)

    # Retract an entry made in error (the MRD result): it stays, marked as retracted.
    page.locator("tr", has_text="MRD negative").get_by_role("link", name="Retract").click()
    expect(page.locator("#retract-label")).to_have_text("MRD negative")
    page.get_by_role("button", name="Retract this entry").click()
    expect(page.locator("table.events")).to_contain_text("Retracted (entered in error)")

    # What if CD19 were negative? Blinatumomab leaves the plan, with the rule that says why.
    page.get_by_role("link", name="What if…").click()
    page.get_by_label("CD19 on the leukemia cells").select_option("negative")
    page.get_by_role("button", name="Show the what-if plan").click()
    gone = page.locator('li.change[data-rule="blinatumomab-r-r-b-all"]')
    expect(gone).to_have_attribute("data-change", "leaves")
    expect(gone).to_contain_text("cd19_status")
    what_if_plan = page.locator(".side-by-side > div").nth(1)
    expect(what_if_plan.locator('li[data-rule="blinatumomab-r-r-b-all"]')).to_have_count(0)
    # Nothing was saved: the record's plan still holds it.
    page.goto(patient_url)
    assert "blinatumomab-r-r-b-all" in rules_in_plan(page)


def test_a_stale_form_gets_a_conflict_and_saves_nothing(page: Page, browser: Browser, server: dict) -> None:
    login(page, *CLINICIAN)
    url = f"/clinic/patients/{server['ids']['other']}/record?type=mrd_result"
    page.goto(url)
    other = browser.new_context(base_url=server["base"]).new_page()
    login(other, *CLINICIAN)
    other.goto(url)
    other.get_by_label("Date").fill(_days_ago(20))
    other.get_by_role("button", name="Record MRD result").click()
    expect(other.get_by_role("status")).to_contain_text("MRD result: recorded.")
    other.context.close()

    page.get_by_label("Date").fill(_days_ago(19))
    page.get_by_role("button", name="Record MRD result").click()
    expect(page.locator("#error-summary")).to_contain_text("Someone else changed this record")
    page.goto(f"/clinic/patients/{server['ids']['other']}")
    assert page.locator("table.events tbody tr").count() == 3  # diagnosis, induction, the other's MRD


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_fits_its_width_and_passes_axe(browser: Browser, server: dict, width: int) -> None:
    """Each page once per width: no sideways scrolling, no serious axe finding, a screenshot."""
    context = browser.new_context(base_url=server["base"], viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/login")
        check(page, f"{width}-login")
        login(page, *CLINICIAN)
        check(page, f"{width}-patients")
        page.goto("/clinic/patients/new")
        page.get_by_role("button", name="Create patient").click()
        check(page, f"{width}-new-patient-error")
        rich = f"/clinic/patients/{server['ids']['rich']}"
        page.goto(rich)
        check(page, f"{width}-patient")
        page.goto(f"{rich}/record")
        check(page, f"{width}-record-choose")
        page.goto(f"{rich}/record?type=transplant")
        page.get_by_label("Date").fill("")
        page.get_by_role("button", name="Record transplant").click()
        check(page, f"{width}-record-error")
        page.goto(rich)
        page.locator("table.events tbody tr").first.get_by_role("link", name="Retract").click()
        check(page, f"{width}-retract")
        page.goto(f"{rich}/what-if")
        page.get_by_label("CD19 on the leukemia cells").select_option("negative")
        page.get_by_role("button", name="Show the what-if plan").click()
        check(page, f"{width}-what-if")
        page.goto("/learn?q=spinal+tap")
        check(page, f"{width}-learn")
        page.goto(f"/plan/{server['ids']['rich']}")
        check(page, f"{width}-family-preview")
        response = page.goto("/no-such-page")
        assert response is not None and response.status == 404
        check(page, f"{width}-404")
        page.goto("/account/password")
        check(page, f"{width}-password")
        page.get_by_role("button", name="Log out").click()
        login(page, *ADMIN)
        page.goto("/admin/users")
        check(page, f"{width}-admin-users")
        page.get_by_role("link", name=f"Change {CLINICIAN[0]}").click()
        check(page, f"{width}-admin-user")
        page.goto("/admin/audit?outcome=denied")
        check(page, f"{width}-admin-audit")
    finally:
        context.close()


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
    page.get_by_label("Search the knowledge base").fill("spinal tap")
    page.get_by_role("button", name="Search").click()
    first = page.locator("ol.results li a").first
    expect(first).to_have_text("Central nervous system (CNS) prophylaxis")
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


def test_interactive_api_docs_render_offline_under_the_pages_policy(page: Page, server: dict) -> None:
    # Swagger UI from the service's own files, started by a script file (no inline script):
    # the strict Content-Security-Policy stays on, and nothing is fetched from elsewhere.
    remote: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server["base"]) else remote.append(r.url))
    page.goto("/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 10
    assert remote == [], remote


@pytest.mark.parametrize("width", [1280, 390])
def test_interactive_api_docs_fit_their_width_and_pass_axe(browser: Browser, server: dict, width: int) -> None:
    context = browser.new_context(base_url=server["base"], viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto("/docs")
        expect(page.locator(".opblock").first).to_be_visible()
        check(page, f"{width}-api-docs")
    finally:
        context.close()
