"""Cards: how a plan's options and alerts, and the order checks, are shown inside the EHR.

Every card cites its source (`source.label`, `source.url`, a `topic`, and links to each cited
source), keeps its summary under 140 characters (cut after a whole word), and explains itself in
markdown `detail`. A card's `uuid` is derived from the hook call and the rule, so feedback can be
tied back to the rule that produced the card.

patient-view answers with at most `MAX_PLAN_CARDS` cards: the safety warnings (most severe
first), one summary card holding every option, "not advised" item and note of the plan (the top
options in its summary, a link to the full plan), and one card for the plan's missing facts. A
chart that opens on sixteen cards is a chart whose warnings nobody reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from allpath.explain.labels import (
    CATEGORY_LABELS,
    STRENGTH_LABELS,
    age_label,
    cut_at_word,
    first_sentence,
    missing_fact_views,
    value_label,
)
from allpath.knowledge import KnowledgeBase
from allpath.plan import STRENGTH_ORDER, Alert, Citation, NotRecommended, Plan, Recommendation

TOPIC_SYSTEM = "urn:allpath:cds:card-topic"
OVERRIDE_SYSTEM = "urn:allpath:cds:override-reason"
CARD_NAMESPACE = uuid.UUID("6f1d3c1e-7a53-4c44-9a0e-3d0c2b1f5a77")
SUMMARY_MAX = 139
MISSING_FACTS_KEY = "missing-facts"
# The engine's prebuilt alerts number a few dozen; the rest are per-call import alerts.
TEMPLATE_CACHE_MAX = 4096
SUMMARY_KEY = "plan-summary"
MORE_ALERTS_KEY = "more-alerts"
MAX_PLAN_CARDS = 5
TOP_OPTIONS = 3
SAFETY_SEVERITIES = ("critical", "warning")

OVERRIDE_REASONS: tuple[dict[str, str], ...] = (
    {"system": OVERRIDE_SYSTEM, "code": "clinical-judgement", "display": "Clinical judgement: benefit outweighs risk"},
    {"system": OVERRIDE_SYSTEM, "code": "record-out-of-date", "display": "The record is out of date or incomplete"},
    {"system": OVERRIDE_SYSTEM, "code": "addressed-elsewhere", "display": "Already addressed in another order or plan"},
)


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """One line of at most `limit` characters, cut after a whole word with an ellipsis."""
    return cut_at_word(text, limit)


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
    def _template(self, alert: Alert) -> dict[str, Any]:
        # Plan alerts are the engine's prebuilt, immutable objects, so their cards can be cached by identity.
        entry = self._templates.get(id(alert))
        if entry is not None and entry[0] is alert:
            return entry[1]
        card = self._alert(alert)
        if len(self._templates) >= TEMPLATE_CACHE_MAX:
            # Import alerts are new objects on every call: without a bound their entries (each
            # holding its alert, so its id is never reused) would grow for as long as the process runs.
            self._templates.clear()
        self._templates[id(alert)] = (alert, card)
        return card

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
        self, plan: Plan, hook_instance: str, *, plan_link: str | None = None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """At most `MAX_PLAN_CARDS` cards and their rule ids: the safety warnings (the plan's alerts
        rank the record's data problems with its own, most severe first), one summary card, and one
        card for the missing facts. Warnings that do not fit share one card; nothing is dropped."""
        missing = self._missing_facts(plan)
        warnings = [a for a in plan.alerts if a.severity in SAFETY_SEVERITIES]
        room = MAX_PLAN_CARDS - 1 - (missing is not None)
        shown, more = (warnings, []) if len(warnings) <= room else (warnings[: room - 1], warnings[room - 1 :])
        cards: list[dict[str, Any]] = []
        ids: list[str] = []
        for alert in shown:
            cards.append({**self._template(alert), "uuid": card_uuid(hook_instance, alert.id)})
            ids.append(alert.id)
        if more:
            cards.append({**self._more_alerts(more), "uuid": card_uuid(hook_instance, MORE_ALERTS_KEY)})
            ids.append(MORE_ALERTS_KEY)
        cards.append({**self._summary(plan, plan_link), "uuid": card_uuid(hook_instance, SUMMARY_KEY)})
        ids.append(SUMMARY_KEY)
        if missing is not None:
            cards.append({**missing, "uuid": card_uuid(hook_instance, MISSING_FACTS_KEY)})
            ids.append(MISSING_FACTS_KEY)
        return cards, ids

    def _more_alerts(self, alerts: Sequence[Alert]) -> dict[str, Any]:
        citations = _unique(c for a in alerts for c in a.citations)
        lines = [f"**{a.severity.capitalize()}:** {' '.join(a.message.split())}" for a in alerts]
        card = {
            "summary": shorten(f"{len(alerts)} more warnings: " + "; ".join(first_sentence(a.message) for a in alerts)),
            "indicator": alerts[0].severity,  # ranked most severe first
            "detail": "\n\n".join(lines) + "\n\n**Sources:**\n" + self.citation_lines(citations),
            "source": self.source(citations, "alert", "alert"),
        }
        return self._finish(card, citations)

    def _summary(self, plan: Plan, plan_link: str | None) -> dict[str, Any]:
        """The plan on one card: the top options in the summary, everything else in the detail."""
        facts = plan.facts
        lineage = f"{value_label('lineage', facts.lineage)} ALL" if facts.lineage in ("B", "T") else "ALL"
        who = f"{age_label(facts.age_years)}, {lineage}, {value_label('disease_status', facts.disease_status).lower()}"
        rank = {strength: i for i, strength in enumerate(STRENGTH_ORDER)}
        ranked = sorted(plan.recommendations, key=lambda r: rank[r.strength])  # stable: plan order within a strength
        top = ranked[:TOP_OPTIONS]
        if top:
            noun = "option" if len(ranked) == 1 else "options"
            summary = f"{who}: {len(ranked)} {noun}. Top: " + "; ".join(r.title for r in top)
        else:
            summary = f"{who}: no treatment option applies to these facts"
        lines = [f"**{who[0].upper()}{who[1:]}.**", ""]
        if plan_link:
            lines += ["Open the full plan (reasons, drugs, what to expect) from the link on this card.", ""]
        lines.append("**Options now** (most established first):")
        lines += [
            f"{i}. **{r.title}** ({STRENGTH_LABELS.get(r.strength, r.strength)}; "
            f"{CATEGORY_LABELS.get(r.category, r.category)})"
            for i, r in enumerate(ranked, 1)
        ] or ["- none"]
        if plan.not_recommended:
            lines += ["", "**Not advised:**"]
            lines += [f"- **{n.title}**: {first_sentence(n.reason)}" for n in plan.not_recommended]
        notes = [a for a in plan.alerts if a.severity not in SAFETY_SEVERITIES]
        if notes:
            lines += ["", "**Notes:**"]
            lines += [f"- {' '.join(a.message.split())}" for a in notes]
        cited: list[Recommendation | NotRecommended | Alert] = [*ranked, *plan.not_recommended, *notes]
        citations = _unique(c for item in cited for c in item.citations)
        lines += ["", "**Sources:**", self.citation_lines(citations), "", f"*{self.disclaimer}*"]
        first = (top[0].citations if top else citations) or [self._any_citation()]
        card: dict[str, Any] = {
            "summary": shorten(summary),
            "indicator": "info",
            "detail": "\n".join(lines),
            "source": self.source(first, SUMMARY_KEY, "plan summary"),
        }
        card = self._finish(card, citations)
        if plan_link:
            link = {"label": "Open the full ALL plan in allpath", "url": plan_link, "type": "smart"}
            card["links"] = [link, *card.get("links", [])]
        return card

    def _any_citation(self) -> Citation:
        # A card must name a source; one with nothing of its own to cite names the knowledge base's first.
        return Citation(source_id=next(iter(self.kb.sources)), section=next(iter(self.kb.sources.values())).sections[0])

    def problem_card(self, hook_instance: str, problems: Sequence[Any]) -> dict[str, Any]:
        """One card saying the record could not be read well enough to advise, and why."""
        lines = "\n".join(f"- `{p.field}`: {p.problem}" for p in problems)
        citation = self._any_citation()
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
