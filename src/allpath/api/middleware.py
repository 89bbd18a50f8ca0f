"""ASGI middleware every allpath app runs: security headers on every response, and size limits on
request heads and bodies (checked before anything reads or parses them).

Pure ASGI (no `BaseHTTPMiddleware`): each adds a few header tuples or one length check per
request, measured with `make bench-http`.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_HEADER_BYTES = 32 * 1024

# The pages load only their own stylesheet (no scripts at all), post forms only to the service, and
# may not be framed. JSON and other responses get the strictest policy: they are never rendered.
HTML_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=31536000; includeSubDomains"

_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeadersMiddleware:
    """Adds Content-Security-Policy (with `frame-ancestors 'none'`), X-Frame-Options, X-Content-Type-Options,
    Referrer-Policy and Cross-Origin-Opener-Policy to every response, and Strict-Transport-Security to
    responses served over https. A header the route set itself is left alone."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                is_html = any(
                    name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers
                )
                extra = [h for h in _COMMON if h[0] not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", (HTML_CSP if is_html else OTHER_CSP).encode("ascii")))
                if https and b"strict-transport-security" not in present:
                    extra.append((b"strict-transport-security", HSTS.encode("ascii")))
                message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestLimitsMiddleware:
    """Refuses a request whose head (path, query and headers) is over `max_header_bytes` (431) or whose
    body is over `max_body_bytes` (413), with the JSON error body, before the route reads it.

    A declared `Content-Length` over the limit is refused without reading a byte; a body without one
    (chunked) is read up to the limit and refused as soon as it passes it. `allpath serve` also bounds
    the head in the HTTP parser itself (`allpath.api.limits`), so an oversized head is not even buffered.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int):
        self.app = app
        self.max_body = max_body_bytes
        self.max_header = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        declared: int | None = None
        for name, value in scope["headers"]:
            head += len(name) + len(value) + 4
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if head > self.max_header:
            await _refuse(
                send, 431, "request headers too large", "headers", f"must total at most {self.max_header} bytes"
            )
            return
        if declared is not None:
            if declared > self.max_body:
                await _refuse(send, 413, "request body too large", "body", f"must be at most {self.max_body} bytes")
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit, then hand the body on.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], disconnected=True), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _refuse(send, 413, "request body too large", "body", f"must be at most {self.max_body} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(chunks), send)


def _replay(chunks: list[bytes], *, disconnected: bool = False) -> Receive:
    sent = disconnected

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _refuse(send: Send, status: int, error: str, field: str, problem: str) -> None:
    body = json.dumps({"error": error, "details": [{"field": field, "problem": problem}]}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
