"""Browser sessions for the web pages (and the API's cookie routes): log in, log out, who is logged in.

- `current_user_from_cookie(request)`: the logged-in user of a browser session, or None.
- `start_browser_session(request, response, user, session)` / `end_browser_session(request, response, session)`.
"""

from __future__ import annotations

import secrets

from fastapi import Request, Response
from sqlalchemy.orm import Session

from allpath.http.cookies import SESSION_COOKIE, cookie_secure, set_csrf_cookie
from allpath.http.deps import get_context
from allpath.store.auth import UserRecord, issue_token, resolve_token, revoke_token


def current_user_from_cookie(request: Request, session: Session | None = None) -> UserRecord | None:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    if session is not None:
        return resolve_token(session, secret, "session")
    with get_context(request).sessions() as own:
        return resolve_token(own, secret, "session")


def start_browser_session(request: Request, response: Response, user: UserRecord, session: Session) -> None:
    """Log `user` in: a new session cookie (HttpOnly, SameSite=Lax; Secure over https or when configured)."""
    settings = get_context(request).settings
    secret, _ = issue_token(session, user, "session", settings.auth.session_ttl_seconds)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=settings.auth.session_ttl_seconds,
        httponly=True,
        secure=cookie_secure(request),
        samesite="lax",
        path="/",
    )
    # A fresh CSRF seed at login, so a seed planted before login is worth nothing after it.
    set_csrf_cookie(request, response, secrets.token_urlsafe(32))


def end_browser_session(request: Request, response: Response, session: Session) -> None:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        revoke_token(session, secret)
    response.delete_cookie(SESSION_COOKIE, path="/")
