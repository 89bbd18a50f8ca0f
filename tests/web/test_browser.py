"""Browser tests: Debian's chromium, headless, driven by Playwright, against the real service.

The service runs in a subprocess (uvicorn) on a free loopback port with a temporary SQLite
database, shared with test_family_browser.py (tests/web/conftest.py). Every page visited is
checked with axe-core (no serious or critical violation) and screenshotted under
test-artifacts/browser/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.browsing import ADMIN, ARTIFACTS, CLINICIAN, FAMILY, check, missing
from tests.web.browsing import days_ago as _days_ago

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

if (reason := missing()) is not None:
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402


@pytest.fixture
def page(browser: Browser, server: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(base_url=server["base"], accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


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


@pytest.fixture
def sized(browser: Browser, server: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a window of the test's `width`, 900 px high."""
    width = request.node.callspec.params["width"]
    context = browser.new_context(base_url=server["base"], viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


# Every page once per width: no sideways scrolling, no serious axe finding, a screenshot. In two
# halves per width (the clinician's record pages; the rest), so that no test runs long. A click
# that loads a page is awaited before the check, which would otherwise race the navigation.


@pytest.mark.parametrize("width", [1280, 390])
def test_every_record_page_fits_its_width_and_passes_axe(sized: Page, server: dict, width: int) -> None:
    page = sized
    page.goto("/login")
    check(page, f"{width}-login")
    login(page, *CLINICIAN)
    check(page, f"{width}-patients")
    page.goto("/clinic/patients/new")
    with page.expect_navigation():
        page.get_by_role("button", name="Create patient").click()
    check(page, f"{width}-new-patient-error")
    rich = f"/clinic/patients/{server['ids']['rich']}"
    page.goto(rich)
    check(page, f"{width}-patient")
    page.goto(f"{rich}/record")
    check(page, f"{width}-record-choose")
    page.goto(f"{rich}/record?type=transplant")
    page.get_by_label("Date").fill("")
    with page.expect_navigation():
        page.get_by_role("button", name="Record transplant").click()
    check(page, f"{width}-record-error")
    page.goto(rich)
    with page.expect_navigation():
        page.locator("table.events tbody tr").first.get_by_role("link", name="Retract").click()
    check(page, f"{width}-retract")
    page.goto(f"{rich}/what-if")
    page.get_by_label("CD19 on the leukemia cells").select_option("negative")
    with page.expect_navigation():
        page.get_by_role("button", name="Show the what-if plan").click()
    check(page, f"{width}-what-if")


@pytest.mark.parametrize("width", [1280, 390])
def test_every_other_page_fits_its_width_and_passes_axe(sized: Page, server: dict, width: int) -> None:
    page = sized
    login(page, *CLINICIAN)
    expect(page.get_by_role("heading", name="Patients", exact=True)).to_be_visible()
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
    with page.expect_navigation():
        page.get_by_role("link", name=f"Change {CLINICIAN[0]}").click()
    check(page, f"{width}-admin-user")
    page.goto("/admin/audit?outcome=denied")
    check(page, f"{width}-admin-audit")


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
def test_interactive_api_docs_fit_their_width_and_pass_axe(sized: Page, width: int) -> None:
    sized.goto("/docs")
    expect(sized.locator(".opblock").first).to_be_visible()
    check(sized, f"{width}-api-docs")
