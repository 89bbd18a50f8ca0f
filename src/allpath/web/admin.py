"""The administrator's pages (accounts, family links, the audit trail) and everyone's own
password page. Access checks and auditing live in the store (`store.auth`, `list_audit`); the
pages only render and turn refusals into errors named by field."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from allpath.http.cookies import SESSION_COOKIE
from allpath.http.deps import SessionDep
from allpath.store.auth import (
    UserRecord,
    change_password,
    create_user,
    list_users,
    set_user_active,
    update_user,
)
from allpath.store.service import ROLES, NotFoundError, StoreError, list_audit
from allpath.web.routes import PageInsteadError, _error, _page, signed_in_user

ROLE_LABELS = {"clinician": "Clinician", "admin": "Administrator", "patient": "Patient or family"}
OUTCOMES = ("ok", "denied")
FIELD_LABELS = {
    "username": "User name",
    "password": "Password",
    "role": "Role",
    "patient_id": "Linked patient",
    "new_password": "New password",
    "current_password": "Current password",
    "active": "Active",
}


async def admin_user(request: Request, session: SessionDep) -> UserRecord:
    user = await signed_in_user(request, session)
    if user.role != "admin":
        raise PageInsteadError(_error(request, user, 403, "Not for this account", "This page is for administrators."))
    return user


AdminUser = Annotated[UserRecord, Depends(admin_user)]
SignedIn = Annotated[UserRecord, Depends(signed_in_user)]


def _errors(exc: StoreError) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in exc.problems:
        name = p.field if p.field in FIELD_LABELS else "_form"
        text = f"{FIELD_LABELS[name]} {p.problem}" if name != "_form" else p.problem
        out.setdefault(name, text[0].upper() + text[1:].rstrip(".") + ".")
    if not out:
        out["_form"] = exc.message
    return out


def add_admin_routes(router: APIRouter) -> None:
    def users_page(request: Request, session: Any, user: UserRecord, **extra: Any) -> Response:
        return _page(
            request,
            "admin_users.html",
            user,
            users=list_users(session),
            role_labels=ROLE_LABELS,
            roles=ROLES,
            errors=extra.pop("errors", {}),
            values=extra.pop("values", {}),
            **extra,
        )

    @router.get("/admin", name="web_admin")
    def admin_home(user: AdminUser) -> Response:
        return RedirectResponse("/admin/users", status_code=303)

    @router.get("/admin/users", name="web_admin_users")
    def users(request: Request, session: SessionDep, user: AdminUser) -> Response:
        done = request.query_params.get("done", "")
        return users_page(request, session, user, flashes=[_DONE[done]] if done in _DONE else [])

    @router.post("/admin/users")
    def add_user(
        request: Request,
        session: SessionDep,
        user: AdminUser,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        role: Annotated[str, Form()] = "clinician",
        patient_id: Annotated[str, Form()] = "",
    ) -> Response:
        values = {"username": username, "role": role, "patient_id": patient_id}
        try:
            create_user(
                session,
                username.strip(),
                password,
                role,  # type: ignore[arg-type]  # checked by create_user
                patient_id.strip() or None,
                created_by=user.username,
            )
        except StoreError as exc:
            return users_page(request, session, user, status_code=422, errors=_errors(exc), values=values)
        return RedirectResponse("/admin/users?done=created", status_code=303)

    def _target(request: Request, session: Any, user: UserRecord, user_id: int) -> UserRecord:
        found = next((u for u in list_users(session) if u.id == user_id), None)
        if found is None:
            raise PageInsteadError(_error(request, user, 404, "Account not found", "There is no account with that id."))
        return found

    @router.get("/admin/users/{user_id}", name="web_admin_user")
    def edit_user(request: Request, session: SessionDep, user: AdminUser, user_id: int) -> Response:
        target = _target(request, session, user, user_id)
        return _page(
            request, "admin_user.html", user, target=target, role_labels=ROLE_LABELS, roles=ROLES, errors={}, values={}
        )

    @router.post("/admin/users/{user_id}")
    def save_user(
        request: Request,
        session: SessionDep,
        user: AdminUser,
        user_id: int,
        action: Annotated[str, Form()] = "",
        role: Annotated[str, Form()] = "",
        patient_id: Annotated[str, Form()] = "",
        new_password: Annotated[str, Form()] = "",
    ) -> Response:
        target = _target(request, session, user, user_id)
        try:
            if action == "deactivate":
                set_user_active(session, user.actor(), user_id, False)
            elif action == "activate":
                set_user_active(session, user.actor(), user_id, True)
            elif action == "reset":
                update_user(session, user.actor(), user_id, new_password=new_password)
            else:
                update_user(
                    session,
                    user.actor(),
                    user_id,
                    role=role or None,  # type: ignore[arg-type]  # checked by update_user
                    patient_id=patient_id.strip() or None,
                )
        except NotFoundError:
            return _error(request, user, 404, "Account not found", "There is no account with that id.")
        except StoreError as exc:
            values = {"role": role, "patient_id": patient_id}
            return _page(
                request,
                "admin_user.html",
                user,
                status_code=422,
                target=target,
                role_labels=ROLE_LABELS,
                roles=ROLES,
                errors=_errors(exc),
                values=values,
            )
        return RedirectResponse("/admin/users?done=changed", status_code=303)

    @router.get("/admin/audit", name="web_admin_audit")
    def audit(
        request: Request,
        session: SessionDep,
        user: AdminUser,
        patient_id: str = "",
        by: str = "",
        action: str = "",
        outcome: str = "",
    ) -> Response:
        errors: dict[str, str] = {}
        if patient_id and not re.fullmatch(r"P[0-9A-Z]{10}", patient_id.strip()):
            errors["patient_id"] = "Patient id must look like P followed by 10 letters or digits."
        if action and not re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", action):
            errors["action"] = "Action must be a word such as event or event.append."
        if outcome and outcome not in OUTCOMES:
            errors["outcome"] = "Outcome must be ok or denied."
        rows = (
            []
            if errors
            else list_audit(
                session,
                user.actor(),
                patient_id=patient_id.strip() or None,
                by=by.strip() or None,
                action=action or None,
                outcome=outcome or None,
                limit=200,
            )
        )
        filters = {"patient_id": patient_id, "by": by, "action": action, "outcome": outcome}
        return _page(
            request,
            "admin_audit.html",
            user,
            status_code=422 if errors else 200,
            rows=rows,
            filters=filters,
            errors=errors,
            outcomes=OUTCOMES,
        )

    @router.get("/account/password", name="web_password")
    def password_form(request: Request, user: SignedIn) -> Response:
        done = ["Your password is changed. Other sessions of this account were logged out."]
        return _page(
            request, "account_password.html", user, errors={}, flashes=done if request.query_params.get("done") else []
        )

    @router.post("/account/password")
    def password_change(
        request: Request,
        session: SessionDep,
        user: SignedIn,
        current_password: Annotated[str, Form()] = "",
        new_password: Annotated[str, Form()] = "",
        confirm_password: Annotated[str, Form()] = "",
    ) -> Response:
        errors: dict[str, str] = {}
        if not current_password:
            errors["current_password"] = "Enter your current password."
        if new_password != confirm_password:
            errors["confirm_password"] = "The two new passwords are not the same."
        if not errors:
            try:
                change_password(
                    session,
                    user.actor(),
                    current_password,
                    new_password,
                    keep_token=request.cookies.get(SESSION_COOKIE),
                )
            except StoreError as exc:
                errors = _errors(exc)
            else:
                return RedirectResponse("/account/password?done=1", status_code=303)
        return _page(request, "account_password.html", user, status_code=422, errors=errors)


_DONE = {"created": "Account created.", "changed": "Account changed."}
