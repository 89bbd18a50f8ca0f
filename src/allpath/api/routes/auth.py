"""Bearer tokens for the API: the OAuth2 password grant (form fields `username`, `password`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException

from allpath.api.deps import ContextDep, CurrentUser, SessionDep
from allpath.api.errors import ERROR_RESPONSES
from allpath.api.models import TokenPublic, UserPublic
from allpath.store.auth import authenticate, issue_token

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


@router.post("/token", response_model=TokenPublic)
def login(
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=200)],
    session: SessionDep,
    context: ContextDep,
) -> TokenPublic:
    """Exchange a username and password for a bearer token."""
    user = authenticate(session, username, password)
    if user is None:
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    secret, expires = issue_token(session, user, "bearer", context.settings.token_ttl_seconds)
    return TokenPublic(access_token=secret, expires_at=expires)


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    """The account the token belongs to."""
    assert user.user_id is not None
    return UserPublic(id=user.user_id, username=user.username, role=user.role, patient_id=user.patient_id)
