"""One error shape for every failure: `{"error": "...", "details": [{"field": ..., "problem": ...}]}`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from allpath.course import EVENT_TYPES
from allpath.errors import AllpathError
from allpath.facts import Problem, describe_validation_error
from allpath.httperrors import http_status, retry_headers

log = logging.getLogger("allpath.api")
_LOCATIONS = {"body", "query", "path"}


class ErrorDetail(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    error: str
    details: list[ErrorDetail]


def error_response(status: int, error: str, problems: Sequence[Problem] = (), headers: Any = None) -> JSONResponse:
    body = {"error": error, "details": [p.as_dict() for p in problems]}
    return JSONResponse(body, status_code=status, headers=headers)


def _for_browser(request: Request, status: int, headers: Any = None) -> Response | None:
    """An HTML error page for a browser, when the web pages are mounted (`app.state.html_error`).

    A browser asks for `text/html` first; API clients ask for JSON or anything (`*/*`) and keep
    the JSON error shape.
    """
    renderer = getattr(request.app.state, "html_error", None)
    accept = request.headers.get("accept", "")
    if renderer is None or not accept.startswith("text/html"):
        return None
    response: Response = renderer(request, status)
    if headers:
        response.headers.update(headers)
    return response


class _Errors:
    """Lets `describe_validation_error` (written for pydantic's ValidationError) read FastAPI's error list."""

    def __init__(self, errors: Sequence[Any]):
        self._errors = errors

    def errors(self, include_url: bool = False) -> list[Any]:
        return [_clean(e) for e in self._errors]


def _clean(error: Any) -> dict[str, Any]:
    error = dict(error)
    loc = list(error.get("loc", ()))
    if loc and loc[0] in _LOCATIONS:
        loc = loc[1:]
    # Drop the union tag pydantic puts in the path of a discriminated event (event.diagnosed.lineage).
    loc = [part for i, part in enumerate(loc) if not (i > 0 and loc[i - 1] == "event" and part in EVENT_TYPES)]
    if error.get("type") == "json_invalid":
        return {**error, "loc": ("body",), "type": "json_invalid"}
    return {**error, "loc": tuple(loc)}


def validation_problems(errors: Sequence[Any]) -> list[Problem]:
    problems = []
    for p in describe_validation_error(_Errors(errors)):  # type: ignore[arg-type]
        if p.field == "body" and "json" in p.problem.lower():
            p = Problem("body", "is not valid JSON")
        problems.append(p)
    return problems


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid request", validation_problems(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if (page := _for_browser(request, exc.status_code, getattr(exc, "headers", None))) is not None:
            return page
        problems = getattr(exc, "problems", ())
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, detail, problems, headers=getattr(exc, "headers", None))

    @app.exception_handler(AllpathError)
    async def _allpath(request: Request, exc: AllpathError) -> JSONResponse:
        return error_response(http_status(exc), exc.message, exc.problems, headers=retry_headers(exc))

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The database is down, unreachable or (SQLite) still locked after the busy timeout: the
        # request did nothing, and the client may try again. The driver's text is not sent back.
        log.error("database unavailable on %s %s", request.method, request.url.path)
        return error_response(503, "database unavailable, try again shortly", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Never a traceback (or a request body) in the response or the log line.
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return _for_browser(request, 500) or error_response(500, "internal error")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "Not authenticated",
        403: "Not allowed for this account",
        404: "Not found (or not this account's record)",
        409: "Stale expected_version",
        422: "Invalid input",
    }.items()
}
