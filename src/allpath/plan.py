"""The output contract: a `Plan` and its parts, as the engine returns and every adapter serialises it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from allpath.facts import PatientFacts

Category = Literal[
    "chemotherapy",
    "targeted_therapy",
    "radiation_therapy",
    "stem_cell_transplant",
    "supportive_care",
    "palliative_care",
    "hospice_care",
    "clinical_trial",
    "testing",
    "consultation",
    "cellular_therapy",
]
PhaseId = Literal["induction", "consolidation", "maintenance", "cns_prophylaxis", "reinduction"]
Strength = Literal["standard", "recommended", "option", "consider"]
Severity = Literal["info", "warning", "critical"]
Route = Literal["intravenous", "intramuscular", "subcutaneous", "oral", "intrathecal"]

STRENGTH_ORDER: tuple[Strength, ...] = ("standard", "recommended", "option", "consider")
SEVERITY_ORDER: tuple[Severity, ...] = ("critical", "warning", "info")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Out):
    source_id: str
    section: str


class AgentInfo(_Out):
    id: str = Field(description="The knowledge base's agent id, the key its codes and labels are found under.")
    name: str = Field(description="Generic name, lower-case, as RxNorm spells the ingredient.")
    brand_names: list[str]
    drug_class: str
    routes: list[Route]
    superseded_by: str | None = Field(
        None, description="Set when a later knowledge pack flags this statement: what replaced it, and when."
    )
    boxed_warning: str | None = Field(None, description="The FDA label's boxed warning, in plain words.")


class Recommendation(_Out):
    id: str
    category: Category
    phase: PhaseId | None
    strength: Strength
    title: str
    summary: str = Field(description="Plain language, for a patient or family.")
    rationale: str = Field(description="Why it applies to these facts.")
    expected_outcome: str | None
    agents: list[AgentInfo]
    citations: list[Citation] = Field(min_length=1)
    superseded_by: str | None = Field(
        None, description="Set when a later knowledge pack flags this statement: what replaced it, and when."
    )


class NotRecommended(_Out):
    id: str
    title: str
    reason: str
    citations: list[Citation] = Field(min_length=1)
    superseded_by: str | None = Field(
        None, description="Set when a later knowledge pack flags this statement: what replaced it, and when."
    )


class Alert(_Out):
    id: str
    severity: Severity
    message: str
    citations: list[Citation] = Field(min_length=1)
    superseded_by: str | None = Field(
        None, description="Set when a later knowledge pack flags this statement: what replaced it, and when."
    )


class MissingFact(_Out):
    """A fact left unknown whose value would change this plan (which rules fire, or which variant)."""

    field: str = Field(description="The PatientFacts field left unknown (omitted, null or `unknown`).")
    affects: list[str] = Field(
        min_length=1, description="Rule ids whose outcome some allowed value of the field would change, sorted."
    )


class SourceRef(_Out):
    id: str
    title: str
    publisher: str
    approved: str


class PackRef(_Out):
    """One knowledge pack that produced the plan."""

    id: str
    version: str
    reviewed: str


class KnowledgeInfo(_Out):
    version: str
    sources: list[SourceRef]
    packs: list[PackRef] = Field(
        default_factory=list, description="The knowledge packs that produced the plan, in load order."
    )


class Plan(_Out):
    """Cited treatment options for one set of facts. Deterministic: equal facts give equal plans."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="Plan")

    knowledge: KnowledgeInfo
    facts: PatientFacts
    recommendations: list[Recommendation]
    not_recommended: list[NotRecommended]
    alerts: list[Alert]
    missing_facts: list[MissingFact] = Field(
        default_factory=list,
        description="Unknown facts that would change this plan, sorted by field: what would sharpen it.",
    )
    disclaimer: str

    def recommendation_ids(self) -> list[str]:
        return [r.id for r in self.recommendations]

    def fired_ids(self) -> list[str]:
        """Every rule id that fired, whatever its kind, in plan order."""
        return [r.id for r in self.recommendations] + [n.id for n in self.not_recommended] + [a.id for a in self.alerts]
