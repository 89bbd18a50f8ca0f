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


_MARKER = {"positive": "Positive", "negative": "Negative", "unknown": "Not known"}
PHASE_LABELS: dict[str, str] = {
    "induction": "Induction",
    "consolidation": "Consolidation",
    "maintenance": "Maintenance",
    "reinduction": "Re-induction",
    "cns_prophylaxis": "CNS prophylaxis",
}
SUBTYPE_LABELS: dict[str, str] = {
    "bcr-abl1": "BCR::ABL1 (Philadelphia)",
    "ph-like": "Ph-like",
    "abl-class": "ABL-class fusion",
    "kmt2a": "KMT2A rearranged",
    "etv6-runx1": "ETV6::RUNX1",
    "high-hyperdiploid": "High hyperdiploid",
    "hypodiploid": "Hypodiploid",
    "iamp21": "iAMP21",
    "tcf3-pbx1": "TCF3::PBX1",
    "tcf3-hlf": "TCF3::HLF",
    "abl1-t315i": "ABL1 T315I mutation",
}
THERAPY_LABELS: dict[str, str] = {
    "blinatumomab": "Blinatumomab",
    "inotuzumab-ozogamicin": "Inotuzumab ozogamicin",
    "car-t": "CAR T-cell therapy",
    "allogeneic-sct": "Allogeneic (donor) stem cell transplant",
    "tki": "Tyrosine kinase inhibitor",
    "nelarabine": "Nelarabine",
    "clofarabine": "Clofarabine",
    "rituximab": "Rituximab",
    "cranial-radiation": "Cranial radiation",
}
RELAPSE_SITE_LABELS: dict[str, str] = {
    "marrow": "Bone marrow",
    "cns": "Central nervous system",
    "testicular": "Testicular",
    "combined": "Combined (marrow and elsewhere)",
    "other_extramedullary": "Other, outside the marrow",
    "unknown": "Not known",
}
# The name of each allowed value of each enum or list fact, as forms and record lines show it.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "lineage": {"B": "B-cell", "T": "T-cell", "unknown": "Not known"},
    "ph_status": _MARKER,
    "disease_status": {
        "newly_diagnosed": "Newly diagnosed",
        "in_remission": "In remission",
        "refractory": "Refractory",
        "relapsed": "Relapsed",
    },
    "completed_phases": PHASE_LABELS,
    "mrd_status": _MARKER,
    "phase_in_progress": {**PHASE_LABELS, "none": "Not started", "unknown": "Not known"},
    "mrd_timepoint": {
        "end_of_induction": "End of induction",
        "end_of_consolidation": "End of consolidation",
        "later": "Later",
        "unknown": "Not known",
    },
    "relapse_site": RELAPSE_SITE_LABELS,
    "cd19_status": _MARKER,
    "cd20_status": _MARKER,
    "cd22_status": _MARKER,
    "genetic_subtypes": SUBTYPE_LABELS,
    "prior_therapies": THERAPY_LABELS,
}
# The course record's status: the disease statuses, plus before a diagnosis and after death.
COURSE_STATUS_LABELS: dict[str, str] = {
    "not_diagnosed": "No diagnosis recorded",
    **VALUE_LABELS["disease_status"],
    "deceased": "Deceased",
}
# Inside a sentence of the text plan ("The leukemia is ..."), with the meaning spelt out.
DISEASE_STATUS_PHRASES: dict[str, str] = {
    "newly_diagnosed": "newly diagnosed",
    "in_remission": "in remission",
    "refractory": "refractory (did not respond to induction)",
    "relapsed": "relapsed (came back)",
}
CATEGORY_LABELS: dict[str, str] = {
    "chemotherapy": "Chemotherapy",
    "targeted_therapy": "Targeted therapy",
    "radiation_therapy": "Radiation therapy",
    "stem_cell_transplant": "Stem cell transplant",
    "supportive_care": "Supportive care",
    "palliative_care": "Palliative care",
    "hospice_care": "Hospice care",
    "clinical_trial": "Clinical trial",
    "testing": "Testing",
    "consultation": "Talk with a specialist",
    "cellular_therapy": "Cellular therapy",
}
STRENGTH_LABELS: dict[str, str] = {
    "standard": "standard treatment",
    "recommended": "recommended",
    "option": "an option",
    "consider": "worth asking about",
}
# The family page says the same in simpler words (it is read at grade 8 or below).
FAMILY_STRENGTH_LABELS: dict[str, str] = {
    "standard": "the usual treatment",
    "recommended": "advised",
    "option": "one choice",
    "consider": "ask about it",
}
# The patient list's flags (`allpath.store.service.patient_flags`), most pressing first.
FLAG_LABELS: dict[str, str] = {
    "critical_alert": "Critical alert",
    "died": "Died",
    "hospice": "In hospice care",
    "refractory": "Refractory",
    "relapsed": "Relapsed",
    "mrd_positive": "MRD positive",
    "pregnant": "Pregnant",
}
SEVERITY_LABELS: dict[str, str] = {"info": "Information", "warning": "Warning", "critical": "Critical"}
# Each kind of course event as its line in the record reads when it has nothing more to say.
EVENT_LABELS: dict[str, str] = {
    "diagnosed": "Diagnosed",
    "phase_started": "Phase started",
    "phase_completed": "Phase completed",
    "remission_achieved": "Complete remission",
    "induction_failed": "No remission (refractory)",
    "relapsed": "Relapse",
    "mrd_result": "MRD result",
    "transplant": "Transplant",
    "therapy_given": "Therapy given",
    "immunophenotype": "Immunophenotype",
    "genetics_result": "Genetic finding",
    "fitness_assessed": "Fitness assessed",
    "pregnancy_status": "Pregnancy status",
    "trial_enrolled": "Joined a clinical trial",
    "survival_estimate": "Expected survival",
    "hospice_started": "Hospice started",
    "treatment_completed": "Treatment completed",
    "died": "Died",
    "retracted": "Retracted",
}
# The values of an event's fields, by field name (a name means the same in every event).
EVENT_VALUE_LABELS: dict[str, dict[str, str]] = {
    "lineage": VALUE_LABELS["lineage"],
    "ph_status": VALUE_LABELS["ph_status"],
    "phase": PHASE_LABELS,
    "site": RELAPSE_SITE_LABELS,
    "result": _MARKER,
    "kind": {"allogeneic": "Allogeneic (donor)", "autologous": "Autologous (own cells)"},
    "therapy": THERAPY_LABELS,
    "cd19": _MARKER,
    "cd20": _MARKER,
    "cd22": _MARKER,
    "findings": SUBTYPE_LABELS,
}


def value_label(field: str, value: str) -> str:
    """The name of one value of a fact (`value_label("lineage", "B")` is "B-cell")."""
    return VALUE_LABELS.get(field, {}).get(value) or value.replace("_", " ").capitalize()


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
