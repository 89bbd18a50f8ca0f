"""The timeline picture: phases as bars, events as markers, and everything said in words too."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

from allpath.web.timeline import TimelineEvent, describe, phase_bars, render_timeline

SVG = "{http://www.w3.org/2000/svg}"
EVENTS = [
    TimelineEvent(date(2026, 1, 5), "diagnosed", "Diagnosed (B-cell, Ph-negative)"),
    TimelineEvent(date(2026, 1, 6), "phase_started", "Induction started", phase="induction"),
    TimelineEvent(date(2026, 2, 2), "remission_achieved", "Complete remission"),
    TimelineEvent(date(2026, 2, 3), "phase_completed", "Induction completed", phase="induction"),
    TimelineEvent(date(2026, 2, 10), "phase_started", "Consolidation started", phase="consolidation"),
]
AS_OF = date(2026, 4, 1)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_completed_and_open_phases_become_bars() -> None:
    bars = phase_bars(EVENTS, AS_OF)
    assert [(b.phase, b.start, b.end, b.ongoing) for b in bars] == [
        ("induction", date(2026, 1, 6), date(2026, 2, 3), False),
        ("consolidation", date(2026, 2, 10), AS_OF, True),
    ]


def test_svg_is_well_formed_with_title_and_description() -> None:
    root = parse(render_timeline(EVENTS, AS_OF))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "tl-title tl-desc"
    assert root.find(f"{SVG}title").text == "Treatment timeline"
    desc = root.find(f"{SVG}desc").text
    assert "Induction from 2026-01-06 to 2026-02-03" in desc
    assert "Consolidation from 2026-02-10 ongoing on 2026-04-01" in desc
    assert "2026-02-02: Complete remission" in desc


def test_one_bar_per_phase_and_one_marker_per_other_event() -> None:
    root = parse(render_timeline(EVENTS, AS_OF))
    groups = root.findall(f"{SVG}g")
    bars = [g for g in groups if "tl-bar" in g.get("class", "")]
    markers = [g for g in groups if g.get("class") == "tl-event"]
    assert [b.get("data-phase") for b in bars] == ["induction", "consolidation"]
    assert "tl-ongoing" in bars[1].get("class")
    assert [m.get("data-kind") for m in markers] == ["diagnosed", "remission_achieved"]


def test_events_differ_by_shape_and_label_not_colour_alone() -> None:
    root = parse(render_timeline(EVENTS, AS_OF))
    markers = [g for g in root.findall(f"{SVG}g") if g.get("class") == "tl-event"]
    shapes = [m.find(f"{SVG}g").get("class") for m in markers]
    assert shapes == ["tl-marker tl-diamond", "tl-marker tl-circle"]
    labels = [m.find(f"{SVG}text").text for m in markers]
    assert labels == ["Diagnosed (B-cell, Ph-negative)", "Complete remission"]


def test_bars_are_placed_in_date_order_left_to_right() -> None:
    root = parse(render_timeline(EVENTS, AS_OF))
    rects = [g.find(f"{SVG}rect") for g in root.findall(f"{SVG}g") if "tl-bar" in g.get("class", "")]
    x_induction, x_consolidation = (float(r.get("x")) for r in rects)
    assert x_induction < x_consolidation


def test_text_is_escaped() -> None:
    evil = [TimelineEvent(date(2026, 1, 1), "diagnosed", "<script>alert(1)</script> & more")]
    svg = render_timeline(evil, AS_OF)
    assert "<script>" not in svg
    parse(svg)  # still well-formed


def test_no_events_says_so() -> None:
    svg = render_timeline([], AS_OF)
    assert "No events recorded yet." in svg
    assert describe([], AS_OF) == "No events recorded yet."
    parse(svg)


def test_completion_without_start_still_draws_a_bar() -> None:
    events = [TimelineEvent(date(2026, 3, 1), "phase_completed", "Induction completed", phase="induction")]
    (bar,) = phase_bars(events, AS_OF)
    assert bar.start == bar.end == date(2026, 3, 1)


def test_store_events_leave_out_superseded_and_retractions() -> None:
    import datetime as dt

    from allpath.store.service import EventRecord
    from allpath.web.routes import timeline_events

    def record(event_id: str, type_: str, day: int, payload: dict, **kw) -> EventRecord:  # type: ignore[type-arg]
        at = dt.datetime(2026, 1, day, tzinfo=dt.UTC)
        return EventRecord(
            event_id,
            "P0000000000",
            day,
            type_,
            at.date(),
            payload,
            kw.get("supersedes"),
            "doc",
            at,
            kw.get("superseded_by"),
        )

    records = [
        record("e1", "diagnosed", 1, {"lineage": "T", "ph_status": "positive", "cns_involvement": True}),
        record("e2", "phase_started", 2, {"phase": "induction"}, superseded_by="e3"),
        record("e3", "retracted", 3, {}, supersedes="e2"),
        record("e4", "phase_started", 4, {"phase": "induction"}),
    ]
    events = timeline_events(records)
    assert [(e.kind, e.label, e.phase) for e in events] == [
        ("diagnosed", "Diagnosed (T-cell, Ph-positive, CNS involved)", None),
        ("phase_started", "Induction started", "induction"),
    ]


def test_relapse_stops_the_open_phase_so_maintenance_is_not_ongoing_beside_reinduction() -> None:
    events = [
        *EVENTS[:4],
        TimelineEvent(date(2026, 2, 10), "phase_started", "Maintenance started", phase="maintenance"),
        TimelineEvent(date(2026, 3, 1), "relapsed", "Relapse (bone marrow)"),
        TimelineEvent(date(2026, 3, 5), "phase_started", "Re-induction started", phase="reinduction"),
    ]
    bars = phase_bars(events, AS_OF)
    assert [(b.phase, b.end, b.ongoing, b.stopped_by) for b in bars] == [
        ("induction", date(2026, 2, 3), False, None),
        ("maintenance", date(2026, 3, 1), False, "Relapse (bone marrow)"),
        ("reinduction", AS_OF, True, None),
    ]
    desc = describe(events, AS_OF)
    assert "Maintenance from 2026-02-10 to 2026-03-01, stopped by: Relapse (bone marrow)." in desc
    svg = render_timeline(events, AS_OF)
    assert "Maintenance (ongoing)" not in svg and "tl-stopped" in svg
