"""The family companion's routes: the family's home (our child's plan), the symptom diary, the
maintenance medicine log, the calendar and its feed; and the care team's page that sets the
contacts, the call settings, the doses and the visits, and reads the diary and adherence.

Routes are thin: access checks, auditing and validation are the store's (`FamilyRecords`): a
family account reads and writes only its own child's record (anyone else's answers 404).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from allpath.course.companion import GRADES, MEDICINES, Companion, Lang, due_dates, format_temperature, load_companion
from allpath.facts import Problem
from allpath.http.deps import SessionDep, get_context
from allpath.httperrors import http_status
from allpath.store.auth import UserRecord
from allpath.store.companion import (
    CALENDAR_KINDS,
    Contact,
    FamilyRecords,
    calendar_by_secret,
)
from allpath.store.service import Course, NotFoundError, Records, StoreError
from allpath.web.companion import CallBox, adherence_rows, call_box, diary_chart, roadmap
from allpath.web.family import build_family_plan, family_kb
from allpath.web.i18n import as_lang, gettext_for
from allpath.web.ical import calendar_feed
from allpath.web.render import html_to_pdf, render
from allpath.web.routes import (
    FamilyUser,
    PageInsteadError,
    StaffUser,
    _error,
    _page,
    _PageRoute,
    _plan_for,
    request_language,
    timeline_events,
)
from allpath.web.timeline import render_timeline

DIARY_DAYS = 30
CONTACT_FIELDS = ("name", "role", "day_phone", "after_hours_phone")
WEEK = 7


def companion_of(request: Request) -> Companion:
    """The companion's cited texts, loaded once per service and kept on its context."""
    extra = get_context(request).extra
    if "companion" not in extra:
        extra["companion"] = load_companion()
    companion: Companion = extra["companion"]
    return companion


def _lang(request: Request) -> Lang:
    return as_lang(request_language(request)) or "en"


def _not_found(request: Request, user: UserRecord) -> PageInsteadError:
    _ = gettext_for(_lang(request))
    return PageInsteadError(
        _error(request, user, 404, _("Plan not found"), _("There is no plan here for this account."))
    )


def _records(request: Request, session: Session, user: UserRecord) -> FamilyRecords:
    return FamilyRecords(session, user.actor(), companion_of(request))


def _call_box(request: Request, records: FamilyRecords, patient_id: str, phase: str | None = None) -> CallBox:
    settings, contacts = records.call_settings(patient_id), records.contacts(patient_id)
    return call_box(records.companion, settings, contacts, _lang(request), phase)


def _problems_to_errors(problems: list[Problem], labels: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for p in problems:
        key = p.field if p.field in labels else "_form"
        text = f"{p.problem}" if key == "_form" else p.problem
        errors.setdefault(key, text[0].upper() + text[1:] + ("" if text.endswith(".") else "."))
    return errors


def _float(raw: str) -> float | None:
    raw = raw.strip().replace(",", ".")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(raw) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(raw)
    return value


def create_family_router() -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=_PageRoute)

    # --- the family's home: our child's plan ------------------------------------------------------

    def _family(request: Request, session: Session, user: UserRecord, patient_id: str) -> dict[str, Any]:
        context = get_context(request)
        lang = _lang(request)
        try:
            course = Records(session, user.actor()).course(patient_id, action="family_plan.read")
            records = _records(request, session, user)
            box = _call_box(request, records, patient_id, course.state.current_phase)
        except NotFoundError:
            raise _not_found(request, user) from None
        kb = family_kb(context.kb, lang)
        plan = _plan_for(context, course)
        family = build_family_plan(plan, kb, current_phase=course.state.current_phase) if plan else None
        steps = roadmap(kb, course.events, course.state.current_phase, course.state.completed_phases) if plan else []
        if family is not None:
            # The road's timings are the KB phases' words: their sources join the page's numbered list.
            for step in steps:
                for c in step.citations:
                    family.references.setdefault((c.source_id, c.section), len(family.references) + 1)
        label = course.patient.display_name or course.patient.id
        return {
            "f": family,
            "box": box,
            "steps": steps,
            "patient_label": label,
            "patient_id": course.patient.id,
            "as_of": course.as_of.isoformat(),
        }

    @router.get("/my-plan", name="web_my_plan")
    def my_plan(request: Request, user: FamilyUser) -> Response:
        if user.patient_id is None:
            _ = gettext_for(_lang(request))
            return _error(
                request, user, 404, _("No plan for this account"), _("This account is not linked to a patient.")
            )
        return RedirectResponse(f"/plan/{user.patient_id}", status_code=303)

    @router.get("/plan/{patient_id}", name="web_family")
    def family_page(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        result = _family(request, session, user, patient_id)
        return _page(request, "family.html", user, pdf_url=f"/plan/{patient_id}/plan.pdf", **result)

    @router.get("/plan/{patient_id}/plan.pdf", name="web_family_pdf")
    def family_pdf(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        result = _family(request, session, user, patient_id)
        lang = _lang(request)
        pdf = html_to_pdf(render("family_pdf.html", lang=lang, **result))
        name = "nuestro-plan.pdf" if lang == "es" else "my-treatment-plan.pdf"
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )

    # --- the symptom diary ---------------------------------------------------------------------------

    def _diary_page(
        request: Request,
        session: Session,
        user: UserRecord,
        patient_id: str,
        *,
        status_code: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        saved: Any = None,
    ) -> Response:
        records = _records(request, session, user)
        try:
            box = _call_box(request, records, patient_id)
            entries = records.diary(patient_id, days=DIARY_DAYS)
        except NotFoundError:
            raise _not_found(request, user) from None
        return _page(
            request,
            "family_diary.html",
            user,
            status_code=status_code,
            patient_id=patient_id,
            box=box,
            entries=list(reversed(entries)),
            symptoms=records.companion.symptoms,
            symptom_names={s.id: s.label(_lang(request)) for s in records.companion.symptoms},
            grades=GRADES,
            errors=errors or {},
            values=values or {},
            saved=saved,
            temperature=lambda c: format_temperature(c, _lang(request)),
        )

    @router.get("/plan/{patient_id}/diary", name="web_family_diary")
    def diary(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        return _diary_page(request, session, user, patient_id)

    @router.post("/plan/{patient_id}/diary")
    async def diary_add(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        _ = gettext_for(_lang(request))
        records = _records(request, session, user)
        errors: dict[str, str] = {}
        temperature: float | None = None
        try:
            temperature = _float(values.get("temperature", ""))
        except ValueError:
            errors["temperature"] = _("Enter the temperature as a number, like 37.5.")
        unit = values.get("unit", "c")
        if temperature is not None and unit == "f":
            temperature = round((temperature - 32) * 5 / 9, 1)
        grades: dict[str, int] = {}
        for s in records.companion.symptoms:
            raw = values.get(f"grade_{s.id}", "0")
            if raw not in {str(g) for g in GRADES}:
                errors[f"grade_{s.id}"] = _("Choose one answer.")
            else:
                grades[s.id] = int(raw)
        if not errors:
            try:
                entry = records.add_diary_entry(patient_id, temperature, grades)
            except NotFoundError:
                raise _not_found(request, user) from None
            except StoreError as exc:
                for p in exc.problems:
                    if p.field == "temperature_c" and "between" in p.problem:
                        errors["temperature"] = _("Enter a temperature between 34 and 43 °C (93 and 109 °F).")
                    elif p.field == "temperature_c":
                        errors["temperature"] = _("Enter a temperature or at least one symptom.")
                    else:
                        errors.setdefault("_form", _("Something in the form is not right. Check it and try again."))
            else:
                return _diary_page(request, session, user, patient_id, status_code=201, saved=entry)
        return _diary_page(request, session, user, patient_id, status_code=422, errors=errors, values=values)

    # --- the maintenance medicine log -----------------------------------------------------------------

    def _medicines_page(
        request: Request,
        session: Session,
        user: UserRecord,
        patient_id: str,
        week_end: dt.date,
        *,
        status_code: int = 200,
        errors: dict[str, str] | None = None,
        saved: int = 0,
    ) -> Response:
        records = _records(request, session, user)
        today = dt.date.today()
        try:
            prescriptions, doses = records.medicines(patient_id, today)
        except NotFoundError:
            raise _not_found(request, user) from None
        start = week_end - dt.timedelta(days=WEEK - 1)
        pure = [p.pure() for p in prescriptions]
        rows = []
        for medicine in MEDICINES:
            for day in reversed(due_dates(pure, medicine, start, min(week_end, today))):
                rows.append({"medicine": medicine, "day": day, "value": doses.get((medicine, day))})
        current = {
            m: next((p for p in reversed(prescriptions) if p.medicine == m and p.start <= today), None)
            for m in MEDICINES
        }
        first = min((p.start for p in prescriptions), default=None)
        return _page(
            request,
            "family_medicines.html",
            user,
            status_code=status_code,
            patient_id=patient_id,
            rows=rows,
            current=current,
            week_start=start,
            week_end=week_end,
            earlier=(start - dt.timedelta(days=1)).isoformat() if first is not None and first < start else None,
            later=(week_end + dt.timedelta(days=WEEK)).isoformat() if week_end < today else None,
            errors=errors or {},
            saved=saved,
        )

    def _week_end(raw: str | None) -> dt.date:
        today = dt.date.today()
        try:
            end = dt.date.fromisoformat(raw) if raw else today
        except ValueError:
            end = today
        return min(end, today)

    @router.get("/plan/{patient_id}/medicines", name="web_family_medicines")
    def medicines(
        request: Request, session: SessionDep, user: FamilyUser, patient_id: str, week_end: str | None = None
    ) -> Response:
        return _medicines_page(request, session, user, patient_id, _week_end(week_end))

    @router.post("/plan/{patient_id}/medicines")
    async def medicines_record(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        _ = gettext_for(_lang(request))
        week_end = _week_end(values.get("week_end"))
        ticks: dict[tuple[str, dt.date], bool] = {}
        errors: dict[str, str] = {}
        for key, value in values.items():
            if not key.startswith("dose:") or value == "":
                continue
            _prefix, medicine, day = [*key.split(":"), "", ""][:3]
            try:
                when = dt.date.fromisoformat(day)
            except ValueError:
                errors[key] = _("This day is not a date.")
                continue
            if medicine not in MEDICINES or value not in ("taken", "missed"):
                errors[key] = _("Choose taken or missed.")
                continue
            ticks[(medicine, when)] = value == "taken"
        if not ticks and not errors:
            errors["_form"] = _("Choose taken or missed for at least one dose.")
        if not errors:
            try:
                saved = _records(request, session, user).record_doses(patient_id, ticks, dt.date.today())
            except NotFoundError:
                raise _not_found(request, user) from None
            except StoreError as exc:
                for p in exc.problems:
                    errors[p.field.replace("dose.", "dose:").replace(".", ":", 1)] = _(
                        "No dose was due that day, or the day is still ahead."
                    )
            else:
                return _medicines_page(request, session, user, patient_id, week_end, saved=saved)
        return _medicines_page(request, session, user, patient_id, week_end, status_code=422, errors=errors)

    # --- the calendar ----------------------------------------------------------------------------------

    def _calendar_page(
        request: Request, session: Session, user: UserRecord, patient_id: str, *, new_link: str | None = None
    ) -> Response:
        records = _records(request, session, user)
        try:
            events = records.calendar(patient_id)
            links = records.active_calendar_links(patient_id)
        except NotFoundError:
            raise _not_found(request, user) from None
        base = str(request.base_url).rstrip("/")
        return _page(
            request,
            "family_calendar.html",
            user,
            patient_id=patient_id,
            events=events,
            links=links,
            new_link=f"{base}/calendar/{new_link}.ics" if new_link else None,
            feed_url=f"/plan/{patient_id}/calendar.ics",
        )

    @router.get("/plan/{patient_id}/calendar", name="web_family_calendar")
    def calendar(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        return _calendar_page(request, session, user, patient_id)

    @router.post("/plan/{patient_id}/calendar/link", name="web_family_calendar_link")
    def calendar_link(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        try:
            secret = _records(request, session, user).create_calendar_link(patient_id)
        except NotFoundError:
            raise _not_found(request, user) from None
        return _calendar_page(request, session, user, patient_id, new_link=secret)

    @router.post("/plan/{patient_id}/calendar/revoke", name="web_family_calendar_revoke")
    def calendar_revoke(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        try:
            _records(request, session, user).revoke_calendar_links(patient_id)
        except NotFoundError:
            raise _not_found(request, user) from None
        return RedirectResponse(f"/plan/{patient_id}/calendar", status_code=303)

    def _ics(request: Request, events: Any) -> Response:
        body = calendar_feed(events, _lang(request))
        return Response(body, media_type="text/calendar; charset=utf-8", headers={"Cache-Control": "no-store"})

    @router.get("/plan/{patient_id}/calendar.ics", name="web_family_calendar_ics")
    def calendar_ics(request: Request, session: SessionDep, user: FamilyUser, patient_id: str) -> Response:
        try:
            events = _records(request, session, user).calendar(patient_id)
        except NotFoundError:
            raise _not_found(request, user) from None
        return _ics(request, events)

    @router.get("/calendar/{secret}.ics", name="web_calendar_by_link")
    def calendar_by_link(request: Request, session: SessionDep, secret: str) -> Response:
        try:
            _patient, events = calendar_by_secret(session, secret)
        except NotFoundError:
            return Response("not found", status_code=404, media_type="text/plain")
        return _ics(request, events)

    # --- the care team's page ----------------------------------------------------------------------

    def _team_page(
        request: Request,
        session: Session,
        user: UserRecord,
        patient_id: str,
        *,
        status_code: int = 200,
        errors: dict[str, dict[str, str]] | None = None,
        values: dict[str, dict[str, str]] | None = None,
        flashes: list[str] | None = None,
    ) -> Response:
        records = _records(request, session, user)
        companion = records.companion
        today = dt.date.today()
        try:
            course: Course = Records(session, user.actor()).course(patient_id, action="family_companion.read")
            settings = records.call_settings(patient_id)
            contacts = records.contacts(patient_id)
            entries = records.diary(patient_id, days=DIARY_DAYS)
            prescriptions, _doses = records.medicines(patient_id, today)
            adherence = {days: records.adherence(patient_id, today, days) for days in (30, 90)}
            events = records.calendar(patient_id)
        except NotFoundError as exc:
            return _error(
                request, user, http_status(exc), "Patient not found", "There is no patient record with that id."
            )
        refs_box = call_box(companion, settings, contacts, "en")
        chart = diary_chart(
            entries,
            settings.fever_celsius,
            today - dt.timedelta(days=DIARY_DAYS),
            today,
            lambda sid: companion.symptom(sid).en,
        )
        timeline = render_timeline(
            timeline_events(course.events), course.as_of, title=f"Treatment timeline of {patient_id}"
        )
        threshold = companion.adherence.threshold
        return _page(
            request,
            "clinic_family.html",
            user,
            status_code=status_code,
            patient=course.patient,
            patient_id=patient_id,
            settings=settings,
            contacts=contacts,
            box=refs_box,
            entries=list(reversed(entries)),
            chart_svg=chart,
            timeline_svg=timeline,
            prescriptions=prescriptions,
            adherence={d: adherence_rows(r, threshold) for d, r in adherence.items()},
            adherence_text=companion.adherence.en,
            adherence_refs=[(companion.source_map[c.source_id], c.section) for c in companion.adherence.citations],
            threshold_percent=round(threshold * 100),
            events=events,
            companion=companion,
            kinds=CALENDAR_KINDS,
            medicines=MEDICINES,
            errors=errors or {},
            values=values or {},
            flashes=flashes or [],
            today=today.isoformat(),
        )

    @router.get("/clinic/patients/{patient_id}/family", name="web_clinic_family")
    def team_page(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        flashes = [f"{request.query_params['saved'].capitalize()}: saved."] if request.query_params.get("saved") else []
        return _team_page(request, session, user, patient_id, flashes=flashes)

    def _team_write(
        request: Request,
        session: Session,
        user: UserRecord,
        patient_id: str,
        form_name: str,
        values: dict[str, str],
        labels: dict[str, str],
        write: Any,
        parse_errors: dict[str, str],
    ) -> Response:
        errors = dict(parse_errors)
        if not errors:
            try:
                write()
            except NotFoundError as exc:
                return _error(
                    request, user, http_status(exc), "Patient not found", "There is no patient record with that id."
                )
            except StoreError as exc:
                errors = _problems_to_errors(exc.problems or [Problem("_form", exc.message)], labels)
            else:
                return RedirectResponse(f"/clinic/patients/{patient_id}/family?saved={form_name}", status_code=303)
        return _team_page(
            request, session, user, patient_id, status_code=422, errors={form_name: errors}, values={form_name: values}
        )

    async def _form(request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    @router.post("/clinic/patients/{patient_id}/family/contacts", name="web_clinic_family_contacts")
    async def team_contacts(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        values = await _form(request)
        contacts: list[Contact] = []
        # The store names a problem by its place in the list it got (`contacts[0].day_phone`);
        # the form's rows may have gaps, so map it back to the row's own field.
        fields: dict[str, str] = {}
        for i in range(4):
            row = [values.get(f"{f}_{i}", "").strip() for f in CONTACT_FIELDS]
            if any(row):
                fields.update({f"contacts[{len(contacts)}].{f}": f"{f}_{i}" for f in CONTACT_FIELDS})
                contacts.append(Contact(*row))
        try:
            _records(request, session, user).set_contacts(patient_id, contacts)
        except NotFoundError as exc:
            return _error(
                request, user, http_status(exc), "Patient not found", "There is no patient record with that id."
            )
        except StoreError as exc:
            errors = {fields.get(p.field, "_form"): p.problem[0].upper() + p.problem[1:] + "." for p in exc.problems}
            return _team_page(
                request,
                session,
                user,
                patient_id,
                status_code=422,
                errors={"contacts": errors},
                values={"contacts": values},
            )
        return RedirectResponse(f"/clinic/patients/{patient_id}/family?saved=contacts", status_code=303)

    @router.post("/clinic/patients/{patient_id}/family/settings", name="web_clinic_family_settings")
    async def team_settings(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        values = await _form(request)
        form = await request.form()
        extra = [v for v in form.getlist("extra_items") if isinstance(v, str)]
        parse_errors: dict[str, str] = {}
        fever = 0.0
        try:
            parsed = _float(values.get("fever_celsius", ""))
            if parsed is None:
                parse_errors["fever_celsius"] = "Enter the fever threshold in °C."
            else:
                fever = parsed
        except ValueError:
            parse_errors["fever_celsius"] = "Enter the fever threshold as a number, like 38.0."
        records = _records(request, session, user)
        return _team_write(
            request,
            session,
            user,
            patient_id,
            "settings",
            values,
            {"fever_celsius": "", "extra_items": ""},
            lambda: records.set_call_settings(patient_id, fever, extra),
            parse_errors,
        )

    @router.post("/clinic/patients/{patient_id}/family/prescriptions", name="web_clinic_family_prescriptions")
    async def team_prescriptions(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        values = await _form(request)
        parse_errors: dict[str, str] = {}
        parsed: dict[str, Any] = {}
        for name, kind in (
            ("dose_mg", "number"),
            ("anc_per_ul", "integer"),
            ("platelets_per_ul", "integer"),
            ("start", "date"),
            ("counts_date", "date"),
        ):
            raw = values.get(name, "").strip()
            try:
                if kind == "date":
                    parsed[name] = dt.date.fromisoformat(raw)
                elif kind == "integer":
                    parsed[name] = int(raw)
                else:
                    number = _float(raw)
                    if number is None:
                        raise ValueError(raw)
                    parsed[name] = number
            except ValueError:
                parse_errors[name] = {
                    "date": "Enter a date as YYYY-MM-DD.",
                    "integer": "Enter a whole number.",
                    "number": "Enter a number.",
                }[kind]
        records = _records(request, session, user)
        labels = {
            k: ""
            for k in ("medicine", "dose_mg", "frequency", "start", "anc_per_ul", "platelets_per_ul", "counts_date")
        }
        return _team_write(
            request,
            session,
            user,
            patient_id,
            "prescriptions",
            values,
            labels,
            lambda: records.add_prescription(
                patient_id,
                values.get("medicine", ""),
                parsed["dose_mg"],
                values.get("frequency", ""),
                parsed["start"],
                parsed["anc_per_ul"],
                parsed["platelets_per_ul"],
                parsed["counts_date"],
            ),
            parse_errors,
        )

    @router.post("/clinic/patients/{patient_id}/family/calendar", name="web_clinic_family_calendar")
    async def team_calendar(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        values = await _form(request)
        parse_errors: dict[str, str] = {}
        starts_at = dt.datetime.now(dt.UTC)
        minutes = 0
        try:
            local = dt.datetime.fromisoformat(values.get("starts_at", "").strip())
            offset = int(values.get("utc_offset_minutes", "0") or 0)
            starts_at = local.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset)))
        except (ValueError, OverflowError):
            parse_errors["starts_at"] = "Enter the date and time, like 2026-12-10T09:30."
        try:
            minutes = int(values.get("minutes", ""))
        except ValueError:
            parse_errors["minutes"] = "Enter the length in minutes."
        records = _records(request, session, user)
        return _team_write(
            request,
            session,
            user,
            patient_id,
            "calendar",
            values,
            {"kind": "", "starts_at": "", "minutes": "", "place": ""},
            lambda: records.add_calendar_event(
                patient_id, values.get("kind", ""), starts_at, minutes, values.get("place", "")
            ),
            parse_errors,
        )

    @router.post("/clinic/patients/{patient_id}/family/diary-seen", name="web_clinic_family_seen")
    def team_diary_seen(request: Request, session: SessionDep, user: StaffUser, patient_id: str) -> Response:
        try:
            _records(request, session, user).mark_diary_seen(patient_id)
        except NotFoundError as exc:
            return _error(
                request, user, http_status(exc), "Patient not found", "There is no patient record with that id."
            )
        return RedirectResponse(f"/clinic/patients/{patient_id}/family?saved=diary", status_code=303)

    return router
