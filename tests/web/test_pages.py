"""The pages through FastAPI's test client: access, CSRF, errors by field, the no-plan-yet case."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from allpath.api import create_app
from allpath.explain.labels import CATEGORY_LABELS, STRENGTH_LABELS
from allpath.store.auth import create_user
from allpath.store.service import SYSTEM, Records

CLINICIAN = ("page-clinician", "clinician-password-1")
FAMILY = ("page-family", "family-password-1")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = Path(tmp_path_factory.mktemp("pages")) / "t.db"
    app = create_app(database_url=f"sqlite:///{db}")
    context = app.state.allpath
    with context.sessions() as session:
        records = Records(session, SYSTEM)
        own = records.create_patient(dt.date(2010, 1, 1), "Own Pagetest (fake)").id
        other = records.create_patient(dt.date(2011, 1, 1), "Other Pagetest (fake)").id
        records.append_event(other, {"type": "diagnosed", "date": "2026-01-05", "lineage": "T"})
        create_user(session, *CLINICIAN, "clinician")
        create_user(session, *FAMILY, "patient", own)
    yield {"app": app, "own": own, "other": other}
    context.close()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def logged_in(service: dict[str, Any], username: str, password: str, next_: str = "") -> TestClient:
    client = TestClient(service["app"])
    token = csrf(client.get("/login").text)
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    client.headers["x-test-location"] = r.headers["location"]
    return client


def test_login_form_post_without_csrf_token_is_rejected(service) -> None:
    client = TestClient(service["app"])
    client.get("/login")
    r = client.post("/login", data={"username": CLINICIAN[0], "password": CLINICIAN[1]}, follow_redirects=False)
    assert r.status_code == 403
    assert "allpath_session" not in r.cookies


def test_event_post_without_csrf_token_is_rejected_and_saves_nothing(service) -> None:
    client = logged_in(service, *CLINICIAN)
    url = f"/clinic/patients/{service['own']}"
    r = client.post(f"{url}/events", data={"type": "diagnosed", "date": "2026-02-01"}, follow_redirects=False)
    assert r.status_code == 403
    assert "No diagnosis recorded" in client.get(url).text


def test_login_never_redirects_off_site(service) -> None:
    client = logged_in(service, *CLINICIAN, next_="//evil.example/x")
    assert client.headers["x-test-location"] == "/clinic/patients"


def test_unauthenticated_pages_redirect_to_login(service) -> None:
    client = TestClient(service["app"])
    for path in ("/clinic/patients", f"/plan/{service['own']}", f"/plan/{service['own']}/plan.pdf", "/my-plan"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path


def test_patient_account_gets_404_for_another_patients_plan(service) -> None:
    client = logged_in(service, *FAMILY)
    assert client.get(f"/plan/{service['other']}").status_code == 404
    assert client.get(f"/plan/{service['other']}/plan.pdf").status_code == 404
    assert client.get(f"/clinic/patients/{service['other']}").status_code == 403


def test_undiagnosed_patient_sees_no_plan_yet(service) -> None:
    client = logged_in(service, *FAMILY)
    r = client.get("/my-plan")
    assert r.status_code == 200
    assert "There is no plan here yet." in r.text
    assert "Download as PDF" not in r.text


def test_event_form_errors_name_the_field(service) -> None:
    client = logged_in(service, *CLINICIAN)
    url = f"/clinic/patients/{service['other']}"
    token = csrf(client.get(url).text)
    r = client.post(
        f"{url}/events", data={"type": "phase_started", "date": "not-a-date", "phase": "", "csrf_token": token}
    )
    assert r.status_code == 422
    assert 'id="ev-date-error">Date must be a date as YYYY-MM-DD.<' in r.text
    assert 'id="ev-phase-error">Phase is required.<' in r.text
    assert 'aria-invalid="true"' in r.text


def test_new_patient_form_rejects_a_future_birth_date(service) -> None:
    client = logged_in(service, *CLINICIAN)
    token = csrf(client.get("/clinic/patients/new").text)
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    r = client.post("/clinic/patients/new", data={"birth_date": future, "csrf_token": token})
    assert r.status_code == 422
    assert 'id="birth_date-error">Birth date must not be in the future.<' in r.text


def test_static_serves_only_its_own_files(service) -> None:
    client = TestClient(service["app"])
    assert client.get("/static/allpath.css").status_code == 200
    assert client.get("/static/..%2Fpyproject.toml").status_code == 404
    assert client.get("/static/routes.py").status_code == 404


def test_pages_name_no_remote_asset(service) -> None:
    client = logged_in(service, *CLINICIAN)
    for path in ("/clinic/patients", f"/clinic/patients/{service['other']}", "/learn?q=hair+loss"):
        html = client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path


def test_every_demo_patient_renders_on_every_page(tmp_path: Path) -> None:
    from allpath.store.demo import seed_demo
    from allpath.web.family import reading_grade

    app = create_app(database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    context = app.state.allpath
    try:
        with context.sessions() as session:
            seeded = seed_demo(session)
        _role, password, _ = seeded.logins["demo-clinician"]
        client = logged_in({"app": app}, "demo-clinician", password)
        listing = client.get("/clinic/patients")
        assert listing.status_code == 200
        badges: set[str] = set()
        assert len(seeded.patients) >= 6
        for key, patient_id in seeded.patients.items():
            assert patient_id in listing.text, key
            page = client.get(f"/clinic/patients/{patient_id}")
            assert page.status_code == 200, key
            assert "<svg" in page.text and 'role="img"' in page.text, key
            badges.update(re.findall(r'<span class="badge[^"]*">([^<]*)</span>', page.text))
            family = client.get(f"/plan/{patient_id}")
            assert family.status_code == 200, key
            if "There is no plan here yet." not in family.text:
                assert reading_grade(family.text) <= 8.0, key
        # Categories and strengths show the shared display words, never the raw ids.
        assert set(CATEGORY_LABELS.values()) & badges and set(STRENGTH_LABELS.values()) & badges, badges
        raw_ids = {k for labels in (CATEGORY_LABELS, STRENGTH_LABELS) for k, v in labels.items() if k != v}
        assert not raw_ids & badges, badges
        pdf = client.get(f"/plan/{next(iter(seeded.patients.values()))}/plan.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    finally:
        context.close()


def _diagnosed_patient(service: dict[str, Any], ph_status: str) -> str:
    with service["app"].state.allpath.sessions() as session:
        records = Records(session, SYSTEM)
        pid = records.create_patient(dt.date(2012, 1, 1), "V2 Pagetest (fake)").id
        records.append_event(pid, {"type": "diagnosed", "date": "2026-01-05", "lineage": "B", "ph_status": ph_status})
    return pid


def test_v2_event_forms_record_findings_fitness_and_markers(service) -> None:
    pid = _diagnosed_patient(service, "unknown")
    client = logged_in(service, *CLINICIAN)
    url = f"/clinic/patients/{pid}"
    posts = [
        {"type": "genetics_result", "findings": "bcr-abl1"},
        {"type": "fitness_assessed", "fit": "false"},
        {"type": "immunophenotype", "cd19": "positive", "cd20": "", "cd22": "negative"},
        {"type": "therapy_given", "therapy": "tki"},
        {"type": "pregnancy_status", "pregnant": "false"},
    ]
    for post in posts:
        token = csrf(client.get(url).text)
        r = client.post(
            f"{url}/events", data={**post, "date": "2026-01-08", "csrf_token": token}, follow_redirects=False
        )
        assert r.status_code == 303, (post, r.text)
    page = client.get(url).text
    for label in (
        "Genetic finding (BCR::ABL1 (Philadelphia))",
        "Not fit for intensive chemotherapy",
        "Immunophenotype (CD19 positive, CD22 negative)",
        "Tyrosine kinase inhibitor given",
        "Not pregnant",
    ):
        assert label in page, label


def test_genetic_finding_contradicting_the_diagnosis_is_refused_at_its_field(service) -> None:
    pid = _diagnosed_patient(service, "negative")
    client = logged_in(service, *CLINICIAN)
    url = f"/clinic/patients/{pid}"
    token = csrf(client.get(url).text)
    data = {"type": "genetics_result", "findings": "bcr-abl1", "date": "2026-01-08", "csrf_token": token}
    r = client.post(f"{url}/events", data=data)
    assert r.status_code == 422
    assert 'id="ev-findings-error">' in r.text and "contradicts ph_status negative" in r.text


def test_immunophenotype_form_with_no_marker_is_refused(service) -> None:
    pid = _diagnosed_patient(service, "unknown")
    client = logged_in(service, *CLINICIAN)
    url = f"/clinic/patients/{pid}"
    token = csrf(client.get(url).text)
    data = {"type": "immunophenotype", "cd19": "", "cd20": "", "cd22": "", "date": "2026-01-08", "csrf_token": token}
    r = client.post(f"{url}/events", data=data)
    assert r.status_code == 422
    assert "at least one of cd19, cd20, cd22" in r.text


def test_clinician_page_lists_what_would_sharpen_the_plan_with_labels_and_options(service) -> None:
    # The "other" patient was diagnosed without a Philadelphia chromosome result.
    html = logged_in(service, *CLINICIAN).get(f"/clinic/patients/{service['other']}").text
    start = html.index('<section class="sharpen"')
    box = html[start : html.index("</section>", start)]
    assert '<h3 id="sharpen-h">What would sharpen this plan</h3>' in box
    assert '<li data-fact="ph_status"><strong>Philadelphia chromosome (BCR-ABL1) status</strong>' in box
    # The TKI option by age (tki-ph-positive for adults, tki-ph-positive-child for children).
    assert 'data-affects="tki-ph-positive' in box
    assert 'data-fact="lineage"' not in box


def test_family_page_has_no_sharpen_box(service) -> None:
    # Family texts must exist in English and Spanish first; until then the box is the clinician's.
    html = logged_in(service, *CLINICIAN).get(f"/plan/{service['other']}").text
    assert 'id="plan"' in html
    assert "sharpen" not in html.lower()


def test_clinician_page_has_no_sharpen_box_when_nothing_is_missing(service, monkeypatch) -> None:
    from allpath.web import routes

    real = routes._plan_for
    monkeypatch.setattr(
        routes, "_plan_for", lambda ctx, course: real(ctx, course).model_copy(update={"missing_facts": []})
    )
    html = logged_in(service, *CLINICIAN).get(f"/clinic/patients/{service['other']}").text
    assert 'id="plan-section"' in html and "data-rule=" in html
    assert "What would sharpen" not in html
