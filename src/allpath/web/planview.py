"""The clinician's plan as a page shows it: grouped by what to do, sources numbered once, each
medicine once; and the what-if comparison of two plans.

Pure functions over a `Plan` and the KB: no request, no store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from allpath.explain.labels import FACT_LABELS, VALUE_LABELS
from allpath.facts import FACT_KINDS, FactKind, FactsError, PatientFacts, Problem
from allpath.knowledge import KnowledgeBase
from allpath.plan import SEVERITY_ORDER, AgentInfo, Citation, Plan, Recommendation
from allpath.rules.tree import describe, facts_used

# Strength decides the group: the page reads top-down from what to do now to what to ask about.
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("now", "What to do now", ("standard", "recommended")),
    ("options", "Options", ("option",)),
    ("consider", "Things to consider", ("consider",)),
)


@dataclass(frozen=True, slots=True)
class SourceNote:
    number: int
    source_id: str
    publisher: str
    title: str
    approved: str
    section: str


@dataclass(frozen=True, slots=True)
class Medicine:
    agent: AgentInfo
    used_in: list[str]


@dataclass(slots=True)
class PlanView:
    groups: list[tuple[str, str, list[Recommendation]]]
    alerts: list[Any]
    medicines: list[Medicine]
    sources: list[SourceNote] = field(default_factory=list)
    numbers: dict[tuple[str, str], int] = field(default_factory=dict)

    def refs(self, citations: Sequence[Citation]) -> list[int]:
        """The numbers of these citations, each once, in order."""
        seen: list[int] = []
        for c in citations:
            n = self.numbers[(c.source_id, c.section)]
            if n not in seen:
                seen.append(n)
        return seen


def plan_view(plan: Plan, kb: KnowledgeBase) -> PlanView:
    groups = [
        (key, heading, [r for r in plan.recommendations if r.strength in strengths])
        for key, heading, strengths in GROUPS
    ]
    alerts = sorted(plan.alerts, key=lambda a: SEVERITY_ORDER.index(a.severity))
    medicines: dict[str, Medicine] = {}
    for r in plan.recommendations:
        for a in r.agents:
            medicines.setdefault(a.id, Medicine(a, [])).used_in.append(r.title)
    view = PlanView([g for g in groups if g[2]], alerts, list(medicines.values()))
    # Sources are numbered in the order the page first cites them; one number per source and section.
    items: list[Any] = [*alerts, *(r for _, _, rs in view.groups for r in rs), *plan.not_recommended]
    for item in items:
        for c in item.citations:
            key = (c.source_id, c.section)
            if key not in view.numbers:
                view.numbers[key] = len(view.numbers) + 1
                source = kb.sources.get(c.source_id)
                view.sources.append(
                    SourceNote(
                        view.numbers[key],
                        c.source_id,
                        source.publisher if source else c.source_id,
                        source.title if source else c.source_id,
                        source.approved if source else "",
                        c.section,
                    )
                )
    return view


# --- what-if -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FactInput:
    """One fact as the what-if form asks it."""

    name: str
    label: str
    kind: FactKind
    options: tuple[tuple[str, str], ...]


def _options(name: str, kind: FactKind) -> tuple[tuple[str, str], ...]:
    labels = VALUE_LABELS.get(name, {})
    if kind.type == "boolean":
        return (("", "Not known"), ("true", "Yes"), ("false", "No"))
    return tuple((v, labels.get(v, v)) for v in kind.values)


FACT_INPUTS: tuple[FactInput, ...] = tuple(
    FactInput(name, FACT_LABELS.get(name, name), kind, _options(name, kind)) for name, kind in FACT_KINDS.items()
)


def form_values(facts: PatientFacts) -> dict[str, Any]:
    """The facts as the what-if form holds them: strings, and lists for the list facts."""
    values: dict[str, Any] = {}
    for name, value in facts.model_dump(mode="json").items():
        if isinstance(value, list):
            values[name] = [str(v) for v in value]
        elif isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif value is None:
            values[name] = ""
        elif isinstance(value, float) and value.is_integer():
            values[name] = str(int(value))
        else:
            values[name] = str(value)
    return values


def facts_from_form(values: Mapping[str, Any]) -> tuple[PatientFacts | None, list[Problem]]:
    """The facts the form describes, or the problems that stop it (named by field)."""
    data: dict[str, Any] = {}
    for fi in FACT_INPUTS:
        raw = values.get(fi.name)
        if fi.kind.type == "list":
            data[fi.name] = list(raw or [])
            continue
        text = (raw or "").strip() if isinstance(raw, str) else ""
        if not text:
            if fi.kind.nullable:
                data[fi.name] = None
            elif fi.kind.type in ("number", "integer"):
                if fi.name == "age_years":
                    data[fi.name] = None  # required: the model names it
                continue
            continue
        if fi.kind.type == "boolean":
            data[fi.name] = text == "true"
        elif fi.kind.type == "number":
            data[fi.name] = _number(text, float)
        elif fi.kind.type == "integer":
            data[fi.name] = _number(text, int)
        else:
            data[fi.name] = text
    try:
        return PatientFacts.parse(data), []
    except FactsError as exc:
        return None, list(exc.problems)


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text  # the model names it: "must be a number"


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between the plan now and the what-if plan, with the rule behind it."""

    kind: str  # appears | leaves | strength
    what: str  # option | alert | not_recommended
    rule_id: str
    title: str
    before: str | None
    after: str | None
    condition: str
    facts: list[str]


def compare_plans(kb: KnowledgeBase, before: Plan, after: Plan) -> list[Change]:
    """What appears, leaves or changes strength from `before` to `after`, each with its rule."""
    changed = [name for name in PatientFacts.model_fields if getattr(before.facts, name) != getattr(after.facts, name)]
    out: list[Change] = []

    def rule_bits(rule_id: str) -> tuple[str, list[str]]:
        condition = kb.conditions.get(rule_id)
        if condition is None:  # an alert from outside the rules (a FHIR import's)
            return "", []
        read = set(facts_used(condition))
        for variant in kb.variant_conditions.get(rule_id, ()):
            read.update(facts_used(variant))  # a variant can change the strength
        # Thresholds derived from months print as long decimals (1/12 of a year): two places do.
        text = re.sub(r"(\d+\.\d\d)\d+", r"\1", describe(condition))
        return text, [FACT_LABELS.get(f, f) for f in changed if f in read]

    def diff(what: str, old: Mapping[str, tuple[str, str]], new: Mapping[str, tuple[str, str]]) -> None:
        for rid in [*old, *(r for r in new if r not in old)]:
            condition, facts = rule_bits(rid)
            if rid not in new:
                out.append(Change("leaves", what, rid, old[rid][0], old[rid][1], None, condition, facts))
            elif rid not in old:
                out.append(Change("appears", what, rid, new[rid][0], None, new[rid][1], condition, facts))
            elif old[rid][1] != new[rid][1]:
                out.append(Change("strength", what, rid, new[rid][0], old[rid][1], new[rid][1], condition, facts))

    diff(
        "option",
        {r.id: (r.title, r.strength) for r in before.recommendations},
        {r.id: (r.title, r.strength) for r in after.recommendations},
    )
    diff(
        "alert",
        {a.id: (a.message, a.severity) for a in before.alerts},
        {a.id: (a.message, a.severity) for a in after.alerts},
    )
    diff(
        "not_recommended",
        {n.id: (n.title, "") for n in before.not_recommended},
        {n.id: (n.title, "") for n in after.not_recommended},
    )
    return out
