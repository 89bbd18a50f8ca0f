"""Bearer tokens for the API: the OAuth2 password grant (form fields `username`, `password`, or
the same as a JSON object)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError

from allpath.api.deps import ContextDep, CurrentUser, SessionDep, bearer_scheme
from allpath.api.errors import ERROR_RESPONSES
from allpath.api.models import PasswordChange, TokenPublic, TokenRequest, UserPublic
from allpath.facts import Problem, describe_validation_error
from allpath.http.csrf import csrf_token
from allpath.http.sessions import current_user_from_cookie, end_browser_session, start_browser_session
from allpath.store.auth import authenticate_throttled, change_password, issue_token, revoke_token
from allpath.store.service import InvalidInputError

router = APIRouter(
    prefix="/auth",
    tags=["auth"],
    responses={**ERROR_RESPONSES, 429: {**ERROR_RESPONSES[422], "description": "Throttled"}},
)


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _credentials(request: Request) -> TokenRequest:
    """The user name and password, from a JSON body or from form fields (the OAuth2 password grant)."""
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise InvalidInputError("invalid request", [Problem("body", "is not valid JSON")]) from None
    else:
        data = {k: v for k, v in (await request.form()).items() if k in ("username", "password")}
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError("invalid request", describe_validation_error(exc)) from None


_TOKEN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": TokenRequest.model_json_schema()},
            "application/json": {"schema": TokenRequest.model_json_schema()},
        },
    }
}


@router.post("/token", response_model=TokenPublic, openapi_extra=_TOKEN_BODY)
def login(
    credentials: Annotated[TokenRequest, Depends(_credentials)],
    request: Request,
    session: SessionDep,
    context: ContextDep,
) -> TokenPublic:
    """Exchange a username and password (form fields or a JSON object) for a bearer token. Repeated
    failures lock the account name and the client address for a while (429 with `Retry-After`)."""
    username, password = credentials.username, credentials.password
    user = authenticate_throttled(session, context.settings.auth, username, password, _address(request))
    if user is None:
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    secret, expires = issue_token(session, user, "bearer", context.settings.auth.token_ttl_seconds)
    return TokenPublic(access_token=secret, expires_at=expires)


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    """The account the token belongs to."""
    assert user.user_id is not None
    return UserPublic(id=user.user_id, username=user.username, role=user.role, patient_id=user.patient_id)


@router.post("/session", response_model=UserPublic)
def browser_login(
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=200)],
    request: Request,
    response: Response,
    session: SessionDep,
    context: ContextDep,
) -> UserPublic:
    """Browser log-in: sets the session cookie. A form post, so it needs the `csrf_token` field."""
    user = authenticate_throttled(session, context.settings.auth, username, password, _address(request))
    if user is None:
        raise HTTPException(401, "wrong username or password")
    start_browser_session(request, response, user, session)
    return UserPublic.of(user)


@router.get("/session", response_model=UserPublic)
def browser_whoami(request: Request, session: SessionDep) -> UserPublic:
    """The user of the browser session cookie."""
    user = current_user_from_cookie(request, session)
    if user is None:
        raise HTTPException(401, "no browser session")
    return UserPublic.of(user)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


@router.post("/logout", status_code=204)
def logout(user: CurrentUser, credentials: BearerCredentials, session: SessionDep) -> None:
    """Revoke the bearer token this request carries; it authenticates nothing afterwards."""
    assert credentials is not None  # CurrentUser resolved it
    revoke_token(session, credentials.credentials)


@router.post("/password", status_code=204)
def new_password(body: PasswordChange, user: CurrentUser, credentials: BearerCredentials, session: SessionDep) -> None:
    """Change your own password (the policy applies); every other token and session of the account is revoked."""
    change_password(
        session,
        user,
        body.current_password,
        body.new_password,
        keep_token=credentials.credentials if credentials else None,
    )


@router.post("/session/logout", status_code=204)
def browser_logout(request: Request, response: Response, session: SessionDep, credentials: BearerCredentials) -> None:
    """End the browser session (needs the CSRF token, like every cookie-authenticated post); a bearer
    token sent along is revoked too."""
    end_browser_session(request, response, session)
    if credentials is not None:
        revoke_token(session, credentials.credentials)


@router.get("/csrf")
def csrf(request: Request) -> dict[str, str]:
    """A CSRF token for this browser (send it as the `csrf_token` form field or the X-CSRF-Token header)."""
    return {"csrf_token": csrf_token(request)}
