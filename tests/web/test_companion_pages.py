"""The family companion through FastAPI's test client: the call box with the team's numbers, the
diary that flags the team, the medicine log and adherence, the calendar feed and its links, the
language of every family page, and that a family account only ever reaches its own child."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from allpath.api import create_app
from allpath.course.companion import load_companion
from allpath.knowledge.loader import KnowledgeBase
from allpath.store.auth import create_user
from allpath.store.companion import Contact, FamilyRecords
from allpath.store.service import SYSTEM, Records
from allpath.web.family import page_readability, visible_text

# One worker runs the module: its service (and the log-ins) are built once.
pytestmark = pytest.mark.xdist_group("companion-pages")

CLINICIAN = ("comp-clinician", "clinician-password-1")
FAMILY = ("comp-family", "family-password-1")
OTHER_FAMILY = ("comp-other", "family-password-2")
# Sets its own language preference, so the other accounts keep following Accept-Language.
LANG_FAMILY = ("comp-lang", "family-password-3")
TODAY = dt.date.today()
DAY_PHONE = "+1 555 0100"
NIGHT_PHONE = "+1 555 0199"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = Path(tmp_path_factory.mktemp("companion")) / "t.db"
    app = create_app(database_url=f"sqlite:///{db}")
    context = app.state.allpath
    with context.sessions() as session:
        records = Records(session, SYSTEM)
        own = records.create_patient(dt.date(2019, 3, 1), "Nina Companion (fake)").id
        start = (TODAY - dt.timedelta(days=10)).isoformat()
        records.append_event(own, {"type": "diagnosed", "date": start, "lineage": "B", "ph_status": "negative"})
        records.append_event(own, {"type": "phase_started", "date": start, "phase": "induction"})
        other = records.create_patient(dt.date(2018, 1, 1), "Other Companion (fake)").id
        records.append_event(other, {"type": "diagnosed", "date": start, "lineage": "B"})
        fam = FamilyRecords(session, SYSTEM, load_companion())
        fam.set_contacts(own, [Contact("Dr Ana Ruiz", "Oncologist", DAY_PHONE, NIGHT_PHONE)])
        create_user(session, *CLINICIAN, "clinician")
        create_user(session, *FAMILY, "patient", own)
        create_user(session, *OTHER_FAMILY, "patient", other)
        create_user(session, *LANG_FAMILY, "patient", own)
    yield {"app": app, "own": own, "other": other}
    context.close()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


_CLIENTS: dict[tuple[str, ...], TestClient] = {}


def logged_in(service: dict[str, Any], username: str, password: str, **headers: str) -> TestClient:
    """One logged-in client per account and headers for the module (each log-in hashes a password)."""
    key = (str(id(service["app"])), username, *sorted(headers.items()))  # type: ignore[arg-type]
    if key not in _CLIENTS or username == LANG_FAMILY[0]:
        _CLIENTS[key] = _log_in(service, username, password, **headers)
    return _CLIENTS[key]


def _log_in(service: dict[str, Any], username: str, password: str, **headers: str) -> TestClient:
    client = TestClient(service["app"], headers=headers)
    token = csrf(client.get("/login").text)
    r = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return client


def post(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    token = csrf(client.get(url.rsplit("/", 1)[0] if url.endswith(("/link", "/revoke")) else url).text)
    return client.post(url, data={**data, "csrf_token": token}, follow_redirects=False)


# --- our child's plan and the call box --------------------------------------------------------------


def test_family_home_shows_roadmap_with_induction_now_and_the_teams_numbers(service) -> None:
    client = logged_in(service, *FAMILY)
    html = client.get(f"/plan/{service['own']}").text
    assert 'aria-current="step"' in html
    now = re.search(r'<li class="step step-now"[^>]*>(.*?)</li>', html, re.S)
    assert now and "induction" in now.group(1).lower()
    assert DAY_PHONE in html and NIGHT_PHONE in html
    assert "38.0 °C (100.4 °F)" in html
    assert "How long will my child stay in the hospital?" in html  # induction's question


def test_teams_fever_threshold_replaces_the_default_on_the_family_page(service, tmp_path) -> None:
    app = service["app"]
    with app.state.allpath.sessions() as session:
        fam = FamilyRecords(session, SYSTEM, load_companion())
        fam.set_call_settings(service["other"], 38.3, ["chickenpox"])
    client = logged_in(service, *OTHER_FAMILY)
    html = client.get(f"/plan/{service['other']}").text
    assert "38.3 °C (100.9 °F)" in html and "chickenpox" in html
    assert "38.0 °C" not in html


# --- the diary ------------------------------------------------------------------------------------


def test_fever_of_38_5_in_induction_shows_the_call_instruction_with_the_number_and_flags_the_patient(service) -> None:
    family = logged_in(service, *FAMILY)
    url = f"/plan/{service['own']}/diary"
    r = post(family, url, {"temperature": "38.5", "unit": "c"})
    assert r.status_code == 201, r.text[:500]
    urgent = re.search(r'<div class="urgent-now".*?</div>', r.text, re.S)
    assert urgent, "no call instruction"
    assert DAY_PHONE in urgent.group(0) and NIGHT_PHONE in urgent.group(0)
    clinician = logged_in(service, *CLINICIAN)
    listing = clinician.get("/clinic/patients").text
    row = re.search(rf"<tr data-patient=\"{service['own']}\">.*?</tr>", listing, re.S)
    assert row and 'data-flag="urgent-diary"' in row.group(0)
    other_row = re.search(rf"<a href=\"/clinic/patients/{service['other']}\">.*?</tr>", listing, re.S)
    assert other_row and "data-flag" not in other_row.group(0)


def test_a_temperature_below_the_threshold_saves_without_the_call_box(service) -> None:
    family = logged_in(service, *FAMILY)
    r = post(family, f"/plan/{service['own']}/diary", {"temperature": "98.6", "unit": "f"})
    assert r.status_code == 201
    assert 'class="urgent-now"' not in r.text


def test_diary_refuses_an_impossible_temperature_naming_the_field(service) -> None:
    family = logged_in(service, *FAMILY)
    r = post(family, f"/plan/{service['own']}/diary", {"temperature": "83", "unit": "c"})
    assert r.status_code == 422
    assert 'id="temperature-error"' in r.text and 'aria-invalid="true"' in r.text
    r = post(family, f"/plan/{service['own']}/diary", {"temperature": "hot", "unit": "c"})
    assert r.status_code == 422 and "temperature-error" in r.text


def test_clinician_marks_urgent_entries_seen_and_the_flag_goes(service) -> None:
    app = service["app"]
    with app.state.allpath.sessions() as session:
        FamilyRecords(session, SYSTEM, load_companion()).add_diary_entry(service["other"], None, {"breathing": 1})
    clinician = logged_in(service, *CLINICIAN)
    page = f"/clinic/patients/{service['other']}/family"
    assert "urgent diary" in clinician.get(page).text
    token = csrf(clinician.get(page).text)
    r = clinician.post(f"{page}/diary-seen", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    listing = clinician.get("/clinic/patients").text
    other_row = re.search(rf"<a href=\"/clinic/patients/{service['other']}\">.*?</tr>", listing, re.S)
    assert other_row and "data-flag" not in other_row.group(0)


def test_clinician_page_draws_the_diary_chart_beside_the_timeline(service) -> None:
    with service["app"].state.allpath.sessions() as session:
        FamilyRecords(session, SYSTEM, load_companion()).add_diary_entry(service["own"], 39.1, {"pain": 2})
    clinician = logged_in(service, *CLINICIAN)
    html = clinician.get(f"/clinic/patients/{service['own']}/family").text
    assert 'class="diary-chart"' in html and 'class="timeline"' in html
    desc = re.search(r'<desc id="dc-desc">(.*?)</desc>', html, re.S)
    assert desc and "39.1 °C; Pain 2/3; URGENT" in desc.group(1)  # the chart says it in words
    assert '<polygon class="dc-urgent"' in html  # urgent drawn as a triangle, not only a colour


# --- the medicine log -------------------------------------------------------------------------------


def _prescribe(client: TestClient, patient: str, start: dt.date) -> None:
    page = f"/clinic/patients/{patient}/family"
    token = csrf(client.get(page).text)
    r = client.post(
        f"{page}/prescriptions",
        data={
            "csrf_token": token, "medicine": "mercaptopurine", "dose_mg": "50", "frequency": "daily",
            "start": start.isoformat(), "anc_per_ul": "1200", "platelets_per_ul": "150000",
            "counts_date": start.isoformat(),
        },
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303, r.text[:800]


def test_thirty_days_with_three_missed_shows_ninety_percent_to_the_clinician_unflagged(service) -> None:
    clinician = logged_in(service, *CLINICIAN)
    start = TODAY - dt.timedelta(days=29)
    _prescribe(clinician, service["own"], start)
    family = logged_in(service, *FAMILY)
    missed = {3, 12, 25}
    week_end = TODAY
    while week_end >= start:
        url = f"/plan/{service['own']}/medicines?week_end={week_end.isoformat()}"
        token = csrf(family.get(url).text)
        data = {"csrf_token": token, "week_end": week_end.isoformat()}
        for back in range(7):
            day = week_end - dt.timedelta(days=back)
            if day >= start:
                data[f"dose:mercaptopurine:{day.isoformat()}"] = "missed" if (day - start).days in missed else "taken"
        r = family.post(f"/plan/{service['own']}/medicines", data=data, follow_redirects=False)
        assert r.status_code == 200, r.text[:800]
        week_end -= dt.timedelta(days=7)
    html = clinician.get(f"/clinic/patients/{service['own']}/family").text
    cell = re.search(r'data-adherence="mercaptopurine-30">([^<]*)', html)
    assert cell and cell.group(1).strip() == "90.0%"
    row = re.search(r'<tr( class="flag")?>\s*<th scope="row">mercaptopurine</th>', html)
    assert row and row.group(1) is None


def test_a_dose_on_a_day_with_nothing_due_is_refused_naming_the_day(service) -> None:
    family = logged_in(service, *OTHER_FAMILY)
    url = f"/plan/{service['other']}/medicines"
    token = csrf(family.get(url).text)
    r = family.post(url, data={"csrf_token": token, f"dose:mercaptopurine:{TODAY.isoformat()}": "taken"})
    assert r.status_code == 422 and "No dose was due" in r.text


def test_bad_contact_phone_is_refused_naming_the_field_and_nothing_is_replaced(service) -> None:
    clinician = logged_in(service, *CLINICIAN)
    page = f"/clinic/patients/{service['own']}/family"
    token = csrf(clinician.get(page).text)
    r = clinician.post(
        f"{page}/contacts",
        data={
            "csrf_token": token,
            "name_0": "X",
            "role_0": "Nurse",
            "day_phone_0": "call me",
            "after_hours_phone_0": "5550100",
        },
    )
    assert r.status_code == 422
    assert 'id="contacts-day_phone_0-error"' in r.text
    assert DAY_PHONE in logged_in(service, *FAMILY).get(f"/plan/{service['own']}").text


def test_family_account_cannot_use_the_clinician_companion_routes(service) -> None:
    family = logged_in(service, *FAMILY)
    page = f"/clinic/patients/{service['own']}/family"
    assert family.get(page).status_code == 403
    token = csrf(family.get(f"/plan/{service['own']}").text)
    r = family.post(f"{page}/settings", data={"csrf_token": token, "fever_celsius": "39"})
    assert r.status_code == 403


# --- the calendar -------------------------------------------------------------------------------------


def test_calendar_feed_parses_and_is_reachable_only_by_the_family_or_a_live_secret_link(service) -> None:
    clinician = logged_in(service, *CLINICIAN)
    page = f"/clinic/patients/{service['own']}/family"
    token = csrf(clinician.get(page).text)
    when = (TODAY + dt.timedelta(days=3)).isoformat() + "T09:30"
    r = clinician.post(
        f"{page}/calendar",
        data={
            "csrf_token": token,
            "kind": "lab",
            "starts_at": when,
            "utc_offset_minutes": "0",
            "minutes": "30",
            "place": "Clinic 2",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:500]
    family = logged_in(service, *FAMILY)
    feed = family.get(f"/plan/{service['own']}/calendar.ics")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(feed.content).walk("VEVENT")
    assert [str(e["summary"]) for e in events] == ["Blood test"]
    assert events[0].decoded("dtstart") == dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)

    assert logged_in(service, *OTHER_FAMILY).get(f"/plan/{service['own']}/calendar.ics").status_code == 404
    anonymous = TestClient(service["app"])
    assert anonymous.get(f"/plan/{service['own']}/calendar.ics", follow_redirects=False).status_code == 303

    token = csrf(family.get(f"/plan/{service['own']}/calendar").text)
    made = family.post(f"/plan/{service['own']}/calendar/link", data={"csrf_token": token})
    link = re.search(r'<code class="secret-link">[^<]*(/calendar/[^<]+\.ics)</code>', made.text)
    assert link
    assert Calendar.from_ical(anonymous.get(link.group(1)).content).walk("VEVENT")
    secret = link.group(1).split("/")[-1].removesuffix(".ics")
    with service["app"].state.allpath.sessions() as session:
        from sqlalchemy import text

        stored = session.execute(text("select token_hash from calendar_links")).scalars().all()
    assert secret not in stored and all(len(h) == 64 for h in stored)

    token = csrf(family.get(f"/plan/{service['own']}/calendar").text)
    family.post(f"/plan/{service['own']}/calendar/revoke", data={"csrf_token": token})
    assert anonymous.get(link.group(1)).status_code == 404
    assert anonymous.get("/calendar/" + "x" * 43 + ".ics").status_code == 404


# --- access -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/diary", "/medicines", "/calendar", "/calendar.ics", "/plan.pdf"])
def test_family_account_gets_404_for_another_childs_pages(service, path: str) -> None:
    client = logged_in(service, *FAMILY)
    assert client.get(f"/plan/{service['other']}{path}").status_code == 404


def test_family_account_cannot_write_another_childs_diary(service) -> None:
    client = logged_in(service, *FAMILY)
    token = csrf(client.get(f"/plan/{service['own']}/diary").text)
    r = client.post(f"/plan/{service['other']}/diary", data={"csrf_token": token, "temperature": "39"})
    assert r.status_code == 404


# --- language ---------------------------------------------------------------------------------------


def test_accept_language_picks_spanish_and_the_account_preference_wins_over_it(service) -> None:
    client = logged_in(service, *LANG_FAMILY, **{"accept-language": "es-MX,es;q=0.9,en;q=0.5"})
    html = client.get(f"/plan/{service['own']}").text
    assert '<html lang="es">' in html and "Llame ya al equipo médico si" in html
    token = csrf(html)
    r = client.post(
        "/language",
        data={"csrf_token": token, "language": "en", "next": f"/plan/{service['own']}"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    client.cookies.clear()  # only the account's preference is left to decide
    client = logged_in(service, *LANG_FAMILY, **{"accept-language": "es"})
    assert '<html lang="en">' in client.get(f"/plan/{service['own']}").text


def test_language_switch_refuses_an_unknown_language_naming_the_field(service) -> None:
    client = TestClient(service["app"])
    token = csrf(client.get("/login").text)
    r = client.post("/language", data={"csrf_token": token, "language": "fr"})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "language"


def test_switch_on_the_login_page_sets_spanish_for_anonymous_visitors(service) -> None:
    client = TestClient(service["app"])
    token = csrf(client.get("/login").text)
    client.post("/language", data={"csrf_token": token, "language": "es", "next": "/login"})
    html = client.get("/login").text
    assert '<html lang="es">' in html and "Entrar" in html


FAMILY_PAGES = ["", "/diary", "/medicines", "/calendar"]
# English words that are not Spanish words: one of them in a Spanish page is English text left over.
ENGLISH_ONLY = set(
    [
        "the",
        "and",
        "you",
        "your",
        "with",
        "what",
        "when",
        "this",
        "that",
        "for",
        "are",
        "is",
        "of",
        "to",
        "will",
        "can",
        "have",
        "be",
        "it",
        "from",
        "they",
        "we",
        "our",
        "which",
        "about",
        "after",
        "before",
        "how",
        "may",
        "should",
        "there",
        "these",
        "their",
        "more",
        "some",
        "treatment",
        "phase",
        "call",
        "chemotherapy",
        "leukemia",
        "cells",
        "blood",
        "doctor",
        "team",
    ]
)


def _drug_words(kb: KnowledgeBase) -> set[str]:
    words: set[str] = set()
    for agent in kb.agents.values():
        for name in (agent.name, *agent.brand_names):
            words |= {w.lower() for w in re.findall(r"[A-Za-z]+", name)}
    return words


@pytest.mark.parametrize("path", FAMILY_PAGES)
def test_spanish_family_page_shows_no_english_but_drug_names(service, path: str) -> None:
    kb = service["app"].state.allpath.kb
    client = logged_in(service, *FAMILY, **{"accept-language": "es"})
    html = client.get(f"/plan/{service['own']}{path}").text
    allowed = _drug_words(kb) | {"english", "utc", "pdf", "all"}
    leftovers = [
        block for block in visible_text(html, None)
        if {w.lower() for w in re.findall(r"[A-Za-z]+", block)} & (ENGLISH_ONLY - allowed)
    ]  # fmt: skip
    assert not leftovers, leftovers[:5]


def test_english_check_finds_english_text(service) -> None:
    client = logged_in(service, *FAMILY, **{"accept-language": "en"})
    html = client.get(f"/plan/{service['own']}/diary").text
    assert any({w.lower() for w in re.findall(r"[A-Za-z]+", b)} & ENGLISH_ONLY for b in visible_text(html, None))


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("path", FAMILY_PAGES)
def test_family_pages_read_easily_in_each_language(service, request, path: str, lang: str) -> None:
    client = logged_in(service, *FAMILY, **{"accept-language": lang})
    html = client.get(f"/plan/{service['own']}{path}").text
    score = page_readability(html, lang)
    if lang == "es":
        assert score >= 70, f"Fernández-Huerta {score:.1f} on {path or '/'}"
    else:
        assert score <= 8, f"Flesch-Kincaid grade {score:.1f} on {path or '/'}"


def test_spanish_pdf_is_rendered_from_the_spanish_page(service) -> None:
    client = logged_in(service, *FAMILY, **{"accept-language": "es"})
    r = client.get(f"/plan/{service['own']}/plan.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert "nuestro-plan.pdf" in r.headers["content-disposition"]


def test_every_interface_string_has_a_spanish_translation() -> None:
    from importlib import resources

    from babel.messages.pofile import read_po

    po = resources.files("allpath.web") / "locale" / "es" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert not untranslated
    assert len([m for m in catalog if m.id]) > 100


@pytest.mark.parametrize(
    ("form", "data", "field"),
    [
        ("settings", {"fever_celsius": "40.5"}, "fever_celsius"),
        ("settings", {"fever_celsius": "warm"}, "fever_celsius"),
        ("prescriptions", {"medicine": "mercaptopurine", "dose_mg": "", "frequency": "daily"}, "dose_mg"),
        ("calendar", {"kind": "visit", "starts_at": "tomorrow", "minutes": "30", "place": "Clinic"}, "starts_at"),
    ],
)
def test_team_form_errors_name_the_field_and_save_nothing(service, form: str, data: dict, field: str) -> None:
    clinician = logged_in(service, *CLINICIAN)
    page = f"/clinic/patients/{service['other']}/family"
    before = clinician.get(page).text
    r = clinician.post(f"{page}/{form}", data={**data, "csrf_token": csrf(before)}, follow_redirects=False)
    assert r.status_code == 422
    assert f'id="{form}-{field}-error"' in r.text and f'href="#{form}-{field}"' in r.text

    def saved(html: str) -> list[str]:  # what the three forms have stored, as the page lists it
        lists = re.findall(r'<section aria-labelledby="(?:rx|cal)-h">(.*?)<form', html, re.S)
        return [*lists, *re.findall(r'id="settings-fever_celsius"[^>]*value="([^"]*)"', html)]

    assert len(saved(before)) == 3
    assert saved(clinician.get(page).text) == saved(before)


def test_knowledge_page_searches_in_spanish_for_a_spanish_reader(service) -> None:
    client = TestClient(service["app"], headers={"accept-language": "es"})
    html = client.get("/learn", params={"q": "fiebre"}).text
    assert '<html lang="es">' in html and "Resultados para" in html
    assert re.search(r'<ol class="results">\s*<li>', html), "no hit for 'fiebre'"


def test_calendar_link_secret_is_redacted_from_the_access_log(service) -> None:
    import logging

    logger = logging.getLogger("uvicorn.access")
    record = logger.makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/calendar/s3cretTOKENvalue123456.ics", "1.1", 200), None,
    )  # fmt: skip
    assert logger.filters, "create_app did not install the filter"
    for f in logger.filters:
        f.filter(record)
    assert "s3cret" not in record.getMessage() and "/calendar/***.ics" in record.getMessage()
