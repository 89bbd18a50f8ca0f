"""CSRF protection: signed double-submit, for every unsafe request a browser could forge.

- `csrf_token(request)`: the token to put in every form (`<input type="hidden" name="csrf_token">`).
- `verify_csrf(request, token)`: raises `CSRFError` (a `NotAllowedError`: 403) unless the token fits the request.

A random seed sits in the `allpath_csrf` cookie (set by `CSRFMiddleware`), and the token is an
HMAC of it under the server's secret. A cross-site form cannot read the cookie, so it cannot
produce the token. `CSRFMiddleware` enforces it on every unsafe request that a browser could
forge: one that carries the session cookie (whatever other headers come with it), or a form body
without an `Authorization: Bearer` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from starlette.datastructures import Headers
from starlette.requests import Request as StarletteRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from allpath.errors import NotAllowedError, Problem
from allpath.http.cookies import CSRF_COOKIE, SESSION_COOKIE, parse_cookies
from allpath.http.deps import get_context
from allpath.store.auth import resolve_token
from allpath.store.context import AppContext
from allpath.store.service import audit_now

log = logging.getLogger("allpath.http")

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Form posts that do not act on a cookie session: the OAuth2 password grant of the API.
CSRF_EXEMPT_PATHS = frozenset({"/auth/token"})
MAX_FORM_BYTES = 1 << 20


class CSRFError(NotAllowedError):
    """An unsafe request without the CSRF token of this browser (403, like the middleware's answer)."""

    title = "CSRF token is missing or does not match"

    def __init__(self, problem: str = "is missing or does not match"):
        super().__init__(f"CSRF token {problem}", [Problem(CSRF_FIELD, problem)])
        self.problem = problem


def _sign(secret_key: str, seed: str) -> str:
    return hmac.new(secret_key.encode("utf-8"), seed.encode("utf-8"), hashlib.sha256).hexdigest()


def _seed(request: Request) -> str | None:
    return getattr(request.state, "csrf_seed", None) or request.cookies.get(CSRF_COOKIE)


def csrf_token(request: Request) -> str:
    """The CSRF token for forms rendered in this response (`CSRFMiddleware` makes sure a seed exists)."""
    seed = _seed(request)
    if seed is None:
        seed = secrets.token_urlsafe(32)
        request.state.csrf_seed = seed
    return _sign(get_context(request).settings.auth.secret_key, seed)


def _token_fits(secret_key: str, seed: str | None, token: str | None) -> bool:
    if not seed or not token:
        return False
    return hmac.compare_digest(_sign(secret_key, seed), token)


def verify_csrf(request: Request, token: str | None) -> None:
    """Raise `CSRFError` (403) unless `token` is the one `csrf_token` gave for this browser."""
    if not _token_fits(get_context(request).settings.auth.secret_key, request.cookies.get(CSRF_COOKIE), token):
        raise CSRFError()


class CSRFMiddleware:
    """Seeds the CSRF cookie and rejects forgeable unsafe requests that lack a valid token."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = parse_cookies(headers.get("cookie", ""))
        seed = cookies.get(CSRF_COOKIE)
        new_seed = None
        # A browser never adds a Bearer header by itself (it does add Basic credentials, e.g. behind
        # an authenticating proxy), so only a Bearer request is known not to come from a form.
        bearer = headers.get("authorization", "")[:7].lower() == "bearer "
        # A bearer-token client is not a browser: it needs no CSRF seed, and no cookie in reply.
        if not seed and not bearer:
            new_seed = secrets.token_urlsafe(32)
            scope.setdefault("state", {})["csrf_seed"] = new_seed

        if scope["method"] in UNSAFE_METHODS and scope["path"] not in CSRF_EXEMPT_PATHS:
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            is_form = content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
            # A request carrying the session cookie may be authenticated by it, whatever other
            # headers it has (a junk Bearer header must not switch the check off for a web route).
            if SESSION_COOKIE in cookies or (is_form and not bearer):
                body = await _read_body(receive)
                if body is None:
                    await _reject(scope, send, "request body too large", None)
                    return
                token = headers.get(CSRF_HEADER) or await _form_token(scope, content_type, body)
                secret_key = scope["app"].state.allpath.settings.auth.secret_key
                if not _token_fits(secret_key, seed, token):
                    await _reject(scope, send, "is missing or does not match", cookies.get(SESSION_COOKIE))
                    return
                receive = _replay(body)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and new_seed is not None:
                state = scope.get("state", {})
                # A handler may have rotated the seed (login) and set the cookie itself.
                if state.get("csrf_seed") == new_seed:
                    secure = "; Secure" if scope.get("scheme") == "https" else ""
                    cookie = f"{CSRF_COOKIE}={new_seed}; HttpOnly; Path=/; SameSite=Lax{secure}"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _form_token(scope: Scope, content_type: str, body: bytes) -> str | None:
    if content_type == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD)
        return values[0] if values else None
    if content_type == "multipart/form-data":
        try:
            form = await StarletteRequest(scope, _replay(body)).form()
        except Exception:  # a malformed multipart body simply has no token
            return None
        value: Any = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def _reject(scope: Scope, send: Send, problem: str, session_secret: str | None) -> None:
    context: AppContext = scope["app"].state.allpath
    actor = "anonymous"
    try:
        with context.sessions() as session:
            if session_secret:
                user = resolve_token(session, session_secret, "session")
                actor = user.username if user else actor
            audit_now(session, actor, "csrf", None, "denied", f"{scope['method']} {scope['path']}"[:200])
    except Exception:  # auditing must not turn a 403 into a 500
        log.exception("could not audit a CSRF rejection")
    log.info("CSRF rejection: %s %s", scope["method"], scope["path"])
    body = json.dumps(
        {"error": f"CSRF token {problem}", "details": [{"field": CSRF_FIELD, "problem": problem}]}
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
