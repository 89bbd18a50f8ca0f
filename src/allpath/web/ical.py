"""The family calendar as an iCalendar feed (RFC 5545), built with the `icalendar` library."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from icalendar import Calendar, Event

from allpath.store.companion import CalendarEvent
from allpath.web.i18n import gettext_for


def calendar_feed(events: Iterable[CalendarEvent], lang: str) -> bytes:
    """One VEVENT per visit or lab draw, in UTC; titles in the family's language and nothing
    else about the child (a calendar app may sync the feed to other devices and services)."""
    _ = gettext_for(lang)
    titles = {"visit": _("Clinic visit"), "lab": _("Blood test")}
    cal = Calendar()
    cal.add("prodid", "-//allpath//family calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", _("Treatment calendar"))
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for e in events:
        event = Event()
        event.add("uid", e.uid)
        event.add("dtstamp", stamp)
        start = e.starts_at.astimezone(dt.UTC)
        event.add("dtstart", start)
        event.add("dtend", start + dt.timedelta(minutes=e.minutes))
        event.add("summary", titles.get(e.kind, e.kind))
        event.add("location", e.place)
        cal.add_component(event)
    return bytes(cal.to_ical())
