"""The shape of the knowledge base, as pydantic models.

The YAML files under `packs/` are the source of truth; these models say what a valid file
looks like. `load_kb` adds the checks that span files (ids resolve, citations name a real
source section, conditions name real facts with values of the right type).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from allpath.facts import DiseaseStatus
from allpath.plan import Category, Citation, PhaseId, Route, Severity, Strength

Op = Literal["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "is_null", "not_null", "contains", "not_contains"]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# Sources an update pack may rest on: the regulator's own notices and labels, or the maker's
# dated announcement of a regulatory event (see PackFile._update_pack_sources).
PRIMARY_SOURCE_KINDS = ("drug-label", "regulatory-notice", "press-release", "manufacturer-letter")
# A practice pack rests on dated primary sources of practice: guidelines, labels and notices, and
# peer-reviewed trial reports (kind literature).
PRACTICE_SOURCE_KINDS = ("guideline", "drug-label", "regulatory-notice", "literature")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The languages a knowledge base speaks to patients and families. Each pack entry is written in
# English; every patient-facing entry also carries its text in each other language, in a block
# named by the language code (`es:`), and the loader refuses an entry that lacks one.
LANGUAGES: tuple[str, ...] = ("en", "es")
TRANSLATED: tuple[str, ...] = tuple(lang for lang in LANGUAGES if lang != "en")


class AgentTexts(_Strict):
    """An agent's patient-facing words in another language (names and brands stay as they are)."""

    summary: str = Field(min_length=1)
    boxed_warning: str | None = None


class PhaseTexts(_Strict):
    name: str = Field(min_length=1)
    aliases: list[str] = Field([], description="Words people use for the phase in this language (for search).")
    timing: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    setting: str = Field(min_length=1)
    facts: list[str]


class TopicTexts(_Strict):
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    points: list[str]
    keywords: list[str] = Field([], description="Words people search for in this language.")


class FamilyTexts(_Strict):
    title: str | None = None
    text: str = Field(min_length=1)


class GlossaryTexts(_Strict):
    term: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    words: list[str] = Field([], description="Words on a page in this language that mean this term.")


class PackTexts(_Strict):
    disclaimer: str = Field(min_length=1)


class AmendmentTexts(_Strict):
    """A practice change's new patient-facing wording (topic summary and points, agent boxed warning)."""

    summary: str | None = None
    points: list[str] | None = None
    boxed_warning: str | None = None


class Coding(_Strict):
    """A code in a standard terminology, with the public source that confirms it."""

    system: str
    code: str
    display: str | None = None
    confirmed_by: str = Field(description="Where the code was confirmed (release, IG, code set).")
    note: str | None = None


class Source(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str
    publisher: str
    approved: str = Field(
        pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$", description="Approval or publication date (year, month or day)."
    )
    url: str | None = None
    kind: Literal[
        "patient-education",
        "drug-label",
        "literature",
        "code-system",
        "guideline",
        "regulatory-notice",
        "press-release",
        "manufacturer-letter",
    ]
    sections: list[str] = Field(min_length=1)
    confirmed_via: str | None = Field(None, description="Where the curators read and confirmed this source.")


class Parameter(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    value: float
    unit: str
    description: str
    rationale: str
    citations: list[Citation] = Field(min_length=1)


class Agent(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(pattern=r"^[a-z][a-z0-9 -]*$", description="Generic name, lower-case as RxNorm spells it.")
    page_spelling: str | None = None
    brand_names: list[str]
    drug_class: str
    routes: list[Route] = Field(min_length=1)
    used_in: list[str]
    summary: str
    note: str | None = None
    codes: list[Coding] = []
    boxed_warning: str | None = Field(None, description="The label's boxed warning, in our words.")
    citations: list[Citation] = Field(min_length=1)
    superseded_by: str | None = Field(None, description="Set only by a later pack's amendment.")
    es: AgentTexts | None = None


class Phase(_Strict):
    id: PhaseId
    name: str
    aliases: list[str]
    timing: str
    goal: str
    setting: str
    facts: list[str]
    citations: list[Citation] = Field(min_length=1)
    es: PhaseTexts | None = None


class Topic(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    kind: Literal[
        "modality",
        "side_effects",
        "supportive_care",
        "what_to_expect",
        "care_team",
        "disease_state",
        "testing",
        "support",
    ]
    title: str
    summary: str
    points: list[str]
    keywords: list[str]
    citations: list[Citation] = Field(min_length=1)
    es: TopicTexts | None = None


class FamilyText(_Strict):
    """One sentence (or two) of ours on the family's plan page, and the page sections it rests on.

    Kept in the packs, not in the web code, so its citations are checked at load like every
    other entry: a renamed source section fails the load instead of dropping the reference.
    One `text` per entry so that a translation can sit beside it.
    """

    id: str = Field(pattern=ID_PATTERN)
    section: Literal["status", "after", "side_effects", "call_team", "questions"]
    title: str | None = Field(None, description="The short heading an item carries (call the team, questions).")
    text: str
    disease_status: list[DiseaseStatus] = Field(
        [], description="Shown only for these disease statuses; empty: for every status."
    )
    citations: list[Citation] = Field(min_length=1)
    es: FamilyTexts | None = None


class GlossaryTerm(_Strict):
    """A word families meet on their pages and in the clinic, explained in a sentence of ours."""

    id: str = Field(pattern=ID_PATTERN)
    term: str
    definition: str
    words: list[str] = Field([], description="Words on a page that mean this term (lower case).")
    citations: list[Citation] = Field(min_length=1)
    es: GlossaryTexts | None = None


# --- condition trees -----------------------------------------------------------------------


class ParamRef(_Strict):
    param: str


class FactTest(_Strict):
    fact: str
    op: Op
    value: Any = None


class AllOf(_Strict):
    all: list[Condition]


class AnyOf(_Strict):
    any: list[Condition] = Field(min_length=1)


class NotOf(_Strict):
    not_: Condition = Field(alias="not")


class RuleRef(_Strict):
    ref: str


def _condition_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("all", "any", "not", "ref"):
            if key in value:
                return key
        return "fact"
    kinds: dict[type, str] = {AllOf: "all", AnyOf: "any", NotOf: "not", RuleRef: "ref"}
    return kinds.get(type(value), "fact")


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[RuleRef, Tag("ref")]
    | Annotated[FactTest, Tag("fact")],
    Discriminator(_condition_kind),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


# --- rules -----------------------------------------------------------------------------------


class AgentUse(_Strict):
    """An agent named by a rule, optionally narrowed to the routes used in that setting."""

    agent: str
    routes: list[Route] | None = None


class Variant(_Strict):
    when: Condition
    strength: Strength | None = None
    title: str | None = None
    citations: list[Citation] = Field([], description="Sources of this case, cited beside the rule's own.")
    expected_outcome: str | None = None
    rationale: str | None = None
    summary: str | None = None


class _RuleBase(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    when: Condition
    citations: list[Citation] = Field(min_length=1)
    superseded_by: str | None = Field(None, description="Set only by a later pack: what replaced this statement.")


class RecommendationRule(_RuleBase):
    kind: Literal["recommendation"]
    category: Category
    phase: PhaseId | None = None
    strength: Strength
    title: str
    summary: str
    rationale: str
    expected_outcome: str | None = None
    agents: list[str | AgentUse] = []
    variants: list[Variant] = []


class NotRecommendedRule(_RuleBase):
    kind: Literal["not_recommended"]
    title: str
    reason: str


class AlertRule(_RuleBase):
    kind: Literal["alert"]
    severity: Severity
    message: str


Rule = Annotated[RecommendationRule | NotRecommendedRule | AlertRule, Field(discriminator="kind")]


FLAG_CHANGES = ("superseded", "withdrawn", "discontinued", "off_label")
PRACTICE_CHANGES = ("restricted", "redefined", "strength", "suppressed", "label_update", "reworded")


class Amendment(_Strict):
    """A later pack's change to a statement (rule, agent or topic) of an earlier pack, applied at load.

    Flags (`superseded`, `withdrawn`, `discontinued`, `off_label`): the target keeps every field
    it had and gains `superseded_by`, so every output shows the note. Practice changes, made only
    by a practice pack: `also_when` (the rule fires only when this holds too), `when` (the rule's
    condition restated), `variants` (checked before the rule's own: strength and wording for a
    case), `suppressed` (the rule is gone from plans; a `ref` to it never holds), and for agents
    `routes` and `boxed_warning`, for topics `summary` and `points`. `allpath kb diff` shows the
    resulting rules, agents and topics field by field.
    """

    target: str = Field(pattern=ID_PATTERN)
    target_kind: Literal["rule", "agent", "topic"]
    change: Literal[
        "superseded",
        "withdrawn",
        "discontinued",
        "off_label",
        "restricted",
        "redefined",
        "strength",
        "suppressed",
        "label_update",
        "reworded",
    ]
    severity: Severity = "info"
    effective: str = Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$", description="When the change took effect.")
    superseded_by: str | None = Field(None, min_length=1)
    replaced_by: list[str] = Field([], description="Rules of the amending pack that now carry the statement.")
    alert: str | None = Field(None, description="The amending pack's alert rule about this change.")
    reason: str | None = Field(None, description="Why a practice change was made, for the review record.")
    when: Condition | None = None
    also_when: Condition | None = None
    variants: list[Variant] = []
    routes: list[Route] | None = None
    boxed_warning: str | None = None
    summary: str | None = None
    points: list[str] | None = None
    citations: list[Citation] = Field(min_length=1)
    es: AmendmentTexts | None = None

    @model_validator(mode="after")
    def _fields_suit_the_change(self) -> Amendment:
        if self.change in FLAG_CHANGES and not self.superseded_by:
            raise ValueError(f"a {self.change!r} amendment says what replaced the statement (superseded_by)")
        rule_only: dict[str, object] = {"when": self.when, "also_when": self.also_when, "variants": self.variants}
        agent_only: dict[str, object] = {"routes": self.routes, "boxed_warning": self.boxed_warning}
        topic_only: dict[str, object] = {"summary": self.summary, "points": self.points}
        allowed = {"rule": rule_only, "agent": agent_only, "topic": topic_only}[self.target_kind]
        for name, value in {**rule_only, **agent_only, **topic_only}.items():
            if value and name not in allowed:
                raise ValueError(f"{name}: does not apply to a {self.target_kind} amendment")
        if self.change in PRACTICE_CHANGES and not (self.reason or self.superseded_by):
            raise ValueError(f"a {self.change!r} amendment gives its reason")
        return self


class NamedCondition(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    description: str
    when: Condition


# --- files -------------------------------------------------------------------------------------


class Omission(_Strict):
    """Something looked for and left out of a pack, with the reason (listed in the pack's docs)."""

    item: str
    reason: str


class PackFile(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    kind: Literal["base", "update", "practice"] = Field(
        "base",
        description="An update or practice pack only adds entries and amends earlier ones, citing dated primary "
        "sources (a practice pack also cites guidelines and peer-reviewed trial reports).",
    )
    version: str
    title: str
    curated_by: str
    reviewed: str = Field(pattern=DAY_PATTERN)
    disclaimer: str | None = None
    es: PackTexts | None = None
    sources: list[Source] = []
    parameters: list[Parameter] = []
    not_included: list[Omission] = []
    conventions: list[str] = Field([], description="How the pack turns label wording into conditions.")

    @model_validator(mode="after")
    def _update_pack_sources(self) -> PackFile:
        if self.kind == "base":
            return self
        kinds = PRIMARY_SOURCE_KINDS if self.kind == "update" else PRACTICE_SOURCE_KINDS
        for i, source in enumerate(self.sources):
            where = f"sources[{i}] ({source.id})"
            if source.kind not in kinds:
                raise ValueError(f"{where}: an {self.kind} pack cites primary sources only {kinds}")
            if not source.confirmed_via:
                raise ValueError(f"{where}: a {self.kind} pack's source says where it was confirmed (confirmed_via)")
            if self.kind == "practice":
                continue
            if not re.match(DAY_PATTERN, source.approved):
                raise ValueError(f"{where}: an update pack's source needs a full date (YYYY-MM-DD)")
            if not source.confirmed_via:
                raise ValueError(f"{where}: an update pack's source says where it was confirmed (confirmed_via)")
        return self


class AgentsFile(_Strict):
    agents: list[Agent]


class PhasesFile(_Strict):
    phases: list[Phase]


class TopicsFile(_Strict):
    topics: list[Topic]


class FamilyFile(_Strict):
    texts: list[FamilyText]


class GlossaryFile(_Strict):
    terms: list[GlossaryTerm]


class AmendmentsFile(_Strict):
    amendments: list[Amendment]


class RulesFile(_Strict):
    rules: list[Rule]
    conditions: list[NamedCondition] = []
