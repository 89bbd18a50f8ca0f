"""The server-rendered pages: log-in, the clinician's patient list and patient page, the family
plan (HTML and PDF), and the knowledge browser.

Routes are thin: access checks, auditing and the 409 on stale writes live in the store
(`Records`); the pages only render. Every form carries the CSRF token (`CSRFMiddleware`
rejects a post without it before it reaches a route).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from allpath.course.companion import load_companion
from allpath.explain.labels import (
    COURSE_STATUS_LABELS,
    EVENT_LABELS,
    EVENT_VALUE_LABELS,
    FACT_LABELS,
    FLAG_LABELS,
    PHASE_LABELS,
    RELAPSE_SITE_LABELS,
    SUBTYPE_LABELS,
    THERAPY_LABELS,
    missing_fact_views,
)
from allpath.facts import Problem
from allpath.http.csrf import csrf_token
from allpath.http.deps import SessionDep, get_context
from allpath.http.sessions import current_user_from_cookie, end_browser_session, start_browser_session
from allpath.httperrors import http_status, retry_headers
from allpath.plan import Plan
from allpath.store.auth import UserRecord, authenticate_throttled
from allpath.store.companion import FamilyRecords, account_language, set_account_language
from allpath.store.context import AppContext
from allpath.store.kbsearch import knowledge_index
from allpath.store.service import (
    ConflictError,
    Course,
    EventRecord,
    NotFoundError,
    Records,
    StoreError,
    patient_flags,
)
from allpath.store.throttle import ThrottledError
from allpath.web.family import current_and_next, family_kb
from allpath.web.forms import (
    FORMS_BY_TYPE,
    EventForm,
    event_from_form,
    form_field,
    form_values_of,
    forms_for_state,
)
from allpath.web.i18n import LANG_COOKIE, as_lang, gettext_for, negotiate
from allpath.web.listing import age_label, list_patients_view, patient_row, status_key
from allpath.web.planview import FACT_INPUTS, Change, compare_plans, facts_from_form, form_values, plan_view
from allpath.web.render import html_to_pdf, render, static_text
from allpath.web.timeline import TimelineEvent, render_timeline

log = logging.getLogger("allpath.web")
# The kinds the knowledge page has a section for (sources are cited, not listed).
WEB_SEARCH_KINDS = ("topic", "phase", "agent", "rule")


# --- page plumbing -------------------------------------------------------------------------------


def _page(
    request: Request, template: str, user: UserRecord | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    ctx = get_context(request)
    lang = request_language(request)
    html = render(
        template,
        lang=lang,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        user=user,
        csrf=csrf_token(request),
        url=lambda name, **params: str(request.url_for(name, **params).path),
        home_url="/",
        flashes=context.pop("flashes", []),
        disclaimer=family_kb(ctx.kb, lang).disclaimer,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def request_language(request: Request) -> str:
    """The account's preference (put on the request by `signed_in_user`), else the switch's
    cookie, else `Accept-Language`, else English."""
    account = getattr(request.state, "account_language", None)
    return negotiate(account, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def _error(request: Request, user: UserRecord | None, status: int, title: str, message: str) -> HTMLResponse:
    return _page(request, "error.html", user, status_code=status, title=title, message=message)


ERROR_PAGES = {
    403: ("Not allowed", "This account cannot open this page."),
    404: ("Page not found", "There is no page at this address. Check it, or start again from the start page."),
    405: ("Not possible here", "This address does not take that kind of request."),
    500: ("Something went wrong", "The service could not answer. Nothing was changed. Try again in a moment."),
}


def error_page_for(request: Request, status: int) -> HTMLResponse:
    """The HTML error page a browser gets for an API-level error (an unknown path, a crash)."""
    title, message = ERROR_PAGES.get(status, ("The request could not be answered", f"Error {status}."))
    try:
        user = current_user_from_cookie(request)
    except Exception:  # the page must render even when the database is what failed
        user = None
    return _error(request, user, status, title, message)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class PageInsteadError(Exception):
    """Answer with `response` instead of the page asked for (a log-in redirect, an error page).

    Raised by the user dependencies and helpers of the routes; `_PageRoute` turns it into its response.
    """

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


class _PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except PageInsteadError as instead:
                return instead.response

        return route


# The user dependencies are `async def` like the API's (`allpath.api.deps`): a session look-up is
# one indexed read, not worth a thread-pool hop.


async def signed_in_user(request: Request, session: SessionDep) -> UserRecord:
    """The user of the session cookie; anyone else goes to the log-in page (and back here after)."""
    user = current_user_from_cookie(request, session)
    if user is None:
        raise PageInsteadError(_to_login(request))
    request.state.account_language = account_language(session, user.id)
    return user


async def staff_user(request: Request, session: SessionDep) -> UserRecord:
    """A clinician or an administrator; others get a 403 page, and anyone not logged in the log-in page."""
    user = await signed_in_user(request, session)
    if user.role not in ("clinician", "admin"):
        _ = gettext_for(request_language(request))
        raise PageInsteadError(
            _error(request, user, 403, _("Not for this account"), _("This page is for the care team."))
        )
    return user


StaffUser = Annotated[UserRecord, Depends(staff_user)]
# The family pages: any logged-in account (a patient or family member sees only its own plan:
# `Records` answers 404 for anyone else's).
FamilyUser = Annotated[UserRecord, Depends(signed_in_user)]


def _safe_next(target: str | None) -> str | None:
    # Only same-site paths: never redirect a fresh login to another host.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


# --- translating the record for the pages --------------------------------------------------------


def event_label(e: EventRecord) -> str:
    p = e.payload
    if e.type == "diagnosed":
        lineage = EVENT_VALUE_LABELS["lineage"][p["lineage"]] if p.get("lineage") in ("B", "T") else "lineage unknown"
        ph = {"positive": "Ph-positive", "negative": "Ph-negative"}.get(p.get("ph_status", ""), "Ph unknown")
        cns_words: dict[bool | None, str] = {True: ", CNS involved", False: ""}
        cns = cns_words.get(p.get("cns_involvement"), ", CNS unknown")
        down = ", Down syndrome" if p.get("down_syndrome") else ""
        return f"Diagnosed ({lineage}, {ph}{cns}{down})"
    if e.type in ("phase_started", "phase_completed"):
        phase = PHASE_LABELS.get(p.get("phase", ""), p.get("phase", ""))
        return f"{phase} {'started' if e.type == 'phase_started' else 'completed'}"
    if e.type == "remission_achieved":
        return "Complete remission"
    if e.type == "induction_failed":
        return "No remission (refractory)"
    if e.type == "relapsed":
        site = p.get("site", "unknown")
        # v1 records said "other" for any site but marrow and CNS.
        where = {"other": "outside marrow and CNS", "unknown": "site not known"}.get(site)
        return f"Relapse ({where or RELAPSE_SITE_LABELS.get(site, site).lower()})"
    if e.type == "therapy_given":
        return f"{THERAPY_LABELS.get(p.get('therapy', ''), p.get('therapy', ''))} given"
    if e.type == "immunophenotype":
        found = [f"{m.upper()} {p[m]}" for m in ("cd19", "cd20", "cd22") if p.get(m)]
        return f"Immunophenotype ({', '.join(found)})"
    if e.type == "genetics_result":
        findings = [SUBTYPE_LABELS.get(g, g) for g in p.get("findings", [])]
        return f"Genetic finding ({', '.join(findings)})"
    if e.type == "fitness_assessed":
        return "Fit for intensive chemotherapy" if p.get("fit") else "Not fit for intensive chemotherapy"
    if e.type == "pregnancy_status":
        return "Pregnant" if p.get("pregnant") else "Not pregnant"
    if e.type == "mrd_result":
        return f"MRD {p.get('result', '')}"
    if e.type == "transplant":
        return f"{str(p.get('kind', '')).capitalize()} transplant"
    if e.type == "trial_enrolled":
        return "Joined a clinical trial" + (f" ({p['trial_id']})" if p.get("trial_id") else "")
    if e.type == "survival_estimate":
        return f"Expected survival {p.get('months')} months"
    return EVENT_LABELS.get(e.type, e.type)


def timeline_events(events: list[EventRecord]) -> list[TimelineEvent]:
    """The events that still count (not superseded, not retractions), for the picture."""
    out = []
    for e in events:
        if e.superseded_by is not None or e.type == "retracted":
            continue
        phase = e.payload.get("phase") if e.type in ("phase_started", "phase_completed") else None
        out.append(TimelineEvent(e.date, e.type, event_label(e), phase=phase))
    return out


def _plan_for(context: AppContext, course: Course) -> Plan | None:
    return context.recommender.recommend(course.facts) if course.facts is not None else None


def no_plan_reason(course: Course) -> str:
    """Why there is no plan, in the care team's words (the facts' problems name their fields)."""
    if course.state.status == "not_diagnosed":
        return "No diagnosis is recorded yet. Record the diagnosis to see the plan."
    names = {**FACT_LABELS, "as_of": "The date the record is read as of"}
    words = [f"{names.get(p.field, p.field)}: {p.problem}" for p in course.facts_problems]
    return "The record does not yet give a plan (" + "; ".join(words) + ")." if words else ""


def _as_of(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


# --- the router ------------------------------------------------------------------------------------


def create_web_router() -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=_PageRoute)

    @router.get("/static/{name}", name="web_static")
    def static(name: str) -> Response:
        try:
            text = static_text(name)
        except KeyError:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(text, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/", name="web_home")
    def home(request: Request, session: SessionDep) -> Response:
        user = current_user_from_cookie(request, session)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse("/my-plan" if user.role == "patient" else "/clinic/patients", status_code=303)

    # log-in ------------------------------------------------------------------------------------

    @router.get("/login", name="web_login")
    def login_form(request: Request, session: SessionDep, next: str | None = None) -> Response:
        user = current_user_from_cookie(request, session)
        return _page(request, "login.html", user, next=_safe_next(next) or "", errors={}, username="")

    @router.post("/login")
    def login(
        request: Request,
        session: SessionDep,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "",
    ) -> Response:
        errors: dict[str, str] = {}
        _ = gettext_for(request_language(request))
        if not username.strip():
            errors["username"] = _("Enter your user name.")
        if not password:
            errors["password"] = _("Enter your password.")
        try:
            user = (
                authenticate_throttled(
                    session,
                    get_context(request).settings.auth,
                    username.strip(),
                    password,
                    request.client.host if request.client else None,
                )
                if not errors
                else None
            )
        except ThrottledError as exc:
            errors["_form"] = _(
                "Too many failed log-ins. Try again in %(seconds)s seconds, or ask an administrator.",
                seconds=exc.retry_after,
            )
            page = _page(
                request,
                "login.html",
                None,
                status_code=http_status(exc),
                next=_safe_next(next) or "",
                errors=errors,
                username=username,
            )
            page.headers.update(retry_headers(exc) or {})
            return page
        if user is None:
            if not errors:
                errors["_form"] = _("The user name or password is not right.")
            return _page(
                request,
                "login.html",
                None,
                status_code=401,
                next=_safe_next(next) or "",
                errors=errors,
                username=username,
            )
        default = "/my-plan" if user.role == "patient" else "/clinic/patients"
        response = RedirectResponse(_safe_next(next) or default, status_code=303)
        start_browser_session(request, response, user, session)
        return response

    @router.post("/logout", name="web_logout")
    def logout(request: Request, session: SessionDep) -> Response:
        response = RedirectResponse("/login", status_code=303)
        end_browser_session(request, response, session)
        return response

    # clinician pages ---------------------------------------------------------------------------

    @router.get("/clinic/patients", name="web_patients")
    def patients(
        request: Request,
        session: SessionDep,
        user: StaffUser,
        q: str = "",
        status: str = "",
        phase: str = "",
        flag: str = "",
        sort: str = "updated",
        page: int = 1,
    ) -> Response:
        context = get_context(request)
        records = Records(session, user.actor())
        courses = records.list_courses(limit=100_000)
        alerts = {}
        for c in courses:
            plan = context.recommender.recommend(c.facts, with_missing_facts=False) if c.facts else None
            alerts[c.patient.id] = [a.severity for a in plan.alerts] if plan else []
        # The family diary's urgent entries not yet seen by the team (issue #14).
        urgent = FamilyRecords(session, user.actor(), load_companion()).urgent_patients()
        flags = patient_flags(session, courses, alerts, urgent=urgent)
        rows = [patient_row(c, flags[c.patient.id]) for c in courses]
        listing = list_patients_view(rows, q=q, status=status, phase=phase, flag=flag, sort=sort, page=page)
        return _page(
            request,
            "patients.html",
            user,
            listing=listing,
            status_labels=COURSE_STATUS_LABELS,
            phase_labels=PHASE_LABELS,
            flag_labels=FLAG_LABELS,
        )

    @router.get("/clinic/patients/new", name="web_patient_new")
    def patient_new_form(request: Request, session: SessionDep, user: StaffUser) -> Response:
        return _page(request, "patient_new.html", user, errors={}, values={})

    @router.post("/clinic/patients/new")
    def patient_new(
        request: Request,
        session: SessionDep,
        user: StaffUser,
        birth_date: Annotated[str, Form()] = "",
        display_name: Annotated[str, Form()] = "",
    ) -> Response:
        errors: dict[str, str] = {}
        values = {"birth_date": birth_date, "display_name": display_name}
        born = None
        if not birth_date.strip():
            errors["birth_date"] = "Enter the birth date."
        else:
            try:
                born = dt.date.fromisoformat(birth_date.strip())
            except ValueError:
                errors["birth_date"] = "Enter the birth date as YYYY-MM-DD."
        if len(display_name) > 100:
            errors["display_name"] = "Use at most 100 characters."
        if born is not None and not errors:
            try:
                patient = Records(session, user.actor()).create_patient(born, display_name.strip() or None)
            except StoreError as exc:
                errors.update(_problem_map(exc.problems, {"birth_date": "Birth date", "display_name": "Display name"}))
                errors.setdefault("_form", exc.message) if not exc.problems else None
            else:
                return RedirectResponse(f"/clinic/patients/{patient.id}?created=1", status_code=303)
        return _page(request, "patient_new.html", user, status_code=422, errors=errors, values=values)

    def _course(
        request: Request, session: Session, user: UserRecord, patient_id: str, action: str = "plan.read"
    ) -> Course:
        try:
            return Records(session, user.actor()).course(
                patient_id, _as_of(request.query_params.get("as_of")), action=action
            )
        except NotFoundError as exc:
            raise PageInsteadError(
                _error(request, user, http_status(exc), "Patient not found", "There is no patient record with that id.")
            ) from None
        except StoreError as exc:  # an as_of out of range
            message = "; ".join(f"{p.field} {p.problem}" for p in exc.problems) or exc.message
            title = "Cannot show the record as of that date"
            raise PageInsteadError(_error(request, user, http_status(exc), title, _sentence(message) + ".")) from None

    @router.get("/clinic/patients/{patient_id}", name="web_patient")
    def patient_page(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        flashes = ["Patient record created."] if request.query_params.get("created") else []
        recorded = request.query_params.get("recorded")
        if recorded in FORMS_BY_TYPE:
            flashes.append(f"{FORMS_BY_TYPE[recorded].title}: recorded.")
        elif recorded == "retracted":
            flashes.append("The entry was retracted. The history keeps it, marked as retracted.")
        context = get_context(request)
        course = _course(request, session, user, patient_id)
        plan = _plan_for(context, course)
        now_phase, next_phase = current_and_next(plan, course.state.current_phase) if plan else (None, None)
        svg = render_timeline(timeline_events(course.events), course.as_of, title="Treatment timeline")
        by_id = {e.id: e for e in course.events}
        return _page(
            request,
            "patient.html",
            user,
            patient=course.patient,
            age=age_label(course.patient.birth_date, course.as_of),
            course=course,
            state=course.state,
            status_key=status_key(course.state),
            plan=plan,
            view=plan_view(plan, context.kb) if plan else None,
            missing=missing_fact_views(plan, context.kb) if plan else [],
            no_plan_reason=no_plan_reason(course),
            now_phase=now_phase,
            next_phase=next_phase,
            phase_labels=PHASE_LABELS,
            status_labels=COURSE_STATUS_LABELS,
            timeline_svg=svg,
            events=list(reversed(course.events)),
            by_id=by_id,
            event_label=event_label,
            choices=forms_for_state(course.state, dt.date.today()),
            flashes=flashes,
        )

    def _record_page(
        request: Request,
        user: UserRecord,
        course: Course,
        form_spec: EventForm | None,
        *,
        status_code: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        correcting: EventRecord | None = None,
    ) -> Response:
        return _page(
            request,
            "record.html",
            user,
            status_code=status_code,
            patient=course.patient,
            form=form_spec,
            choices=forms_for_state(course.state, dt.date.today()),
            errors=errors or {},
            values=values or {},
            correcting=correcting,
            correcting_label=event_label(correcting) if correcting else "",
            today=dt.date.today().isoformat(),
        )

    @router.get("/clinic/patients/{patient_id}/record", name="web_record")
    def record_form(
        request: Request, session: SessionDep, user: StaffUser, patient_id: str, type: str = "", correct: str = ""
    ) -> Response:
        course = _course(request, session, user, patient_id)
        if correct:
            target = next((e for e in course.events if e.id == correct), None)
            if target is None or target.superseded_by or target.type == "retracted":
                return _error(
                    request, user, 404, "Entry not found", "That entry does not exist or was already corrected."
                )
            return _record_page(
                request,
                user,
                course,
                FORMS_BY_TYPE[target.type],
                values=form_values_of(target.payload, target.date),
                correcting=target,
            )
        form_spec = next((f for f in forms_for_state(course.state, dt.date.today()) if f.type == type), None)
        return _record_page(request, user, course, form_spec)

    @router.post("/clinic/patients/{patient_id}/events", name="web_add_event")
    async def add_event(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        form = await request.form()
        data = {k: v for k, v in form.items() if isinstance(v, str)}
        event_type, event, problems = event_from_form(data)
        form_spec = FORMS_BY_TYPE.get(event_type or "")
        errors: dict[str, str] = {}
        status = 422
        if form_spec is None:
            return _error(request, user, 422, "Unknown kind of event", "This page cannot record that kind of event.")
        course = _course(request, session, user, patient_id)
        correcting = next((e for e in course.events if e.id == data.get("supersedes")), None)
        if not problems:
            expected = data.get("expected_version")
            try:
                Records(session, user.actor()).append_event(
                    patient_id, event, int(expected) if expected and expected.isdigit() else None
                )
            except ConflictError as exc:
                status = http_status(exc)
                errors["_form"] = (
                    "Someone else changed this record while you were on this page. "
                    "Nothing was saved. Check the record and enter the event again."
                )
            except StoreError as exc:
                problems = exc.problems or [Problem("_form", exc.message)]
            else:
                return RedirectResponse(f"/clinic/patients/{patient_id}?recorded={event_type}", status_code=303)
        labels = {"date": "Date", **{f.name: f.label for f in form_spec.fields}}
        for p in problems:
            name = form_field(form_spec, p.field) if p.field != "_form" else "_form"
            message = _field_message(labels[name], p.problem) if name in labels else _sentence(p.problem)
            errors.setdefault(name, message.rstrip(".") + ".")
        # The form is shown again with the patient's version now, so a resubmission is checked afresh.
        course = _course(request, session, user, patient_id)
        return _record_page(
            request, user, course, form_spec, status_code=status, errors=errors, values=data, correcting=correcting
        )

    @router.get("/clinic/patients/{patient_id}/events/{event_id}/retract", name="web_retract")
    def retract_form(
        request: Request, session: SessionDep, user: StaffUser, patient_id: str, event_id: str
    ) -> Response:
        course = _course(request, session, user, patient_id)
        target = next((e for e in course.events if e.id == event_id), None)
        if target is None or target.superseded_by or target.type == "retracted":
            return _error(request, user, 404, "Entry not found", "That entry does not exist or no longer counts.")
        return _page(
            request, "retract.html", user, patient=course.patient, target=target, label=event_label(target), errors={}
        )

    @router.post("/clinic/patients/{patient_id}/events/{event_id}/retract")
    async def retract(
        request: Request, session: SessionDep, user: StaffUser, patient_id: str, event_id: str
    ) -> Response:
        form = await request.form()
        expected = str(form.get("expected_version", ""))
        course = _course(request, session, user, patient_id)
        target = next((e for e in course.events if e.id == event_id), None)
        if target is None or target.superseded_by or target.type == "retracted":
            return _error(request, user, 404, "Entry not found", "That entry does not exist or no longer counts.")
        event = {"type": "retracted", "date": target.date.isoformat(), "supersedes": event_id}
        errors: dict[str, str] = {}
        status = 422
        try:
            Records(session, user.actor()).append_event(
                patient_id, event, int(expected) if expected.isdigit() else None
            )
        except ConflictError as exc:
            status = http_status(exc)
            errors["_form"] = "Someone else changed this record while you were on this page. Nothing was saved."
        except StoreError as exc:
            errors["_form"] = "; ".join(_sentence(p.problem) for p in exc.problems) or exc.message
            errors["_form"] = f"This entry cannot be retracted: {errors['_form'].rstrip('.')}."
        else:
            return RedirectResponse(f"/clinic/patients/{patient_id}?recorded=retracted", status_code=303)
        course = _course(request, session, user, patient_id)
        return _page(
            request,
            "retract.html",
            user,
            status_code=status,
            patient=course.patient,
            target=target,
            label=event_label(target),
            errors=errors,
        )

    @router.get("/clinic/patients/{patient_id}/plan.pdf", name="web_patient_pdf")
    def patient_pdf(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        context = get_context(request)
        course = _course(request, session, user, patient_id)
        plan = _plan_for(context, course)
        if plan is None:
            return _error(request, user, 409, "No plan yet", no_plan_reason(course) or "There is no plan to print.")
        state = course.state
        html = render(
            "clinician_pdf.html",
            patient=course.patient,
            patient_label=course.patient.display_name or course.patient.id,
            age=age_label(course.patient.birth_date, course.as_of),
            as_of=course.as_of.isoformat(),
            status_label=COURSE_STATUS_LABELS.get(status_key(state), status_key(state)),
            phase_label=PHASE_LABELS.get(state.current_phase, state.current_phase)
            if state.current_phase
            else "None in progress",
            plan=plan,
            view=plan_view(plan, context.kb),
            missing=missing_fact_views(plan, context.kb),
            contact=context.settings.site.care_team_contact,
        )
        return Response(
            html_to_pdf(html, variant="pdf/ua-1"),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="treatment-plan-{course.patient.id}.pdf"',
                "Cache-Control": "no-store",
            },
        )

    @router.get("/clinic/patients/{patient_id}/what-if", name="web_what_if")
    def what_if(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        context = get_context(request)
        course = _course(request, session, user, patient_id)
        if course.facts is None:
            return _error(request, user, 409, "No plan yet", "Record a diagnosis before trying a what-if.")
        before = context.recommender.recommend(course.facts, with_missing_facts=False)
        params = request.query_params
        values = form_values(course.facts)
        after = None
        changes: list[Change] = []
        errors: dict[str, str] = {}
        if params.get("try"):
            values = {
                fi.name: params.getlist(fi.name) if fi.kind.type == "list" else params.get(fi.name, "")
                for fi in FACT_INPUTS
            }
            facts, problems = facts_from_form(values)
            if facts is None:
                labels = {fi.name: fi.label for fi in FACT_INPUTS}
                for p in problems:
                    name = p.field if p.field in labels else "_form"
                    errors.setdefault(
                        name, _field_message(labels[name], p.problem) if name in labels else _sentence(p.problem)
                    )
            else:
                after = context.recommender.recommend(facts, with_missing_facts=False)
                changes = compare_plans(context.kb, before, after)
        return _page(
            request,
            "what_if.html",
            user,
            status_code=422 if errors else 200,
            patient=course.patient,
            inputs=FACT_INPUTS,
            values=values,
            errors=errors,
            before=before,
            after=after,
            changes=changes,
        )

    # knowledge -----------------------------------------------------------------------------------

    @router.post("/language", name="web_language")
    def language(
        request: Request,
        session: SessionDep,
        language: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "",
    ) -> Response:
        """The switch on every page: the account's preference when logged in, and a cookie."""
        lang = as_lang(language)
        if lang is None:
            return JSONResponse(
                {"error": "invalid language", "details": [{"field": "language", "problem": "must be en or es"}]},
                status_code=422,
            )
        user = current_user_from_cookie(request, session)
        if user is not None:
            set_account_language(session, user.actor(), lang)
        response = RedirectResponse(_safe_next(next) or "/", status_code=303)
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    @router.get("/learn", name="web_knowledge")
    def knowledge(request: Request, session: SessionDep, q: str = "") -> Response:
        user = current_user_from_cookie(request, session)
        context = get_context(request)
        q = q.strip()[:200]
        if user is not None:
            request.state.account_language = account_language(session, user.id)
        lang = request_language(request)
        hits = knowledge_index(context).search(q, 10, kinds=WEB_SEARCH_KINDS, lang=lang) if q else []
        return _page(request, "knowledge.html", user, q=q, hits=hits, kb=family_kb(context.kb, lang))

    from allpath.web.admin import add_admin_routes

    add_admin_routes(router)
    return router


def _sentence(problem: str) -> str:
    text = problem.strip()
    return (text[0].upper() + text[1:]) if text else text


def _field_message(label: str, problem: str) -> str:
    text = f"{label} {problem}" if problem.startswith(("is ", "must ", "are ")) else f"{label}: {problem}"
    return text.rstrip(".") + "."


def _problem_map(problems: list[Problem], labels: dict[str, str]) -> dict[str, str]:
    return {
        (p.field if p.field in labels else "_form"): (
            _field_message(labels[p.field], p.problem) if p.field in labels else _sentence(p.problem)
        )
        for p in problems
    }
