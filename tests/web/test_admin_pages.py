"""The administrator's pages and the own-password page, through the test client."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from allpath.api import create_app
from allpath.store.auth import create_user
from allpath.store.service import SYSTEM, Records

ADMIN = ("pages-admin", "admin-password-123")
CLINICIAN = ("pages-clinic", "clinician-password-1")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = Path(tmp_path_factory.mktemp("admin")) / "t.db"
    app = create_app(database_url=f"sqlite:///{db}")
    context = app.state.allpath
    with context.sessions() as session:
        pid = Records(session, SYSTEM).create_patient(dt.date(2012, 1, 1), "Linked Admintest (fake)").id
        create_user(session, *ADMIN, "admin")
        create_user(session, *CLINICIAN, "clinician")
    yield {"app": app, "patient": pid}
    context.close()


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def logged_in(service: dict[str, Any], username: str, password: str) -> TestClient:
    client = TestClient(service["app"])
    r = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf(client.get("/login").text)}
    )
    assert r.status_code == 200 and "Log out" in r.text, r.text[:300]
    return client


def user_id(client: TestClient, username: str) -> str:
    page = client.get("/admin/users").text
    match = re.search(rf'<tr data-user="{re.escape(username)}">.*?/admin/users/(\d+)"', page, re.S)
    assert match, username
    return match.group(1)


def test_admin_creates_a_family_account_linked_to_a_patient_and_it_can_log_in(service) -> None:
    admin = logged_in(service, *ADMIN)
    page = admin.get("/admin/users").text
    r = admin.post(
        "/admin/users",
        data={
            "username": "family-linked",
            "password": "family-linked-pass-7",
            "role": "patient",
            "patient_id": service["patient"],
            "csrf_token": csrf(page),
        },
    )
    assert r.status_code == 200 and "Account created." in r.text
    assert f'<a href="/clinic/patients/{service["patient"]}">{service["patient"]}</a>' in r.text
    family = logged_in(service, "family-linked", "family-linked-pass-7")
    assert family.get("/my-plan", follow_redirects=False).headers["location"] == f"/plan/{service['patient']}"


def test_a_patient_account_without_a_patient_is_refused_at_its_field(service) -> None:
    admin = logged_in(service, *ADMIN)
    page = admin.get("/admin/users").text
    r = admin.post(
        "/admin/users",
        data={
            "username": "family-unlinked",
            "password": "family-unlinked-9x",
            "role": "patient",
            "csrf_token": csrf(page),
        },
    )
    assert r.status_code == 422
    assert '<a href="#new-patient_id">Linked patient is required for a patient account.</a>' in r.text


def test_admin_resets_a_password_changes_a_role_and_deactivates(service) -> None:
    admin = logged_in(service, *ADMIN)
    page = admin.get("/admin/users").text
    admin.post(
        "/admin/users",
        data={"username": "to-change", "password": "first-password-42", "role": "clinician", "csrf_token": csrf(page)},
    )
    target = user_id(admin, "to-change")
    victim = logged_in(service, "to-change", "first-password-42")
    form = admin.get(f"/admin/users/{target}").text
    r = admin.post(
        f"/admin/users/{target}",
        data={"action": "reset", "new_password": "second-password-42", "csrf_token": csrf(form)},
    )
    assert r.status_code == 200 and "Account changed." in r.text
    # The reset ended the account's sessions; the new password works.
    assert victim.get("/clinic/patients", follow_redirects=False).status_code == 303
    logged_in(service, "to-change", "second-password-42")
    r = admin.post(f"/admin/users/{target}", data={"action": "update", "role": "admin", "csrf_token": csrf(form)})
    assert "Administrator" in admin.get(f"/admin/users/{target}").text
    r = admin.post(f"/admin/users/{target}", data={"action": "deactivate", "csrf_token": csrf(form)})
    assert 'id="account-state">Deactivated' in admin.get(f"/admin/users/{target}").text


def test_audit_trail_filters_by_actor_and_outcome(service) -> None:
    admin = logged_in(service, *ADMIN)
    clinician = logged_in(service, *CLINICIAN)
    assert clinician.get("/admin/users").status_code == 403
    clinician.get(f"/clinic/patients/{service['patient']}")
    page = admin.get("/admin/audit", params={"by": CLINICIAN[0], "action": "plan"}).text
    rows = re.findall(r'<td data-label="By">([^<]*)</td><td data-label="Action">([^<]*)</td>', page)
    assert rows and all(by == CLINICIAN[0] and action.startswith("plan.") for by, action in rows)
    bad = admin.get("/admin/audit", params={"patient_id": "not-an-id"})
    assert bad.status_code == 422 and 'href="#patient_id"' in bad.text


def test_admin_pages_are_for_admins_only(service) -> None:
    clinician = logged_in(service, *CLINICIAN)
    for path in ("/admin/users", "/admin/audit", "/admin/users/1"):
        assert clinician.get(path).status_code == 403, path
    assert TestClient(service["app"]).get("/admin/users", follow_redirects=False).status_code == 303


def test_own_password_change_needs_the_current_one_and_matching_new_ones(service) -> None:
    admin = logged_in(service, *ADMIN)
    page = admin.get("/admin/users").text
    admin.post(
        "/admin/users",
        data={"username": "own-pw", "password": "own-password-1a", "role": "clinician", "csrf_token": csrf(page)},
    )
    me = logged_in(service, "own-pw", "own-password-1a")
    form = me.get("/account/password").text
    r = me.post(
        "/account/password",
        data={
            "current_password": "wrong",
            "new_password": "own-password-2b",
            "confirm_password": "own-password-2b",
            "csrf_token": csrf(form),
        },
    )
    assert r.status_code == 422 and '<a href="#current_password">Current password is not right.</a>' in r.text
    r = me.post(
        "/account/password",
        data={
            "current_password": "own-password-1a",
            "new_password": "own-password-2b",
            "confirm_password": "other",
            "csrf_token": csrf(form),
        },
    )
    assert r.status_code == 422 and "The two new passwords are not the same." in r.text
    r = me.post(
        "/account/password",
        data={
            "current_password": "own-password-1a",
            "new_password": "own-password-2b",
            "confirm_password": "own-password-2b",
            "csrf_token": csrf(form),
        },
    )
    assert r.status_code == 200 and "Your password is changed." in r.text
    assert me.get("/clinic/patients").status_code == 200  # this session stays
    logged_in(service, "own-pw", "own-password-2b")
