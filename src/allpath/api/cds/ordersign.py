"""Safety checks on draft orders: the `order-sign` hook, and `order-select` with the same code.

1. Ph-positive ALL, and the draft orders hold chemotherapy but no tyrosine kinase inhibitor (TKI),
   and none is already active in the record: warning, with one suggestion per TKI the knowledge
   base advises, each a draft MedicationRequest the prescriber completes.
2. An autologous (own stem cell) transplant ordered for a person with ALL: critical.
3. Clofarabine ordered outside ages 1 to 21, or before 2 earlier regimens: warning.

Orders are recognised by the importer's drug mapping (the codes the knowledge base holds for each
drug, RxNorm and the like) or, failing a code, by the drug's generic or brand name in the order's
text. A `medicationReference` has been resolved to its Medication's code before (`records.py`).
Under `order-select` the per-order checks look at the selected orders only (the others were
checked when they were selected), and the TKI check speaks when a selected order is chemotherapy. No code for an
autologous transplant has been confirmed for the knowledge base, so those orders are recognised by
their wording alone (`autologous` with transplant, stem cell, marrow, HSCT, SCT or BMT).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from allpath.api.cds.cards import OVERRIDE_REASONS, CardFactory, card_uuid, shorten
from allpath.explain.labels import age_label
from allpath.facts import PatientFacts
from allpath.knowledge import KnowledgeBase
from allpath.plan import Citation

TKI_AGENTS = ("imatinib", "dasatinib", "nilotinib", "ponatinib")
CLOFARABINE = "clofarabine"
TKI_RULE = "tki-ph-positive"
CLOFARABINE_RULE = "clofarabine-pediatric-relapse"
AUTOLOGOUS_RULE = "autologous-sct"
ORDER_TYPES = frozenset({"MedicationRequest", "ServiceRequest", "Procedure", "MedicationAdministration"})
ACTIVE_STATUSES = frozenset({"active", "on-hold"})
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

AUTOLOGOUS = re.compile(
    r"\bauto(?:logous)?[\s-]*(?:hsct|hct|sct|pbsct|bmt|stem[\s-]*cells?|bone[\s-]*marrow|marrow|transplant\w*)"
    r"|\bautologous\b.*\b(?:transplant\w*|stem[\s-]*cells?|marrow|hsct|hct|sct|bmt)\b",
    re.IGNORECASE,
)


@dataclass
class Order:
    """What the checks need to know about one draft order."""

    resource_type: str
    reference: str | None
    agents: set[str] = field(default_factory=set)
    autologous_transplant: bool = False
    label: str = ""


def _texts_and_codings(resource: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    texts: list[str] = []
    codings: list[tuple[str, str]] = []
    concepts: list[Any] = [resource.get("code"), resource.get("medicationCodeableConcept")]
    reference = resource.get("medicationReference")  # one that did not resolve: its display may name the drug
    if isinstance(reference, Mapping) and isinstance(reference.get("display"), str):
        texts.append(reference["display"])
    for concept in concepts:
        if not isinstance(concept, Mapping):
            continue
        if isinstance(concept.get("text"), str):
            texts.append(concept["text"])
        codings_list = concept.get("coding")
        for coding in codings_list if isinstance(codings_list, list) else []:
            if not isinstance(coding, Mapping):
                continue
            if isinstance(coding.get("display"), str):
                texts.append(coding["display"])
            if isinstance(coding.get("system"), str) and isinstance(coding.get("code"), str):
                codings.append((coding["system"], coding["code"]))
    return texts, codings


class OrderReader:
    """Recognises the knowledge base's drugs (by code or name) and autologous transplants in orders.

    `agent_for(system, code)` is the importer's drug lookup, so an order is read with the same drug
    codes as the record (and any roll-up of product codes the importer does); without it, the
    KB's own agent codes."""

    def __init__(self, kb: KnowledgeBase, agent_for: Callable[[str, str], str | None] | None = None):
        if agent_for is None:
            codes = {(coding.system, coding.code): agent.id for agent in kb.agents.values() for coding in agent.codes}

            def agent_for(system: str, code: str) -> str | None:
                return codes.get((system, code))

        self.agent_for = agent_for
        names: list[tuple[str, str]] = []
        for agent in kb.agents.values():
            names.append((agent.name, agent.id))
            names.extend((brand, agent.id) for brand in agent.brand_names)
        # Longest names first so "vincristine sulfate liposome" wins over "vincristine".
        names.sort(key=lambda pair: -len(pair[0]))
        self._name_to_agent = {n.lower(): a for n, a in names}
        self._names = re.compile(r"\b(" + "|".join(re.escape(n) for n, _ in names) + r")\b", re.IGNORECASE)

    def read(self, resource: Mapping[str, Any]) -> Order:
        texts, codings = _texts_and_codings(resource)
        kind = str(resource.get("resourceType"))
        rid = resource.get("id")
        order = Order(resource_type=kind, reference=f"{kind}/{rid}" if isinstance(rid, str) and rid else None)
        for system, code in codings:
            if (agent := self.agent_for(system, code)) is not None:
                order.agents.add(agent)
        for text in texts:
            match = self._names.search(text)
            if match:
                order.agents.add(self._name_to_agent[match.group(1).lower()])
            if kind != "MedicationRequest" and AUTOLOGOUS.search(text):
                order.autologous_transplant = True
        order.label = texts[0] if texts else kind
        return order


class OrderChecks:
    """The three order-sign checks over one knowledge base."""

    def __init__(
        self, kb: KnowledgeBase, cards: CardFactory, agent_for: Callable[[str, str], str | None] | None = None
    ):
        missing = [a for a in (*TKI_AGENTS, CLOFARABINE) if a not in kb.agents]
        missing += [r for r in (TKI_RULE, CLOFARABINE_RULE, AUTOLOGOUS_RULE) if r not in kb.rule_ids]
        if missing:
            raise ValueError(f"the knowledge base lacks what the order-sign checks rely on: {missing}")
        self.kb = kb
        self.cards = cards
        self.reader = OrderReader(kb, agent_for)
        self.tki = frozenset(TKI_AGENTS)
        # Chemotherapy for this check: any drug the KB names except TKIs and steroids given alone.
        self.chemo = frozenset(
            a.id for a in kb.agents.values() if a.id not in self.tki and a.drug_class != "corticosteroid"
        )
        rules = {r.id: r for r in kb.rules}
        self._tki_rule = rules[TKI_RULE]
        self._clofarabine_rule = rules[CLOFARABINE_RULE]
        self._autologous_rule = rules[AUTOLOGOUS_RULE]
        self._suggested_tkis = [
            (u if isinstance(u, str) else u.agent)
            for u in self._tki_rule.agents  # type: ignore[union-attr]
        ]

    def cards_for(
        self,
        facts: PatientFacts,
        drafts: Sequence[Mapping[str, Any]],
        record: Iterable[Mapping[str, Any]],
        *,
        patient_id: str,
        hook_instance: str,
        selected: Collection[int] | None = None,
    ) -> list[tuple[dict[str, Any], str]]:
        """Cards, most urgent first, each with the id of the knowledge-base rule behind it.

        `selected` holds the indexes of the orders just selected (`order-select`); `None` means all
        (`order-sign`)."""
        orders = [self.reader.read(r) for r in drafts]
        chosen = [(i, o) for i, o in enumerate(orders) if selected is None or i in selected]
        cards: list[tuple[dict[str, Any], str]] = []
        for index, order in chosen:
            if order.autologous_transplant:
                cards.append((self._autologous_card(order, index, hook_instance), AUTOLOGOUS_RULE))
        for index, order in chosen:
            if CLOFARABINE in order.agents:
                card = self._clofarabine_card(facts, order, index, hook_instance)
                if card is not None:
                    cards.append((card, CLOFARABINE_RULE))
        if facts.ph_status == "positive" and any(o.agents & self.chemo for _, o in chosen):
            ordered: set[str] = set().union(*(o.agents for o in orders))
            if not ordered & self.tki and not self._tki_active(record):
                cards.append((self._tki_card(patient_id, hook_instance), TKI_RULE))
        return cards

    def _tki_active(self, record: Iterable[Mapping[str, Any]]) -> bool:
        for resource in record:
            if (
                resource.get("resourceType") == "MedicationRequest"
                and isinstance(status := resource.get("status"), str)
                and status in ACTIVE_STATUSES
                and self.reader.read(resource).agents & self.tki
            ):
                return True
        return False

    def _delete_suggestion(self, order: Order, key: str, hook_instance: str, label: str) -> list[dict[str, Any]]:
        if order.reference is None:
            return []
        return [
            {
                "label": label,
                "uuid": card_uuid(hook_instance, f"{key}/remove"),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "delete",
                        "description": f"Remove the draft order {order.reference}",
                        "resourceId": order.reference,
                    }
                ],
            }
        ]

    def _card(
        self,
        *,
        key: str,
        hook_instance: str,
        summary: str,
        indicator: str,
        detail: str,
        citations: Sequence[Citation],
        topic: str,
        suggestions: list[dict[str, Any]],
        selection: str = "at-most-one",
    ) -> dict[str, Any]:
        card: dict[str, Any] = {
            "uuid": card_uuid(hook_instance, key),
            "summary": shorten(summary),
            "indicator": indicator,
            "detail": detail + "\n\n**Sources:**\n" + self.cards.citation_lines(citations),
            "source": self.cards.source(citations, topic, topic.replace("-", " ")),
            "overrideReasons": [dict(r) for r in OVERRIDE_REASONS],
        }
        if suggestions:
            card["suggestions"] = suggestions
            card["selectionBehavior"] = selection
        links = self.cards.links(citations)
        if links:
            card["links"] = links
        return card

    def _autologous_card(self, order: Order, index: int, hook_instance: str) -> dict[str, Any]:
        rule = self._autologous_rule
        key = f"{AUTOLOGOUS_RULE}/{index}"
        return self._card(
            key=key,
            hook_instance=hook_instance,
            summary="Autologous stem cell transplant ordered for ALL: not used to treat ALL",
            indicator="critical",
            detail=f"**Order:** {order.label}\n\n{' '.join(rule.reason.split())}"  # type: ignore[union-attr]
            "\n\nIf a transplant is intended, it is usually a donor (allogeneic) transplant.",
            citations=rule.citations,
            topic="order-safety",
            suggestions=self._delete_suggestion(order, key, hook_instance, "Remove the autologous transplant order"),
        )

    def _clofarabine_card(
        self, facts: PatientFacts, order: Order, index: int, hook_instance: str
    ) -> dict[str, Any] | None:
        reasons = []
        # Ages count in whole years, as in the KB rule: 21 and a half is still 21.
        if facts.age_years < 1 or facts.age_years >= 22:
            reasons.append(f"the patient is {age_label(facts.age_years)} old (clofarabine is for ages 1 to 21)")
        if facts.prior_regimen_count is None:
            reasons.append(
                "the record does not show how many earlier regimens were given "
                "(clofarabine is for ALL after at least 2)"
            )
        elif facts.prior_regimen_count < 2:
            reasons.append(
                f"the record shows {facts.prior_regimen_count} earlier regimen(s) "
                "(clofarabine is for ALL after at least 2)"
            )
        if not reasons:
            return None
        rule = self._clofarabine_rule
        citations = [*rule.citations, *self.kb.agents[CLOFARABINE].citations]
        key = f"{CLOFARABINE_RULE}/{index}"
        what = "age" if len(reasons) == 1 and " old (" in reasons[0] else "history"
        if len(reasons) == 2:
            what = "age and history"
        return self._card(
            key=key,
            hook_instance=hook_instance,
            summary=f"Clofarabine ordered outside its use in ALL (check {what})",
            indicator="warning",
            detail=f"**Order:** {order.label}\n\nClofarabine is an option for relapsed or refractory ALL in people "
            "aged 1 to 21 after at least 2 earlier regimens. Here " + "; and ".join(reasons) + ".",
            citations=citations,
            topic="order-safety",
            suggestions=self._delete_suggestion(order, key, hook_instance, "Remove the clofarabine order"),
        )

    def _tki_card(self, patient_id: str, hook_instance: str) -> dict[str, Any]:
        rule = self._tki_rule
        suggestions = []
        for agent_id in self._suggested_tkis:
            agent = self.kb.agents[agent_id]
            concept: dict[str, Any] = {"text": agent.name}
            codings = [
                {"system": c.system, "code": c.code, "display": c.display or agent.name}
                for c in agent.codes
                if c.system == RXNORM
            ]
            if codings:
                concept["coding"] = codings
            suggestions.append(
                {
                    "label": f"Add {agent.name} ({', '.join(agent.brand_names)})"
                    if agent.brand_names
                    else f"Add {agent.name}",
                    "uuid": card_uuid(hook_instance, f"{TKI_RULE}/add/{agent_id}"),
                    "actions": [
                        {
                            "type": "create",
                            "description": f"Draft an order for {agent.name}; the prescriber sets dose and schedule",
                            "resource": {
                                "resourceType": "MedicationRequest",
                                "status": "draft",
                                "intent": "proposal",
                                "subject": {"reference": f"Patient/{patient_id}"},
                                "medicationCodeableConcept": concept,
                                "note": [
                                    {"text": "Proposed by allpath: dose and schedule to be set by the prescriber."}
                                ],
                            },
                        }
                    ],
                }
            )
        return self._card(
            key=TKI_RULE,
            hook_instance=hook_instance,
            summary="Ph-positive ALL: these orders include chemotherapy but no tyrosine kinase inhibitor",
            indicator="warning",
            detail=f"{' '.join(rule.rationale.split())} "  # type: ignore[union-attr]
            f"{' '.join(rule.summary.split())}\n\n"  # type: ignore[union-attr]
            "No tyrosine kinase inhibitor is among the orders being signed or active in the record.",
            citations=rule.citations,
            topic="order-safety",
            suggestions=suggestions,
        )
