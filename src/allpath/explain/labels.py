"""Plain-language names for facts and rules, shared by every output that shows a plan.

The core holds them so that the text, the web pages, FHIR and CDS Hooks all say the same thing
(adapters import the core, never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass

from allpath.knowledge import KnowledgeBase
from allpath.knowledge.schema import AlertRule, NotRecommendedRule, RecommendationRule
from allpath.plan import Alert, NotRecommended, Plan, Recommendation

FACT_LABELS: dict[str, str] = {
    "age_years": "Age",
    "lineage": "Whether the leukemia is B-cell or T-cell",
    "ph_status": "Philadelphia chromosome (BCR-ABL1) status",
    "cns_involvement": "Leukemia in the brain or spinal fluid",
    "disease_status": "Where the illness stands now",
    "completed_phases": "Treatment phases already finished",
    "mrd_status": "Minimal residual disease (MRD) result",
    "remission_count": "Number of complete remissions so far",
    "relapse_count": "Number of relapses so far",
    "remission_duration_months": "Length of the remission before the relapse",
    "prior_regimen_count": "Number of chemotherapy regimens already received",
    "expected_survival_months": "The care team's estimate of how long life may last",
    "phase_in_progress": "The treatment phase under way now",
    "mrd_timepoint": "When the MRD result was taken",
    "relapse_site": "Where the leukemia came back",
    "months_from_diagnosis_to_relapse": "Time from diagnosis to the relapse",
    "relapse_during_therapy": "Whether the relapse came during treatment",
    "months_from_therapy_end_to_relapse": "Time from the end of treatment to the relapse",
    "cd19_status": "CD19 on the leukemia cells",
    "cd20_status": "CD20 on the leukemia cells",
    "cd22_status": "CD22 on the leukemia cells",
    "genetic_subtypes": "Genetic findings in the leukemia cells",
    "prior_therapies": "Therapies already received",
    "fit_for_intensive_therapy": "Whether intensive chemotherapy would be safe",
    "pregnant": "Pregnancy",
    "down_syndrome": "Down syndrome",
}


def fact_label(field: str) -> str:
    return FACT_LABELS.get(field) or field.replace("_", " ").capitalize()


def _short_note(message: str, limit: int = 140) -> str:
    # An alert's opening clause names it; a long one is cut at a word so a list of names stays a list.
    line = " ".join(message.split())
    ends = [i for i in (line.find(". "), line.find(": ")) if i != -1]
    line = line[: min(ends)] if ends else line.rstrip(".")
    if len(line) <= limit:
        return line
    return line[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _rule_label(
    rule: RecommendationRule | NotRecommendedRule | AlertRule | Recommendation | NotRecommended | Alert,
) -> str:
    # Alerts have no title, so their opening words stand for them.
    if isinstance(rule, AlertRule | Alert):
        return f"Note: {_short_note(rule.message)}"
    return rule.title


def rule_labels(plan: Plan, kb: KnowledgeBase | None = None) -> dict[str, str]:
    """A short name for each rule the plan's missing facts affect.

    A rule that fired is named as the plan shows it; one that did not is named from the
    knowledge base when it is given, and by its id otherwise.
    """
    wanted = {rule_id for m in plan.missing_facts for rule_id in m.affects}
    fired: list[Recommendation | NotRecommended | Alert] = [*plan.recommendations, *plan.not_recommended, *plan.alerts]
    names = {item.id: _rule_label(item) for item in fired if item.id in wanted}
    if kb is not None:
        for rule in kb.rules:
            if rule.id in wanted and rule.id not in names:
                names[rule.id] = _rule_label(rule)
    return names


@dataclass(frozen=True, slots=True)
class Affected:
    rule_id: str
    label: str


@dataclass(frozen=True, slots=True)
class MissingFactView:
    """A missing fact as people read it: its label and the options it would change."""

    field: str
    label: str
    affects: tuple[Affected, ...]


def missing_fact_views(plan: Plan, kb: KnowledgeBase | None = None) -> list[MissingFactView]:
    """The plan's missing facts in plan order (by field), labelled; empty when nothing is missing."""
    if not plan.missing_facts:
        return []
    names = rule_labels(plan, kb)
    return [
        MissingFactView(
            field=m.field,
            label=fact_label(m.field),
            affects=tuple(Affected(rule_id, names.get(rule_id, rule_id)) for rule_id in m.affects),
        )
        for m in plan.missing_facts
    ]
