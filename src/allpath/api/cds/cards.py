"""Cards: how a plan's options and alerts, and the order checks, are shown inside the EHR.

Every card cites its source (`source.label`, `source.url`, a `topic`, and links to each cited
source), keeps its summary under 140 characters, and explains itself in markdown `detail`.
A card's `uuid` is derived from the hook call and the rule, so feedback can be tied back to the
rule that produced the card.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from allpath.explain.labels import CATEGORY_LABELS, missing_fact_views
from allpath.knowledge import KnowledgeBase
from allpath.plan import Alert, Citation, NotRecommended, Plan, Recommendation

TOPIC_SYSTEM = "urn:allpath:cds:card-topic"
OVERRIDE_SYSTEM = "urn:allpath:cds:override-reason"
CARD_NAMESPACE = uuid.UUID("6f1d3c1e-7a53-4c44-9a0e-3d0c2b1f5a77")
SUMMARY_MAX = 139
MISSING_FACTS_KEY = "missing-facts"
# The engine's prebuilt plan items number a few hundred; the rest are per-call import alerts.
TEMPLATE_CACHE_MAX = 4096

OVERRIDE_REASONS: tuple[dict[str, str], ...] = (
    {"system": OVERRIDE_SYSTEM, "code": "clinical-judgement", "display": "Clinical judgement: benefit outweighs risk"},
    {"system": OVERRIDE_SYSTEM, "code": "record-out-of-date", "display": "The record is out of date or incomplete"},
    {"system": OVERRIDE_SYSTEM, "code": "addressed-elsewhere", "display": "Already addressed in another order or plan"},
)


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """One line of at most `limit` characters, cut at a word boundary with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.-")
    return cut + "…"


def first_sentence(text: str) -> str:
    line = " ".join(text.split())
    end = line.find(". ")
    return line[: end + 1] if end != -1 else line


def card_uuid(hook_instance: str, key: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, f"{hook_instance}/{key}"))


class CardFactory:
    """Builds spec-conformant cards for one knowledge base; the parts that never change are built once."""

    def __init__(self, kb: KnowledgeBase, disclaimer: str):
        self.kb = kb
        self.disclaimer = " ".join(disclaimer.split())
        self._templates: dict[int, tuple[object, dict[str, Any]]] = {}
        self._missing_templates: dict[tuple[tuple[str, tuple[str, ...]], ...], dict[str, Any]] = {}

    # --- sources and links -------------------------------------------------------------
    def source(self, citations: Sequence[Citation], topic_code: str, topic_display: str) -> dict[str, Any]:
        first = self.kb.sources[citations[0].source_id]
        source: dict[str, Any] = {
            "label": shorten(f"allpath {self.kb.version}: {first.title}", 120),
            "topic": {"system": TOPIC_SYSTEM, "code": topic_code, "display": topic_display},
        }
        if first.url:
            source["url"] = first.url
        return source

    def links(self, citations: Iterable[Citation]) -> list[dict[str, str]]:
        links: list[dict[str, str]] = []
        seen: set[str] = set()
        for citation in citations:
            src = self.kb.sources[citation.source_id]
            if src.url and src.url not in seen:
                seen.add(src.url)
                links.append({"label": shorten(f"Source: {src.title}", 100), "url": src.url, "type": "absolute"})
        return links

    def citation_lines(self, citations: Iterable[Citation]) -> str:
        lines = []
        for citation in citations:
            src = self.kb.sources[citation.source_id]
            lines.append(f"- {src.title} ({src.publisher}, {src.approved}), section *{citation.section}*")
        return "\n".join(lines)

    def _finish(self, card: dict[str, Any], citations: Sequence[Citation]) -> dict[str, Any]:
        links = self.links(citations)
        if links:
            card["links"] = links
        return card

    # --- cards from a plan --------------------------------------------------------------
    def _template(self, item: Recommendation | NotRecommended | Alert) -> dict[str, Any]:
        # Plan items are the engine's prebuilt, immutable objects, so their cards can be cached by identity.
        entry = self._templates.get(id(item))
        if entry is not None and entry[0] is item:
            return entry[1]
        if isinstance(item, Recommendation):
            card = self._recommendation(item)
        elif isinstance(item, NotRecommended):
            card = self._not_recommended(item)
        else:
            card = self._alert(item)
        if len(self._templates) >= TEMPLATE_CACHE_MAX:
            # Import alerts are new objects on every call: without a bound their entries (each
            # holding its alert, so its id is never reused) would grow for as long as the process runs.
            self._templates.clear()
        self._templates[id(item)] = (item, card)
        return card

    def _recommendation(self, rec: Recommendation) -> dict[str, Any]:
        parts = [f"**{rec.title}** ({rec.strength})", "", f"**Why:** {rec.rationale}", "", rec.summary]
        if rec.agents:
            drugs = ", ".join(a.name + (f" ({', '.join(a.brand_names)})" if a.brand_names else "") for a in rec.agents)
            parts += ["", f"**Drugs:** {drugs}"]
        if rec.expected_outcome:
            parts += ["", f"**What to expect:** {rec.expected_outcome}"]
        parts += ["", "**Sources:**", self.citation_lines(rec.citations), "", f"*{self.disclaimer}*"]
        card = {
            "summary": shorten(f"{rec.strength.capitalize()}: {rec.title}"),
            "indicator": "info",
            "detail": "\n".join(parts),
            "source": self.source(rec.citations, rec.category, CATEGORY_LABELS.get(rec.category, rec.category)),
        }
        return self._finish(card, rec.citations)

    def _not_recommended(self, item: NotRecommended) -> dict[str, Any]:
        detail = "\n".join(
            [f"**Not advised: {item.title}**", "", item.reason, "", "**Sources:**", self.citation_lines(item.citations)]
        )
        card = {
            "summary": shorten(f"Not advised: {item.title}"),
            "indicator": "info",
            "detail": detail,
            "source": self.source(item.citations, "not-recommended", "not recommended"),
        }
        return self._finish(card, item.citations)

    def _alert(self, alert: Alert) -> dict[str, Any]:
        detail = "\n".join([alert.message, "", "**Sources:**", self.citation_lines(alert.citations)])
        card = {
            "summary": shorten(first_sentence(alert.message)),
            "indicator": alert.severity,
            "detail": detail,
            "source": self.source(alert.citations, "alert", "alert"),
        }
        return self._finish(card, alert.citations)

    def _missing_facts(self, plan: Plan) -> dict[str, Any] | None:
        """One card for every unknown fact that could change the plan: a list, not a card per fact."""
        if not plan.missing_facts:
            return None
        key = tuple((m.field, tuple(m.affects)) for m in plan.missing_facts)
        cached = self._missing_templates.get(key)
        if cached is not None:
            return cached
        # Every name comes from the KB: a fired rule's title in the plan is the KB's, so the card
        # depends on the missing facts alone and can be cached by them.
        views = missing_fact_views(plan, self.kb)
        rules = {r.id: r for r in self.kb.rules}
        citations = [
            c for view in views for a in view.affects if a.rule_id in rules for c in rules[a.rule_id].citations
        ]
        lines = [
            "**What would sharpen this plan.** These facts are not known; finding them out could change "
            "which options apply.",
            "",
        ]
        for view in views:
            affected = "; ".join(a.label for a in view.affects)
            lines.append(f"- **{view.label}** (`{view.field}`) would change: {affected}")
        lines += ["", "**Sources:**", self.citation_lines(_unique(citations)), "", f"*{self.disclaimer}*"]
        noun = "fact" if len(views) == 1 else "facts"
        card = {
            "summary": shorten(
                f"{len(views)} unknown {noun} could change these options: " + ", ".join(v.label for v in views)
            ),
            "indicator": "info",
            "detail": "\n".join(lines),
            "source": self.source(citations, MISSING_FACTS_KEY, "missing facts"),
        }
        card = self._finish(card, citations)
        if len(self._missing_templates) >= 4096:  # distinct combinations are few; stay bounded anyway
            self._missing_templates.clear()
        self._missing_templates[key] = card
        return card

    def plan_cards(
        self, plan: Plan, hook_instance: str, extra_alerts: Sequence[Alert] = ()
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Cards and their rule ids: alerts first (the record's data problems, then the plan's), then
        options, then what is not advised, then (one card at most) what would sharpen the plan."""
        cards: list[dict[str, Any]] = []
        items: list[Recommendation | NotRecommended | Alert] = [
            *extra_alerts,
            *plan.alerts,
            *plan.recommendations,
            *plan.not_recommended,
        ]
        for item in items:
            template = self._template(item)
            card = dict(template)  # shallow: the nested parts are shared and never mutated
            card["uuid"] = card_uuid(hook_instance, item.id)
            cards.append(card)
        ids = [item.id for item in items]
        missing = self._missing_facts(plan)
        if missing is not None:
            cards.append({**missing, "uuid": card_uuid(hook_instance, MISSING_FACTS_KEY)})
            ids.append(MISSING_FACTS_KEY)
        return cards, ids

    def problem_card(self, hook_instance: str, problems: Sequence[Any]) -> dict[str, Any]:
        """One card saying the record could not be read well enough to advise, and why."""
        lines = "\n".join(f"- `{p.field}`: {p.problem}" for p in problems)
        citation = Citation(
            source_id=next(iter(self.kb.sources)), section=next(iter(self.kb.sources.values())).sections[0]
        )
        return {
            "uuid": card_uuid(hook_instance, "record-not-usable"),
            "summary": "allpath cannot give ALL treatment options: the record lacks facts it needs",
            "indicator": "info",
            "detail": "allpath read the record but could not build the facts it needs:\n\n"
            + lines
            + "\n\nCorrect or complete the record and reopen the chart.",
            "source": self.source([citation], "data-quality", "data quality"),
        }


def _unique(citations: Iterable[Citation]) -> list[Citation]:
    # Several affected rules often cite the same section; list it once.
    return list(dict.fromkeys(citations))
