"""The companion's tables on SQLite and PostgreSQL: access, urgency stored with the entry,
dose ticks replaced by a later tick, calendar links kept as hashes and revoked."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from allpath.course.companion import load_companion
from allpath.store.companion import FamilyRecords, calendar_by_secret
from allpath.store.models import CalendarLinkRow
from allpath.store.service import SYSTEM, Actor, ForbiddenError, InvalidInputError, NotFoundError, Records


def test_companion_store_on_each_backend(app) -> None:  # type: ignore[no-untyped-def]
    context = app.state.allpath
    companion = load_companion()
    today = dt.date.today()
    with context.sessions() as session:
        records = Records(session, SYSTEM)
        own = records.create_patient(dt.date(2016, 1, 1), None).id
        other = records.create_patient(dt.date(2016, 1, 1), None).id
        team = FamilyRecords(session, SYSTEM, companion)
        team.set_call_settings(own, 38.3, ["pain"])
        start = today - dt.timedelta(days=2)
        team.add_prescription(own, "mercaptopurine", 50, "daily", start, 1000, 100000, start)
        family = FamilyRecords(session, Actor("store-family", "patient", None, own), companion)

        entry = family.add_diary_entry(own, 38.2, {"pain": 3})
        assert entry.urgent and entry.reasons == ("pain",) and entry.threshold_c == 38.3
        assert own in team.urgent_patients() and other not in team.urgent_patients()

        family.record_doses(own, {("mercaptopurine", today): False}, today)
        family.record_doses(own, {("mercaptopurine", today): True}, today)
        _rx, doses = family.medicines(own, today)
        assert doses == {("mercaptopurine", today): True}

        secret = family.create_calendar_link(own)
        hashes = session.scalars(select(CalendarLinkRow.token_hash)).all()
        assert secret not in hashes
        assert calendar_by_secret(session, secret)[0] == own
        family.revoke_calendar_links(own)
        with pytest.raises(NotFoundError):
            calendar_by_secret(session, secret)

        with pytest.raises(NotFoundError):
            family.add_diary_entry(other, 39.0, {})
        with pytest.raises(ForbiddenError):
            family.set_call_settings(own, 37.8, [])
        with pytest.raises(InvalidInputError) as bad:
            team.set_call_settings(own, 42.0, ["not-an-item"])
        assert {p.field for p in bad.value.problems} == {"fever_celsius", "extra_items"}
