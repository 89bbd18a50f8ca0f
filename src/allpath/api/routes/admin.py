"""Accounts and the audit trail (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from allpath.api.deps import CurrentUser, SessionDep
from allpath.api.errors import ERROR_RESPONSES
from allpath.api.models import AuditPublic, UserCreate, UserPublic, UserUpdate
from allpath.store.auth import create_user, list_users, set_user_active
from allpath.store.service import PATIENT_ID_PATTERN, ForbiddenError, audit_now, list_audit

router = APIRouter(tags=["admin"], responses=ERROR_RESPONSES)


def _admin_only(session: SessionDep, user: CurrentUser, action: str) -> None:
    if user.role != "admin":
        audit_now(session, user.username, action, None, "denied", "role")
        raise ForbiddenError("only an admin may manage accounts")


@router.get("/users", response_model=list[UserPublic])
def users(session: SessionDep, user: CurrentUser) -> list[UserPublic]:
    _admin_only(session, user, "user.list")
    return [UserPublic.of(u) for u in list_users(session)]


@router.post("/users", response_model=UserPublic, status_code=201)
def add_user(body: UserCreate, session: SessionDep, user: CurrentUser) -> UserPublic:
    _admin_only(session, user, "user.create")
    created = create_user(session, body.username, body.password, body.role, body.patient_id, created_by=user.username)
    return UserPublic.of(created)


@router.patch("/users/{user_id}", response_model=UserPublic)
def update_user(
    user_id: Annotated[int, Path(ge=1, le=2**31 - 1)], body: UserUpdate, session: SessionDep, user: CurrentUser
) -> UserPublic:
    """Deactivate (or reactivate) an account; deactivation revokes every token and session it holds."""
    return UserPublic.of(set_user_active(session, user, user_id, body.active))


@router.get("/audit", response_model=list[AuditPublic])
def audit_trail(
    session: SessionDep,
    user: CurrentUser,
    patient_id: Annotated[str | None, Query(pattern=PATIENT_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditPublic]:
    return [AuditPublic.of(a) for a in list_audit(session, user, patient_id=patient_id, limit=limit)]
