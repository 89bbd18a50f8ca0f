"""SMART on FHIR EHR launch pages: `/smart/launch`, `/smart/callback`, `/smart/plan/{id}`.

The EHR opens `/smart/launch?iss=...&launch=...`; allpath checks `iss` against the trusted list,
discovers the endpoints, keeps the PKCE verifier and the `state` **server-side** (bound to a
random, HttpOnly browser cookie), and sends the browser to the authorization server. The
callback takes the `state` back once: unknown, expired, reused or issued to another browser, it
is refused. The code is exchanged (with the verifier, which never left the server), the
patient's resources are read from the FHIR server, and the clinician plan is shown from them.
Nothing is stored in the database but the audit line; the access token is dropped as soon as
the record is read, and never logged. The pending launches and plans are kept in the process
(`allpath serve` runs one worker), for `ALLPATH_SMART_LAUNCH_TTL_SECONDS`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from allpath.errors import AllpathError, Problem
from allpath.explain.labels import PHASE_LABELS, missing_fact_views
from allpath.fhir.importer import FhirInputError
from allpath.fhir.smart import (
    Endpoints,
    SmartDeniedError,
    SmartLaunchError,
    SmartUpstreamError,
    authorization_url,
    check_iss,
    discover,
    exchange_code,
    read_record,
)
from allpath.http.cookies import cookie_secure
from allpath.http.deps import SessionDep, fhir_importer, get_context
from allpath.plan import Plan
from allpath.settings import SmartSettings
from allpath.store.context import AppContext
from allpath.store.service import audit_now
from allpath.web.planview import plan_view

log = logging.getLogger("allpath.web.smart")
BROWSER_COOKIE = "allpath_smart"
_STATUS = {SmartLaunchError: 400, SmartDeniedError: 403, SmartUpstreamError: 502, FhirInputError: 422}


@dataclass
class _Pending:
    iss: str
    endpoints: Endpoints
    verifier: str
    browser: str
    created: float


@dataclass
class _Opened:
    iss: str
    patient_id: str
    plan: Plan
    notes: list[str]
    browser: str
    created: float
    read_at: str


@dataclass
class SmartStore:
    """Launches waiting for their callback (by `state`) and the plans they opened (by a random id)."""

    ttl_seconds: int
    pending: dict[str, _Pending] = field(default_factory=dict)
    opened: dict[str, _Opened] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _expire(self, now: float) -> None:
        for table in (self.pending, self.opened):
            for key in [k for k, v in table.items() if now - v.created > self.ttl_seconds]:
                del table[key]

    def add_pending(self, state: str, item: _Pending) -> None:
        with self.lock:
            self._expire(item.created)
            self.pending[state] = item

    def take_pending(self, state: str) -> _Pending | None:
        """The launch of this state, once: a second callback with the same state finds nothing."""
        with self.lock:
            self._expire(time.monotonic())
            return self.pending.pop(state, None)

    def add_opened(self, item: _Opened) -> str:
        key = secrets.token_urlsafe(24)
        with self.lock:
            self.opened[key] = item
        return key

    def get_opened(self, key: str) -> _Opened | None:
        with self.lock:
            self._expire(time.monotonic())
            return self.opened.get(key)


def _store(context: AppContext) -> SmartStore:
    store = context.extra.get("smart_store")
    if store is None:
        store = context.extra["smart_store"] = SmartStore(context.settings.smart.launch_ttl_seconds)
    return store


def _page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    from allpath.web.routes import _page as page

    return page(request, template, None, status_code=status_code, **values)


def _refused(request: Request, exc: AllpathError) -> HTMLResponse:
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
    titles = {400: "The launch was refused", 403: "Authorization was denied", 422: "The record cannot be read"}
    detail = "; ".join(f"{p.field}: {p.problem}" for p in exc.problems) or exc.message
    return _page(
        request, "error.html", status, title=titles.get(status, "The EHR's servers did not answer"), message=detail
    )


def _settings(request: Request) -> SmartSettings:
    return get_context(request).settings.smart


def create_smart_router() -> APIRouter:
    router = APIRouter(prefix="/smart", include_in_schema=False)

    @router.get("/launch", name="smart_launch")
    def launch(request: Request, iss: str | None = None, launch: str | None = None) -> Response:
        settings = _settings(request)
        try:
            base = check_iss(settings, iss)
            if not launch or not launch.strip():
                raise SmartLaunchError([Problem("launch", "is required: the EHR's launch context")])
            endpoints = discover(settings, base)
        except (SmartLaunchError, SmartUpstreamError) as exc:
            return _refused(request, exc)
        from authlib.common.security import generate_token

        state, verifier = secrets.token_urlsafe(32), generate_token(64)
        browser = request.cookies.get(BROWSER_COOKIE) or secrets.token_urlsafe(24)
        _store(get_context(request)).add_pending(state, _Pending(base, endpoints, verifier, browser, time.monotonic()))
        response = RedirectResponse(authorization_url(settings, endpoints, base, launch, state, verifier), 302)
        response.set_cookie(
            BROWSER_COOKIE, browser, httponly=True, secure=cookie_secure(request), samesite="lax", path="/smart"
        )
        return response

    @router.get("/callback", name="smart_callback")
    def callback(
        request: Request,
        session: SessionDep,
        state: str | None = None,
        code: str | None = None,
        error: str | None = None,
    ) -> Response:
        context = get_context(request)
        settings = context.settings.smart
        pending = _store(context).take_pending(state) if state else None
        try:
            if pending is None:
                raise SmartLaunchError([Problem("state", "is not a launch this server started, or it has expired")])
            if not secrets.compare_digest(request.cookies.get(BROWSER_COOKIE, ""), pending.browser):
                raise SmartLaunchError([Problem("state", "was issued to another browser")])
            if error:
                # The error code is the OAuth one (`access_denied`), a fixed word, not free text.
                code_word = error if error.replace("_", "").isalnum() else "error"
                raise SmartDeniedError(
                    "authorization denied", [Problem("error", f"the authorization server answered {code_word}")]
                )
            if not code:
                raise SmartLaunchError([Problem("code", "is required")])
            token = exchange_code(settings, pending.endpoints, code, pending.verifier)
            patient_id = str(token["patient"])
            bundle = read_record(settings, pending.iss, str(token["access_token"]), patient_id)
            del token  # the access token is not kept past the read
            imported = fhir_importer(context).from_bundle(bundle, as_of=dt.date.today())
        except (SmartLaunchError, SmartDeniedError, SmartUpstreamError, FhirInputError) as exc:
            log.info("SMART callback refused: %s", type(exc).__name__)
            return _refused(request, exc)
        plan = context.recommender.recommend(imported.facts, extra_alerts=imported.alerts)
        audit_now(session, "smart-launch", "smart.plan", None, "ok", f"iss={pending.iss} patient={patient_id}")
        key = _store(context).add_opened(
            _Opened(
                pending.iss,
                patient_id,
                plan,
                imported.notes,
                pending.browser,
                time.monotonic(),
                dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            )
        )
        return RedirectResponse(f"/smart/plan/{key}", 303)

    @router.get("/plan/{key}", name="smart_plan")
    def opened_plan(request: Request, key: str) -> Response:
        context = get_context(request)
        opened = _store(context).get_opened(key)
        if opened is None or not secrets.compare_digest(request.cookies.get(BROWSER_COOKIE, ""), opened.browser):
            return _page(
                request, "error.html", 404, title="No such launch", message="Launch allpath again from the EHR."
            )
        return _page(
            request,
            "smart_plan.html",
            plan=opened.plan,
            missing=missing_fact_views(opened.plan, context.kb),
            view=plan_view(opened.plan, context.kb),
            iss=opened.iss,
            patient_id=opened.patient_id,
            notes=opened.notes,
            read_at=opened.read_at,
            ttl_minutes=max(1, context.settings.smart.launch_ttl_seconds // 60),
            phase_labels=PHASE_LABELS,
        )

    return router
