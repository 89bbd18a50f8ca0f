"""The plan as plain text a patient can read: what applies now, why, and where it comes from."""

from __future__ import annotations

import textwrap
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from allpath.explain.labels import CATEGORY_LABELS, DISEASE_STATUS_PHRASES, STRENGTH_LABELS, missing_fact_views
from allpath.knowledge import KnowledgeBase
from allpath.plan import Alert, NotRecommended, Plan, Recommendation


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("allpath.explain", "templates"),
        undefined=StrictUndefined,
        autoescape=False,  # plain text for a terminal; HTML is rendered by the web adapter
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = lambda text, indent="", break_on_hyphens=True: textwrap.fill(
        " ".join(str(text).split()),
        width=88,
        initial_indent=indent,
        subsequent_indent=indent,
        break_on_hyphens=break_on_hyphens,
    )
    return env


def citation_index(plan: Plan) -> dict[tuple[str, str], int]:
    """Number each distinct (source, section) once, in order of first use, for footnotes."""
    numbers: dict[tuple[str, str], int] = {}
    items: list[Recommendation | NotRecommended | Alert] = [
        *plan.recommendations,
        *plan.not_recommended,
        *plan.alerts,
    ]
    for item in items:
        for c in item.citations:
            numbers.setdefault((c.source_id, c.section), len(numbers) + 1)
    return numbers


def render_text(plan: Plan, kb: KnowledgeBase | None = None) -> str:
    """The plan as text; with `kb`, options a missing fact would bring in are named by title, not id."""
    numbers = citation_index(plan)
    sources = {s.id: s for s in plan.knowledge.sources}
    return (
        _environment()
        .get_template("plan.txt.j2")
        .render(
            plan=plan,
            facts=plan.facts,
            numbers=numbers,
            sources=sources,
            category_labels=CATEGORY_LABELS,
            strength_labels=STRENGTH_LABELS,
            status_label=DISEASE_STATUS_PHRASES[plan.facts.disease_status],
            missing=missing_fact_views(plan, kb),
        )
    )
