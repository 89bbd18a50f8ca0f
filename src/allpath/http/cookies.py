"""The cookies allpath sets: the browser session and the CSRF seed (both HttpOnly, SameSite=Lax)."""

from __future__ import annotations

from fastapi import Request, Response

from allpath.http.deps import get_context

SESSION_COOKIE = "allpath_session"
CSRF_COOKIE = "allpath_csrf"


def cookie_secure(request: Request) -> bool:
    """Secure cookies over https, or always/never when `ALLPATH_COOKIE_SECURE` says so."""
    configured = get_context(request).settings.auth.cookie_secure
    return request.url.scheme == "https" if configured is None else configured


def set_csrf_cookie(request: Request, response: Response, seed: str) -> None:
    request.state.csrf_seed = seed
    response.set_cookie(CSRF_COOKIE, seed, httponly=True, secure=cookie_secure(request), samesite="lax", path="/")


def parse_cookies(header: str) -> dict[str, str]:
    """The cookies of a `Cookie` header (the first of a repeated name wins)."""
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out.setdefault(name, value)
    return out
