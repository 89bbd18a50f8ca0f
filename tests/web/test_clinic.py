"""The clinician pages through FastAPI's test client: Record event by state, corrections,
retractions, death, the grouped plan, the what-if, the patient list and the error pages."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from allpath.api import create_app
from allpath.course.events import parse_event
from allpath.course.state import replay
from allpath.engine import recommend
from allpath.facts import PatientFacts
from allpath.knowledge import load_kb
from allpath.store.auth import create_user
from allpath.store.service import SYSTEM, Records
from allpath.web.forms import forms_for_state
from allpath.web.listing import PAGE_SIZE
from allpath.web.planview import compare_plans, plan_view

CLINICIAN = ("clinic-clinician", "clinician-password-1")
TODAY = dt.date.today()


def ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = Path(tmp_path_factory.mktemp("clinic")) / "t.db"
    app = create_app(database_url=f"sqlite:///{db}")
    context = app.state.allpath
    with context.sessions() as session:
        records = Records(session, SYSTEM)
        relapsed = records.create_patient(dt.date(2010, 1, 1), "Relapsed Clinictest (fake)").id
        for event in (
            {"type": "diagnosed", "date": ago(400), "lineage": "B", "ph_status": "negative"},
            {"type": "phase_started", "date": ago(399), "phase": "induction"},
            {"type": "remission_achieved", "date": ago(370)},
            {"type": "relapsed", "date": ago(60), "site": "marrow"},
            {"type": "immunophenotype", "date": ago(59), "cd19": "positive"},
        ):
            records.append_event(relapsed, event)
        # Enough fresh patients for three pages of the list.
        for i in range(2 * PAGE_SIZE + 3):
            records.create_patient(dt.date(2000 + i % 20, 1, 1), f"Listed {i:02d} (fake)")
        create_user(session, *CLINICIAN, "clinician")
    client = TestClient(app)
    token = csrf(client.get("/login").text)
    r = client.post("/login", data={"username": CLINICIAN[0], "password": CLINICIAN[1], "csrf_token": token})
    assert r.status_code == 200, r.text
    yield {"app": app, "client": client, "relapsed": relapsed}
    context.close()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def new_patient(service: dict[str, Any], *events: dict[str, Any]) -> str:
    with service["app"].state.allpath.sessions() as session:
        records = Records(session, SYSTEM)
        pid = records.create_patient(dt.date(2012, 6, 1), "Clinictest (fake)").id
        for event in events:
            records.append_event(pid, event)
    return pid


def version(html: str) -> str:
    match = re.search(r'name="expected_version" value="(\d+)"', html)
    assert match, "form has no expected_version"
    return match.group(1)


def post_event(client: TestClient, pid: str, data: dict[str, str]) -> Any:
    token = csrf(client.get(f"/clinic/patients/{pid}/record?type={data['type']}").text)
    return client.post(f"/clinic/patients/{pid}/events", data={**data, "csrf_token": token}, follow_redirects=False)


# --- which events the page offers --------------------------------------------------------------


def offered(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    state = replay([parse_event({**e, "id": f"e{i}"}) for i, e in enumerate(events)])
    return {f.type: [v for v, _ in f.fields[0].options] if f.fields else [] for f in forms_for_state(state, TODAY)}


def test_only_a_diagnosis_can_open_a_record() -> None:
    assert list(offered([])) == ["diagnosed"]


def test_after_diagnosis_only_induction_can_start_and_nothing_can_complete() -> None:
    got = offered([{"type": "diagnosed", "date": ago(10)}])
    assert got["phase_started"] == ["induction"]
    assert "phase_completed" not in got and "remission_achieved" not in got and "diagnosed" not in got


def test_induction_completes_only_after_a_remission() -> None:
    start = [{"type": "diagnosed", "date": ago(10)}, {"type": "phase_started", "date": ago(9), "phase": "induction"}]
    assert "phase_completed" not in offered(start)
    after = offered([*start, {"type": "remission_achieved", "date": ago(5)}])
    assert after["phase_completed"] == ["induction"] and "relapsed" in after


def test_nothing_is_offered_after_death() -> None:
    assert offered([{"type": "diagnosed", "date": ago(10)}, {"type": "died", "date": ago(1)}]) == {}


# --- recording, correcting, retracting ---------------------------------------------------------


def test_a_refused_event_lists_its_error_at_the_top_linked_to_the_field(service) -> None:
    pid = new_patient(service, {"type": "diagnosed", "date": ago(10)})
    r = post_event(service["client"], pid, {"type": "phase_started", "date": "not-a-date", "phase": "induction"})
    assert r.status_code == 422
    summary = r.text[r.text.index('id="error-summary"') :]
    assert "autofocus" in r.text[r.text.index('class="error-summary"') - 200 : r.text.index('id="error-summary"')]
    assert '<a href="#ev-date">Date must be a date as YYYY-MM-DD.</a>' in summary
    assert 'id="ev-date" name="date"' in r.text


def test_a_correction_replaces_the_entry_and_the_history_keeps_both(service) -> None:
    client = service["client"]
    pid = new_patient(service, {"type": "diagnosed", "date": ago(10), "lineage": "T"})
    diagnosis = re.search(r'\?correct=(E[0-9A-Za-z_-]+|[A-Za-z0-9_-]+)"', client.get(f"/clinic/patients/{pid}").text)
    assert diagnosis
    form = client.get(f"/clinic/patients/{pid}/record?correct={diagnosis.group(1)}").text
    assert '<option value="T" selected>' in form and f'name="supersedes" value="{diagnosis.group(1)}"' in form
    r = post_event(
        client,
        pid,
        {
            "type": "diagnosed",
            "date": ago(10),
            "lineage": "B",
            "ph_status": "unknown",
            "supersedes": diagnosis.group(1),
        },
    )
    assert r.status_code == 303, r.text
    page = client.get(f"/clinic/patients/{pid}").text
    assert "Diagnosed (T-cell" in page and "Diagnosed (B-cell" in page
    assert "Corrected by a later entry" in page and f"Corrects the entry of {ago(10)}" in page


def test_retracting_an_entry_keeps_it_marked_and_the_plan_drops_it(service) -> None:
    client = service["client"]
    pid = new_patient(
        service,
        {"type": "diagnosed", "date": ago(20), "lineage": "B"},
        {"type": "fitness_assessed", "date": ago(19), "fit": False},
    )
    page = client.get(f"/clinic/patients/{pid}").text
    target = re.findall(r'/events/([A-Za-z0-9_-]+)/retract"', page)[0]  # newest first: the fitness entry
    confirm = client.get(f"/clinic/patients/{pid}/events/{target}/retract").text
    assert "Not fit for intensive chemotherapy" in confirm
    r = client.post(
        f"/clinic/patients/{pid}/events/{target}/retract",
        data={"csrf_token": csrf(confirm), "expected_version": version(confirm)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get(f"/clinic/patients/{pid}").text
    assert "Retracted (entered in error)" in page and "Withdraws “Not fit for intensive chemotherapy”" in page
    assert f"/events/{target}/retract" not in page


def test_a_stale_retraction_is_a_conflict_and_saves_nothing(service) -> None:
    client = service["client"]
    pid = new_patient(service, {"type": "diagnosed", "date": ago(20)})
    page = client.get(f"/clinic/patients/{pid}").text
    target = re.findall(r'/events/([A-Za-z0-9_-]+)/retract"', page)[0]
    confirm = client.get(f"/clinic/patients/{pid}/events/{target}/retract").text
    r = client.post(
        f"/clinic/patients/{pid}/events/{target}/retract",
        data={"csrf_token": csrf(confirm), "expected_version": "0"},
    )
    assert r.status_code == 409 and "Someone else changed this record" in r.text
    assert "Retracted (entered in error)" not in client.get(f"/clinic/patients/{pid}").text


def test_a_death_is_recorded_and_then_nothing_more_is_offered(service) -> None:
    client = service["client"]
    pid = new_patient(service, {"type": "diagnosed", "date": ago(20)})
    assert post_event(client, pid, {"type": "died", "date": ago(1)}).status_code == 303
    page = client.get(f"/clinic/patients/{pid}").text
    assert f'id="course-status">Deceased ({ago(1)})' in page
    assert 'id="record-type"' not in page and "Nothing more can be recorded" in page


# --- the plan ----------------------------------------------------------------------------------


def test_plan_view_groups_by_strength_numbers_each_source_once_and_lists_each_medicine_once() -> None:
    kb = load_kb()
    plan = recommend(
        PatientFacts(age_years=17, lineage="B", disease_status="relapsed", relapse_count=1, remission_count=1)
    )
    view = plan_view(plan, kb)
    strengths = {key: {r.strength for r in recs} for key, _, recs in view.groups}
    assert strengths["now"] <= {"standard", "recommended"} and strengths.get("consider", {"consider"}) == {"consider"}
    assert sum(len(recs) for _, _, recs in view.groups) == len(plan.recommendations)
    keys = [(s.source_id, s.section) for s in view.sources]
    assert len(keys) == len(set(keys)) and [s.number for s in view.sources] == list(range(1, len(keys) + 1))
    agents = [m.agent.id for m in view.medicines]
    assert len(agents) == len(set(agents)) == len({a.id for r in plan.recommendations for a in r.agents})


def test_patient_page_shows_no_internal_words(service) -> None:
    page = service["client"].get(f"/clinic/patients/{service['relapsed']}").text
    for leaked in ("Record version", "Plan phase now", ">None<", "as_of"):
        assert leaked not in page, leaked
    assert '<h3 id="group-now">What to do now' in page and 'id="sources"' in page


# --- what-if -----------------------------------------------------------------------------------


def test_compare_names_the_rule_and_the_changed_fact_for_a_leaving_option() -> None:
    kb = load_kb()
    base = {"age_years": 17, "lineage": "B", "disease_status": "relapsed", "relapse_count": 1, "remission_count": 1}
    before = recommend(PatientFacts(**base, cd19_status="positive"))
    after = recommend(PatientFacts(**base, cd19_status="negative"))
    changes = {c.rule_id: c for c in compare_plans(kb, before, after)}
    blin = changes["blinatumomab-r-r-b-all"]
    assert blin.kind == "leaves" and "cd19_status" in blin.condition and blin.facts == ["CD19 on the leukemia cells"]


def test_what_if_page_shows_changes_and_saves_nothing(service) -> None:
    client = service["client"]
    url = f"/clinic/patients/{service['relapsed']}"
    form = client.get(f"{url}/what-if").text
    # What a browser would send: each select's chosen option (the first when none is marked), each number.
    fields = {}
    for select in re.finditer(r'<select id="wi-(\w+)".*?</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', select.group(0))
        fields[select.group(1)] = chosen.group(1) if chosen else ""
    numbers = dict(re.findall(r'<input id="wi-(\w+)" name="\w+" type="number"[^>]*value="([^"]*)"', form))
    query = {**fields, **numbers, "cd19_status": "negative", "try": "1"}
    r = client.get(f"{url}/what-if", params=query)
    assert r.status_code == 200
    assert re.search(r'data-change="leaves" data-rule="blinatumomab-r-r-b-all"', r.text)
    assert 'data-rule="blinatumomab-r-r-b-all"' in client.get(url).text


def test_what_if_with_a_bad_value_names_the_field(service) -> None:
    r = service["client"].get(
        f"/clinic/patients/{service['relapsed']}/what-if",
        params={"try": "1", "age_years": "old", "disease_status": "relapsed"},
    )
    assert r.status_code == 422
    assert '<a href="#wi-age_years">Age must be a number.</a>' in r.text


# --- the patient list --------------------------------------------------------------------------


def test_patient_list_pages_and_counts(service) -> None:
    client = service["client"]
    first = client.get("/clinic/patients", params={"q": "Listed", "sort": "name"}).text
    assert f"{2 * PAGE_SIZE + 3} patients, page 1 of 3." in first
    assert first.count("<tr data-patient=") == PAGE_SIZE and "Listed 00 (fake)" in first
    last = client.get("/clinic/patients", params={"q": "Listed", "sort": "name", "page": "3"}).text
    assert last.count("<tr data-patient=") == 3 and "Listed 52 (fake)" in last and 'rel="prev"' in last


def test_patient_list_filters_by_status_and_flag_and_shows_age_and_diagnosis(service) -> None:
    client = service["client"]
    page = client.get("/clinic/patients", params={"status": "relapsed"}).text
    assert "Relapsed Clinictest (fake)" in page and "Listed 00" not in page
    flagged = client.get("/clinic/patients", params={"flag": "relapsed"}).text
    assert "Relapsed Clinictest (fake)" in flagged and 'class="badge flag-relapsed">Relapsed<' in flagged
    assert f">{ago(400)}<" in flagged and "years<" in flagged


def test_patient_list_search_matches_the_id(service) -> None:
    pid = service["relapsed"]
    page = service["client"].get("/clinic/patients", params={"q": pid.lower()}).text
    assert "1 patient." in page and pid in page


# --- error pages -------------------------------------------------------------------------------


def test_unknown_path_is_an_html_page_for_a_browser_and_json_for_an_api_client(service) -> None:
    client = TestClient(service["app"])
    page = client.get("/admin/nothing-here", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in page.text
    api = client.get("/admin/nothing-here", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"error": "Not Found", "details": []}


# --- the clinician PDF ---------------------------------------------------------------------------


def test_clinician_pdf_has_header_footer_and_page_numbers_on_every_page_and_is_tagged_pdf_ua(service) -> None:
    import io

    pypdf = pytest.importorskip("pypdf")
    r = service["client"].get(f"/clinic/patients/{service['relapsed']}/plan.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(r.content))
    pages = [p.extract_text() for p in reader.pages]
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert "allpath · Treatment plan · Relapsed Clinictest (fake) · as of" in text, number
        assert f"Page {number} of {len(pages)}" in text, number
        assert "Knowledge base@" in text and "Care team:" in text, number
    # The first page carries the plan itself, not only a title.
    assert "What to do now" in pages[0]
    # Each source (and section) is listed once: as many entries as the plan cites distinct ones.
    context = service["app"].state.allpath
    with context.sessions() as session:
        facts = Records(session, SYSTEM).facts(service["relapsed"])
    plan = context.recommender.recommend(facts)
    distinct = {
        (c.source_id, c.section)
        for item in [*plan.recommendations, *plan.alerts, *plan.not_recommended]
        for c in item.citations
    }
    text = "\n".join(pages)
    assert text[text.rindex("Sources") :].count("Section:") == len(distinct)
    root = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"]) and "/StructTreeRoot" in root and root["/Lang"] == "en"
    xmp = root["/Metadata"].get_object().get_data().decode("utf-8")
    assert 'pdfuaid:part="1"' in xmp or "<pdfuaid:part>1</pdfuaid:part>" in xmp


def test_service_docs_list_every_form_value_with_the_label_the_form_shows() -> None:
    from allpath.web.forms import EVENT_FORMS

    doc = (Path(__file__).parents[2] / "docs" / "service.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Event vocabulary") :]
    for form in EVENT_FORMS:
        for field in form.fields:
            row = next(
                (
                    line
                    for line in table.splitlines()
                    if line.startswith(f"| `{form.type}` |") and f"| `{field.name}` |" in line
                ),
                "",
            )
            assert row, (form.type, field.name)
            for value, label in field.options:
                if value:
                    assert f"`{value}`: {label}" in row, (form.type, field.name, value)
