"""The concordance report: one self-contained HTML file (inline SVG chart, inline CSS, no CDN)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from allpath.cohort.concordance import MeasureResult

MAX_IDS = 50


def _rate(result: MeasureResult) -> str:
    return "n/a" if result.rate is None else f"{100 * result.rate:.1f}%"


def _missing(result: MeasureResult) -> list[str]:
    """For a higher-is-better measure, the denominator patients not in the numerator."""
    got = set(result.numerator_ids)
    return [p for p in result.denominator_ids if p not in got]


def _chart(results: Sequence[MeasureResult]) -> dict[str, object]:
    left, span, row = 330, 380, 30
    bars = []
    for i, r in enumerate(results):
        share = r.rate or 0.0
        good = share >= 0.9 if r.measure.better == "higher" else r.numerator == 0
        bars.append(
            {
                "y": 10 + i * row,
                "label": r.measure.title if len(r.measure.title) <= 46 else r.measure.title[:45] + "…",
                "width": round(span * share, 1),
                "colour": "#2e8b57" if good else "#c0392b",
                "text": f"{_rate(r)} ({r.numerator}/{r.denominator})",
            }
        )
    return {"width": left + span + 160, "height": 20 + row * len(results), "left": left, "span": span, "bars": bars}


def render(results: Sequence[MeasureResult], *, patients: int, kb_version: str) -> str:
    env = Environment(loader=PackageLoader("allpath.cohort", "templates"), autoescape=select_autoescape(["html", "j2"]))
    template = env.get_template("report.html.j2")
    return template.render(
        results=results,
        patients=patients,
        kb_version=kb_version,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        chart=_chart(results),
        rate=_rate,
        missing=_missing,
        max_ids=MAX_IDS,
    )


def write(results: Sequence[MeasureResult], path: str | Path, *, patients: int, kb_version: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results, patients=patients, kb_version=kb_version), encoding="utf-8")
    return path
