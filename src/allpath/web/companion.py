"""What the family companion's pages show, built from the store's records (no routing here):
the "call now" box with the team's numbers, the roadmap, the diary chart, adherence.

Every clinical sentence comes from `allpath.course.companion` (cited, in both languages); the
rest are interface strings, translated through the gettext catalogs (`allpath.web.i18n`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from allpath.course.companion import (
    AdherenceResult,
    Cite,
    Companion,
    CompanionSource,
    Lang,
    format_temperature,
)
from allpath.knowledge.loader import KnowledgeBase
from allpath.plan import Citation
from allpath.store.companion import CallSettings, Contact, DiaryEntry
from allpath.store.service import EventRecord


@dataclass
class Refs:
    """Footnote letters for the companion's own sources, in the order the page cites them."""

    sources: dict[str, CompanionSource]
    order: dict[tuple[str, str], str] = field(default_factory=dict)

    def mark(self, citations: Sequence[Cite]) -> list[str]:
        out = []
        for c in citations:
            key = (c.source_id, c.section)
            if key not in self.order:
                self.order[key] = chr(ord("A") + len(self.order))
            out.append(self.order[key])
        return out

    def listing(self) -> list[tuple[str, CompanionSource, str]]:
        return [(letter, self.sources[sid], section) for (sid, section), letter in self.order.items()]


@dataclass(frozen=True, slots=True)
class CallLine:
    text: str
    marks: list[str]


@dataclass(frozen=True, slots=True)
class CallBox:
    threshold: str
    set_by_team: bool
    lines: list[CallLine]
    emergency: CallLine
    contacts: list[Contact]
    refs: Refs
    questions: list[CallLine] = field(default_factory=list)  # for the phase under way


def call_box(
    companion: Companion, settings: CallSettings, contacts: list[Contact], lang: Lang, phase: str | None = None
) -> CallBox:
    refs = Refs(companion.source_map)
    threshold = format_temperature(settings.fever_celsius, lang)
    lines = [
        CallLine(item.text(lang).format(threshold=threshold), refs.mark(item.citations))
        for item in companion.chosen_call_items(settings.extra_items)
    ]
    emergency = CallLine(companion.emergency.text(lang), refs.mark(companion.emergency.citations))
    questions = [CallLine(q.text(lang), refs.mark(q.citations)) for q in companion.phase_questions.get(phase or "", [])]
    return CallBox(threshold, settings.set_by_team, lines, emergency, contacts, refs, questions)


# --- the roadmap ---------------------------------------------------------------------------------

FIRST_LINE = ("induction", "consolidation", "maintenance")


@dataclass(frozen=True, slots=True)
class Step:
    phase: str
    name: str
    status: str  # done | now | next | later
    started: dt.date | None
    ended: dt.date | None
    timing: str
    citations: tuple[Citation, ...] = ()


def roadmap(kb: KnowledgeBase, events: list[EventRecord], current: str | None, completed: Sequence[str]) -> list[Step]:
    """The first-line phases with where the child is: done (with dates), now, next, later.

    Dates come from the course record (the latest start and end of each phase that still counts);
    "roughly when" for the phases ahead is the KB phase's timing. A phase of a later line
    (reinduction) under way is shown as the step now, after the phases done."""
    started: dict[str, dt.date] = {}
    ended: dict[str, dt.date] = {}
    for e in events:
        if e.superseded_by is not None or e.type == "retracted":
            continue
        phase = e.payload.get("phase")
        if e.type == "phase_started" and phase:
            started[phase] = e.date
        elif e.type == "phase_completed" and phase:
            ended[phase] = e.date
    phases = list(FIRST_LINE)
    if current and current not in phases:
        phases = [p for p in phases if p in completed] + [current]
    steps: list[Step] = []
    ahead = [p for p in phases if p != current and p not in completed]
    after_now = phases.index(current) if current in phases else -1
    upcoming = [p for p in ahead if phases.index(p) > after_now]
    for p in phases:
        if p == current:
            status = "now"
        elif p in completed:
            status = "done"
        elif upcoming and p == upcoming[0]:
            status = "next"
        else:
            status = "later"
        kb_phase = kb.phases.get(p)
        steps.append(
            Step(
                p,
                kb_phase.name if kb_phase else p,
                status,
                started.get(p),
                ended.get(p) if status == "done" else None,
                kb_phase.timing if kb_phase else "",
                tuple(kb_phase.citations) if kb_phase else (),
            )
        )
    return steps


# --- the diary chart (clinician page) -------------------------------------------------------------

CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 220, 48, 16, 16, 36
LOW_C, HIGH_C = 35.0, 41.0


def diary_chart(
    entries: list[DiaryEntry], threshold_c: float, start: dt.date, end: dt.date, symptom_label: Callable[[str], str]
) -> str:
    """Temperatures over time as an inline SVG (drawn here: no chart script, no CDN).

    Urgent entries are triangles, others circles, so urgency is told by shape as well as colour;
    the threshold is a dashed line with its value written on it; `<desc>` lists every entry in words."""
    span = max((end - start).days, 1)

    def x(at: dt.datetime) -> float:
        return PAD_L + (CHART_W - PAD_L - PAD_R) * ((at.date() - start).days + at.hour / 24) / span

    def y(c: float) -> float:
        c = min(max(c, LOW_C), HIGH_C)
        return PAD_T + (CHART_H - PAD_T - PAD_B) * (HIGH_C - c) / (HIGH_C - LOW_C)

    words = []
    marks = []
    points = []
    for e in entries:
        symptoms = ", ".join(f"{symptom_label(k)} {v}/3" for k, v in sorted(e.grades.items()))
        temp = f"{e.temperature_c:.1f} °C" if e.temperature_c is not None else "no temperature"
        words.append(
            f"{e.at:%Y-%m-%d %H:%M} UTC: {temp}{'; ' + symptoms if symptoms else ''}{'; URGENT' if e.urgent else ''}."
        )
        if e.temperature_c is None:
            continue
        cx, cy = x(e.at), y(e.temperature_c)
        points.append(f"{cx:.1f},{cy:.1f}")
        if e.urgent:
            corners = f"{cx:.1f},{cy - 7:.1f} {cx - 7:.1f},{cy + 6:.1f} {cx + 7:.1f},{cy + 6:.1f}"
            marks.append(f'<polygon class="dc-urgent" points="{corners}"/>')
        else:
            marks.append(f'<circle class="dc-point" cx="{cx:.1f}" cy="{cy:.1f}" r="4"/>')
    ty = y(threshold_c)
    grid = "".join(
        f'<line class="dc-grid" x1="{PAD_L}" x2="{CHART_W - PAD_R}" y1="{y(c):.1f}" y2="{y(c):.1f}"/>'
        f'<text x="{PAD_L - 6}" y="{y(c) + 4:.1f}" text-anchor="end">{c:.0f}</text>'
        for c in (36.0, 37.0, 38.0, 39.0, 40.0)
    )
    desc = " ".join(words) or "No diary entries in this period."
    return (
        f'<svg class="diary-chart" role="img" viewBox="0 0 {CHART_W} {CHART_H}" aria-labelledby="dc-title dc-desc" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="dc-title">Temperatures from the family diary, {start.isoformat()} to {end.isoformat()} '
        f"(°C; triangles are urgent entries)</title>"
        f'<desc id="dc-desc">{escape(desc)}</desc>'
        f"{grid}"
        f'<line class="dc-threshold" x1="{PAD_L}" x2="{CHART_W - PAD_R}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        f'<text x="{CHART_W - PAD_R}" y="{ty - 4:.1f}" text-anchor="end">call at {threshold_c:.1f} °C</text>'
        f'<polyline class="dc-line" points="{" ".join(points)}"/>'
        f"{''.join(marks)}"
        f'<text x="{PAD_L}" y="{CHART_H - 10}">{start.isoformat()}</text>'
        f'<text x="{CHART_W - PAD_R}" y="{CHART_H - 10}" text-anchor="end">{end.isoformat()}</text>'
        f"</svg>"
    )


def adherence_rows(results: list[AdherenceResult], threshold: float) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for r in results:
        if not r.due:
            continue
        rate = r.rate
        rows.append(
            {
                "medicine": r.medicine,
                "days": r.days,
                "due": r.due,
                "taken": r.taken,
                "missed": r.missed,
                "not_recorded": r.not_recorded,
                "percent": None if rate is None else round(rate * 100, 1),
                "flag": r.below(threshold),
            }
        )
    return rows
