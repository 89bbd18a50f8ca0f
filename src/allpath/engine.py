"""The recommendation engine: `recommend(facts) -> Plan`.

All the work that does not depend on the patient happens once, when an `Engine` is built
from a knowledge base: conditions are compiled, and every output object a rule can produce
(one per variant) is built and frozen. A call then only evaluates the compiled conditions
and picks prebuilt objects, so it does no I/O and allocates little.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from allpath.facts import PatientFacts
from allpath.knowledge import KnowledgeBase, load_kb
from allpath.knowledge.schema import AgentUse, AlertRule, NotRecommendedRule, RecommendationRule
from allpath.plan import (
    SEVERITY_ORDER,
    AgentInfo,
    Alert,
    Citation,
    KnowledgeInfo,
    MissingFact,
    NotRecommended,
    PackRef,
    Plan,
    Recommendation,
    SourceRef,
)
from allpath.rules.order import plan_order
from allpath.rules.pycompile import compile_chooser
from allpath.rules.sensitivity import compile_missing

Output = Recommendation | NotRecommended | Alert


class Engine:
    """A knowledge base compiled for fast, repeated `recommend` calls."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        trees = [(kb.conditions[r.id], kb.variant_conditions[r.id]) for r in kb.rules]
        self._choose, self.compiled_source = compile_chooser(trees)
        self._missing, self.missing_source = compile_missing([r.id for r in kb.rules], trees)
        # Equal answers share one frozen object: a plan holds a handful, from a small set.
        self._missing_objects: dict[tuple[str, tuple[str, ...]], MissingFact] = {}
        self._outputs: list[tuple[Output, ...]] = [self._build_outputs(r) for r in kb.rules]
        order = plan_order(kb.rules)
        self._rec_order = order["recommendations"]
        self._not_order = order["not_recommended"]
        self._alert_order = order["alerts"]
        cited = sorted(
            {c.source_id for r in kb.rules for c in r.citations}
            | {c.source_id for a in kb.agents.values() for c in a.citations}
            | {c.source_id for p in kb.parameters.values() for c in p.citations}
            | {c.source_id for a in kb.amendments for c in a.citations},
            key=list(kb.sources).index,
        )
        self.knowledge_info = KnowledgeInfo(
            version=kb.version,
            sources=[
                SourceRef(id=s.id, title=s.title, publisher=s.publisher, approved=s.approved)
                for s in (kb.sources[i] for i in cited)
            ],
            packs=[PackRef(id=p.id, version=p.version, reviewed=p.reviewed) for p in kb.packs],
        )

    def _agent_info(self, use: str | AgentUse) -> AgentInfo:
        agent_id = use if isinstance(use, str) else use.agent
        agent = self.kb.agents[agent_id]
        routes = agent.routes if isinstance(use, str) or not use.routes else use.routes
        return AgentInfo(
            id=agent.id,
            name=agent.name,
            brand_names=list(agent.brand_names),
            drug_class=agent.drug_class,
            routes=list(routes),
            superseded_by=agent.superseded_by,
            boxed_warning=agent.boxed_warning,
        )

    def _build_outputs(self, rule: RecommendationRule | NotRecommendedRule | AlertRule) -> tuple[Output, ...]:
        citations = [Citation(source_id=c.source_id, section=c.section) for c in rule.citations]
        note = rule.superseded_by
        if isinstance(rule, NotRecommendedRule):
            return (
                NotRecommended(
                    id=rule.id, title=rule.title, reason=rule.reason.strip(), citations=citations, superseded_by=note
                ),
            )
        if isinstance(rule, AlertRule):
            return (
                Alert(
                    id=rule.id,
                    severity=rule.severity,
                    message=rule.message.strip(),
                    citations=citations,
                    superseded_by=note,
                ),
            )
        agents = [self._agent_info(u) for u in rule.agents]
        base: dict[str, Any] = {
            "id": rule.id,
            "category": rule.category,
            "phase": rule.phase,
            "strength": rule.strength,
            "title": rule.title,
            "summary": rule.summary.strip(),
            "rationale": rule.rationale.strip(),
            "expected_outcome": rule.expected_outcome.strip() if rule.expected_outcome else None,
            "agents": agents,
            "citations": citations,
            "superseded_by": note,
        }
        outputs: list[Output] = [Recommendation(**base)]
        for variant in rule.variants:
            changes = {
                k: (v.strip() if isinstance(v, str) else v)
                for k, v in variant.model_dump(exclude={"when", "citations"}).items()
                if v is not None
            }
            extra = [Citation(source_id=c.source_id, section=c.section) for c in variant.citations]
            if extra:
                changes["citations"] = [*citations, *(c for c in extra if c not in citations)]
            outputs.append(Recommendation(**{**base, **changes}))
        return tuple(outputs)

    def fired(self, facts: PatientFacts) -> dict[str, int]:
        """Rule id -> chosen output (0 = the rule itself, k = its variant k-1), for rules that fire."""
        return {r.id: c for r, c in zip(self.kb.rules, self._choose(facts), strict=True) if c >= 0}

    def missing_facts(self, facts: PatientFacts, choices: tuple[int, ...] | None = None) -> list[MissingFact]:
        """The unknown facts that would change the plan for these facts (see rules.sensitivity)."""
        if choices is None:
            choices = self._choose(facts)
        found = []
        cache = self._missing_objects
        for key in self._missing(facts, choices):
            item = cache.get(key)
            if item is None:
                item = cache.setdefault(key, MissingFact(field=key[0], affects=list(key[1])))
            found.append(item)
        return found

    def recommend(
        self, facts: PatientFacts, *, with_missing_facts: bool = True, extra_alerts: Sequence[Alert] = ()
    ) -> Plan:
        """The plan for these facts; `with_missing_facts=False` skips the what-would-change search.

        `extra_alerts` are alerts from outside the rules, such as what a FHIR import could not
        read. They are ranked here, with the plan's own, so every path that shows a record's plan
        (CLI, `$apply`, CDS cards) shows its alerts in one order: most severe first, and within a
        severity the extra alerts first, since they say what the rest was decided without.
        """
        choices = self._choose(facts)
        outputs = self._outputs
        alerts = [outputs[i][choices[i]] for i in self._alert_order if choices[i] >= 0]
        if extra_alerts:
            alerts = sorted([*extra_alerts, *alerts], key=_severity_rank)
        return _assemble_plan(
            {
                "knowledge": self.knowledge_info,
                "facts": facts,
                "recommendations": [outputs[i][choices[i]] for i in self._rec_order if choices[i] >= 0],
                "not_recommended": [outputs[i][choices[i]] for i in self._not_order if choices[i] >= 0],
                "alerts": alerts,
                "missing_facts": self.missing_facts(facts, choices) if with_missing_facts else [],
                "disclaimer": self.kb.disclaimer,
            }
        )

    def recommend_data(self, data: Mapping[str, Any] | str | bytes) -> Plan:
        """Validate raw input (raising `FactsError`) and recommend."""
        return self.recommend(PatientFacts.parse(data))


def _severity_rank(alert: Any) -> int:
    # Any: the prebuilt outputs are typed as the union of all three kinds; only alerts reach here.
    return SEVERITY_ORDER.index(alert.severity)


_PLAN_FIELDS = frozenset(Plan.model_fields)
_new_object = object.__new__
_set_attribute = object.__setattr__


def _assemble_plan(values: dict[str, Any]) -> Plan:
    """Build a Plan from parts that are already valid, without re-validating them.

    Hand-rolled instead of `Plan.model_construct`: that does the same thing but also walks
    defaults and aliases field by field, which cost about 5x the rest of `recommend`. Every
    part here is a prebuilt, validated model (or validated PatientFacts), and a property test
    checks that the result equals `Plan.model_validate` of its own JSON.
    """
    plan = _new_object(Plan)
    _set_attribute(plan, "__dict__", values)
    # A fresh set: model_copy(update=...) adds to it in place.
    _set_attribute(plan, "__pydantic_fields_set__", set(_PLAN_FIELDS))
    _set_attribute(plan, "__pydantic_extra__", None)
    _set_attribute(plan, "__pydantic_private__", None)
    return plan


_default_engine: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """The engine over the default packs, built on first use and then shared (it is immutable)."""
    global _default_engine
    if _default_engine is None:
        with _default_lock:
            if _default_engine is None:
                _default_engine = Engine(load_kb())
    return _default_engine


def recommend(facts: PatientFacts | Mapping[str, Any], engine: Engine | None = None) -> Plan:
    """Cited treatment options for these facts, from the default knowledge base unless given an engine."""
    if not isinstance(facts, PatientFacts):
        facts = PatientFacts.parse(facts)
    return (engine or default_engine()).recommend(facts)
