"""The timeline picture: a patient's course as an SVG, phases as bars over time, events as markers.

Accessible by construction: the SVG has a <title> and a <desc> that says in words everything
the picture shows; every bar carries its phase name as text, every marker its own shape and a
text label, so nothing is told by colour alone. The markup is built here (not in a template)
because the layout is arithmetic; every piece of text in it is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from allpath.course import PHASE_ENDING_EVENTS
from allpath.explain.labels import PHASE_LABELS

# Fill colours chosen for >= 4.5:1 contrast against the white label text on the bar.
PHASE_FILLS = {
    "induction": "#8a2b0e",
    "consolidation": "#1d4f91",
    "maintenance": "#2b6a2f",
    "reinduction": "#6b2a7a",
    "cns_prophylaxis": "#4a4a4a",
}
# Marker shape per kind of event: a shape, not only a colour, tells the kinds apart.
MARKERS = {
    "diagnosed": "diamond",
    "remission_achieved": "circle",
    "relapsed": "triangle",
    "induction_failed": "cross",
    "hospice_started": "square",
    "treatment_completed": "circle",
}

WIDTH = 860
LEFT = 130  # room for lane names
RIGHT = 30
LANE_HEIGHT = 30
TOP = 40
LABEL_ROWS = 3


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One dated thing on the timeline. `phase` is set for phase_started / phase_completed."""

    on: date
    kind: str
    label: str
    phase: str | None = None


@dataclass(frozen=True, slots=True)
class PhaseBar:
    phase: str
    start: date
    end: date
    ongoing: bool
    # Label of the event that stopped the phase before it was completed (a relapse, say).
    stopped_by: str | None = None

    @property
    def label(self) -> str:
        return PHASE_LABELS.get(self.phase, self.phase.replace("_", " ").capitalize())


def phase_bars(events: Iterable[TimelineEvent], as_of: date) -> list[PhaseBar]:
    """Pair each phase_started with the next phase_completed of the same phase; open ones run to as_of.

    An event that ends the phase under way in the course (a relapse, a failed induction,
    hospice care, death) stops the open bars on its date.
    """
    bars: list[PhaseBar] = []
    open_: dict[str, date] = {}
    for e in sorted(events, key=lambda e: e.on):
        if e.kind in PHASE_ENDING_EVENTS:
            bars.extend(
                PhaseBar(phase, start, e.on, ongoing=False, stopped_by=e.label) for phase, start in open_.items()
            )
            open_.clear()
        if e.phase is None:
            continue
        if e.kind == "phase_started":
            open_[e.phase] = e.on
        elif e.kind == "phase_completed":
            start = open_.pop(e.phase, e.on)
            bars.append(PhaseBar(e.phase, start, e.on, ongoing=False))
    for phase, start in open_.items():
        bars.append(PhaseBar(phase, start, max(as_of, start), ongoing=True))
    return sorted(bars, key=lambda b: (b.start, b.end))


def _span(events: Sequence[TimelineEvent], as_of: date) -> tuple[date, date]:
    first = min(e.on for e in events)
    last = max(max(e.on for e in events), as_of)
    if last <= first:
        last = date.fromordinal(first.toordinal() + 30)
    return first, last


def _marker(shape: str, x: float, y: float) -> str:
    r = 7
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" />'
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" />'
    if shape == "triangle":
        return f'<polygon points="{x:.1f},{y - r:.1f} {x + r:.1f},{y + r:.1f} {x - r:.1f},{y + r:.1f}" />'
    if shape == "cross":
        return (
            f'<path d="M{x - r:.1f},{y - r:.1f} L{x + r:.1f},{y + r:.1f} M{x + r:.1f},{y - r:.1f} '
            f'L{x - r:.1f},{y + r:.1f}" stroke-width="3" />'
        )
    return f'<polygon points="{x:.1f},{y - r:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r:.1f} {x - r:.1f},{y:.1f}" />'


def describe(events: Sequence[TimelineEvent], as_of: date) -> str:
    """Everything the picture shows, in words (the SVG's <desc>)."""
    if not events:
        return "No events recorded yet."
    parts = []
    for bar in phase_bars(events, as_of):
        end = f"ongoing on {as_of.isoformat()}" if bar.ongoing else f"to {bar.end.isoformat()}"
        if bar.stopped_by:
            end += f", stopped by: {bar.stopped_by}"
        parts.append(f"{bar.label} from {bar.start.isoformat()} {end}.")
    for e in sorted(events, key=lambda e: e.on):
        if e.phase is None:
            parts.append(f"{e.on.isoformat()}: {e.label}.")
    return " ".join(parts)


def render_timeline(events: Sequence[TimelineEvent], as_of: date, *, title: str = "Treatment timeline") -> str:
    """The SVG markup (a string safe to insert into HTML as is)."""
    events = list(events)
    bars = phase_bars(events, as_of)
    lanes = list(dict.fromkeys(b.phase for b in bars))
    markers = sorted((e for e in events if e.phase is None), key=lambda e: e.on)
    marker_y = TOP + len(lanes) * LANE_HEIGHT + 20
    height = marker_y + 24 + LABEL_ROWS * 16 + 34
    desc = describe(events, as_of)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-labelledby="tl-title tl-desc">',
        f'<title id="tl-title">{escape(title)}</title>',
        f'<desc id="tl-desc">{escape(desc)}</desc>',
    ]
    if not events:
        out.append(f'<text x="{LEFT}" y="{TOP}" class="tl-empty">No events recorded yet.</text></svg>')
        return "\n".join(out)

    first, last = _span(events, as_of)
    days = (last - first).days

    def x_of(d: date) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (d - first).days / days

    # Time axis: start, as-of, and month ticks when they fit.
    axis_y = height - 28
    out.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{WIDTH - RIGHT}" y2="{axis_y}" class="tl-axis" />')
    for d, anchor in ((first, "start"), (last, "end")):
        out.append(
            f'<text x="{x_of(d):.1f}" y="{axis_y + 18}" text-anchor="{anchor}" class="tl-date">{d.isoformat()}</text>'
        )
    if as_of <= last:
        xa = x_of(as_of)
        out.append(f'<line x1="{xa:.1f}" y1="{TOP - 14}" x2="{xa:.1f}" y2="{axis_y}" class="tl-today" />')
        out.append(f'<text x="{xa:.1f}" y="{TOP - 18}" text-anchor="end" class="tl-date">as of</text>')

    for lane, phase in enumerate(lanes):
        y = TOP + lane * LANE_HEIGHT
        name = PHASE_LABELS.get(phase, phase)
        out.append(f'<text x="{LEFT - 8}" y="{y + 17}" text-anchor="end" class="tl-lane">{escape(name)}</text>')
        for bar in (b for b in bars if b.phase == phase):
            x1, x2 = x_of(bar.start), x_of(bar.end)
            w = max(x2 - x1, 4.0)
            fill = PHASE_FILLS.get(phase, "#333333")
            state = "ongoing" if bar.ongoing else "stopped" if bar.stopped_by else "completed"
            dash = ' stroke-dasharray="6 3"' if bar.ongoing else ""
            out.append(
                f'<g class="tl-bar tl-{state}" data-phase="{escape(phase)}">'
                f"<title>{escape(bar.label)}: {bar.start.isoformat()} to "
                f"{'now (ongoing)' if bar.ongoing else bar.end.isoformat()}"
                f"{f' (stopped by: {escape(bar.stopped_by)})' if bar.stopped_by else ''}</title>"
                f'<rect x="{x1:.1f}" y="{y + 2}" width="{w:.1f}" height="{LANE_HEIGHT - 6}" rx="3" '
                f'fill="{fill}" stroke="#000000"{dash} />'
            )
            if w > 70:
                text = bar.label + (" (ongoing)" if bar.ongoing else " (stopped)" if bar.stopped_by else "")
                out.append(f'<text x="{x1 + 6:.1f}" y="{y + 18}" class="tl-bar-label">{escape(text)}</text>')
            out.append("</g>")

    out.append(f'<text x="{LEFT - 8}" y="{marker_y + 5}" text-anchor="end" class="tl-lane">Events</text>')
    for i, e in enumerate(markers):
        x = x_of(e.on)
        shape = MARKERS.get(e.kind, "diamond")
        label_y = marker_y + 24 + (i % LABEL_ROWS) * 16
        anchor = "end" if x > WIDTH - 160 else "start"
        out.append(
            f'<g class="tl-event" data-kind="{escape(e.kind)}"><title>{e.on.isoformat()}: {escape(e.label)}</title>'
            f'<line x1="{x:.1f}" y1="{marker_y}" x2="{x:.1f}" y2="{label_y - 11}" class="tl-leader" />'
            f'<g class="tl-marker tl-{shape}">{_marker(shape, x, marker_y)}</g>'
            f'<text x="{x:.1f}" y="{label_y}" text-anchor="{anchor}" class="tl-event-label">{escape(e.label)}</text>'
            "</g>"
        )
    out.append("</svg>")
    return "\n".join(out)
