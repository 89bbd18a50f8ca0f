"""PatientFacts: the input contract of the engine, and how its problems are reported.

Every adapter (CLI, REST, FHIR import, course history, cohort tables) ends in
`PatientFacts.parse(...)`, so a problem is described the same way everywhere:
one `Problem(field, problem)` per fault, naming the field.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from allpath.errors import BadInputError, field_path
from allpath.errors import Problem as Problem  # re-exported: most callers know Problem from here

Lineage = Literal["B", "T", "unknown"]
PhStatus = Literal["positive", "negative", "unknown"]
MrdStatus = Literal["positive", "negative", "unknown"]
DiseaseStatus = Literal["newly_diagnosed", "in_remission", "refractory", "relapsed"]
CompletedPhase = Literal["induction", "consolidation", "maintenance"]
PhaseInProgress = Literal["none", "induction", "consolidation", "maintenance", "unknown"]
MrdTimepoint = Literal["end_of_induction", "end_of_consolidation", "later", "unknown"]
RelapseSite = Literal["marrow", "cns", "testicular", "combined", "other_extramedullary", "unknown"]
MarkerStatus = Literal["positive", "negative", "unknown"]
GeneticSubtype = Literal[
    "bcr-abl1",
    "ph-like",
    "abl-class",
    "kmt2a",
    "etv6-runx1",
    "high-hyperdiploid",
    "hypodiploid",
    "iamp21",
    "tcf3-pbx1",
    "tcf3-hlf",
    "abl1-t315i",
]
PriorTherapy = Literal[
    "blinatumomab",
    "inotuzumab-ozogamicin",
    "car-t",
    "allogeneic-sct",
    "tki",
    "nelarabine",
    "clofarabine",
    "rituximab",
    "cranial-radiation",
]

# Treatment phases finish in this order; facts keep them in it so that equal
# histories give equal facts (and equal plans).
PHASE_ORDER: tuple[CompletedPhase, ...] = ("induction", "consolidation", "maintenance")
GENETIC_SUBTYPES: tuple[GeneticSubtype, ...] = get_args(GeneticSubtype)
PRIOR_THERAPIES: tuple[PriorTherapy, ...] = get_args(PriorTherapy)
# Fields of a relapse: set only once there has been one.
RELAPSE_FIELDS: tuple[str, ...] = (
    "relapse_site",
    "months_from_diagnosis_to_relapse",
    "relapse_during_therapy",
    "months_from_therapy_end_to_relapse",
)
# The column that names the patient in a table of facts (a cohort's input, a Bulk Data import's
# output, the rows a cohort query keeps): one row per patient, this column beside FIELD_NAMES.
ID_COLUMN = "patient_id"
FIELD_NAMES: tuple[str, ...] = (
    "age_years",
    "lineage",
    "ph_status",
    "cns_involvement",
    "disease_status",
    "completed_phases",
    "mrd_status",
    "remission_count",
    "relapse_count",
    "remission_duration_months",
    "prior_regimen_count",
    "expected_survival_months",
    "phase_in_progress",
    "mrd_timepoint",
    "relapse_site",
    "months_from_diagnosis_to_relapse",
    "relapse_during_therapy",
    "months_from_therapy_end_to_relapse",
    "cd19_status",
    "cd20_status",
    "cd22_status",
    "genetic_subtypes",
    "prior_therapies",
    "fit_for_intensive_therapy",
    "pregnant",
    "down_syndrome",
)


class ProblemsError(BadInputError):
    """Bad input, with every problem found (field and problem), never just the first.

    The base of each layer's input error, so every adapter can turn `.problems` into a CLI exit
    2 or an HTTP 4xx body the same way.
    """

    def __init__(self, problems: list[Problem]):
        super().__init__(None, problems)


class FactsError(ProblemsError):
    """Raised by `PatientFacts.parse` with every problem found, never just the first."""

    title = "invalid facts"


class PatientFacts(BaseModel):
    """What the engine needs to know about one person with ALL, at one moment."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, title="PatientFacts")

    age_years: float = Field(ge=0, le=120, strict=True, description="Age now, in years.")
    lineage: Lineage = Field("unknown", description="B-cell or T-cell ALL.")
    ph_status: PhStatus = Field("unknown", description="Philadelphia chromosome (BCR-ABL1) status.")
    cns_involvement: bool | None = Field(
        None, strict=True, description="Leukemia found in the brain or spinal fluid (null: not known)."
    )
    disease_status: DiseaseStatus = Field(description="Where the illness stands now.")
    completed_phases: tuple[CompletedPhase, ...] = Field(
        (),
        description="Phases already finished in the current line of treatment "
        "(after a relapse the count starts again).",
    )
    mrd_status: MrdStatus = Field("unknown", description="Minimal residual disease.")
    remission_count: int = Field(0, ge=0, strict=True, description="Complete remissions achieved so far.")
    relapse_count: int = Field(0, ge=0, strict=True, description="Relapses so far.")
    remission_duration_months: float | None = Field(
        None, ge=0, strict=True, description="Length of the remission before the latest relapse, in months."
    )
    prior_regimen_count: int | None = Field(
        None,
        ge=0,
        strict=True,
        description="Chemotherapy regimens already received (the first induction counts; null: not known).",
    )
    expected_survival_months: float | None = Field(
        None, ge=0, strict=True, description="Clinician's estimate of survival in advanced disease, in months."
    )
    # --- v2: the journey -------------------------------------------------------------------
    phase_in_progress: PhaseInProgress = Field(
        "unknown",
        description="Phase under way now in the current line of treatment (none: this line has not started).",
    )
    mrd_timepoint: MrdTimepoint = Field("unknown", description="When the MRD result was taken.")
    relapse_site: RelapseSite = Field(
        "unknown", description="Site of the latest relapse (combined: marrow plus elsewhere)."
    )
    months_from_diagnosis_to_relapse: float | None = Field(
        None, ge=0, strict=True, description="Months from first diagnosis to the latest relapse."
    )
    relapse_during_therapy: bool | None = Field(
        None, strict=True, description="The latest relapse came before the end of planned therapy."
    )
    months_from_therapy_end_to_relapse: float | None = Field(
        None, ge=0, strict=True, description="Months from the end of therapy to the latest relapse."
    )
    # --- v2: the biology ---------------------------------------------------------------------
    cd19_status: MarkerStatus = Field("unknown", description="CD19 on the leukemia cells.")
    cd20_status: MarkerStatus = Field("unknown", description="CD20 on the leukemia cells.")
    cd22_status: MarkerStatus = Field("unknown", description="CD22 on the leukemia cells.")
    genetic_subtypes: tuple[GeneticSubtype, ...] = Field(
        (), description="Genetic findings known (an empty list says none is known, not that none is present)."
    )
    # --- v2: what was received, and the person -------------------------------------------------
    prior_therapies: tuple[PriorTherapy, ...] = Field((), description="Therapies already received.")
    fit_for_intensive_therapy: bool | None = Field(
        None, strict=True, description="The care team judges the patient fit for intensive chemotherapy."
    )
    pregnant: bool | None = Field(None, strict=True, description="Pregnant now (null: not known).")
    down_syndrome: bool | None = Field(None, strict=True, description="Has Down syndrome (null: not known).")

    @field_validator("completed_phases", mode="after")
    @classmethod
    def _canonical_phase_order(cls, phases: tuple[CompletedPhase, ...]) -> tuple[CompletedPhase, ...]:
        present = set(phases)
        return tuple(p for p in PHASE_ORDER if p in present)

    @field_validator("genetic_subtypes", mode="after")
    @classmethod
    def _canonical_subtype_order(cls, values: tuple[GeneticSubtype, ...]) -> tuple[GeneticSubtype, ...]:
        present = set(values)
        return tuple(v for v in GENETIC_SUBTYPES if v in present)

    @field_validator("prior_therapies", mode="after")
    @classmethod
    def _canonical_therapy_order(cls, values: tuple[PriorTherapy, ...]) -> tuple[PriorTherapy, ...]:
        present = set(values)
        return tuple(v for v in PRIOR_THERAPIES if v in present)

    @model_validator(mode="before")
    @classmethod
    def _bcr_abl1_means_ph_positive(cls, data: Any) -> Any:
        # A BCR::ABL1 fusion is the Philadelphia chromosome's product: with Ph status left
        # unknown, the finding answers it. (Ph negative beside it is a contradiction, below.)
        if isinstance(data, Mapping):
            subtypes = data.get("genetic_subtypes")
            if (
                isinstance(subtypes, list | tuple)
                and "bcr-abl1" in subtypes
                and data.get("ph_status", "unknown") == "unknown"
            ):
                return {**data, "ph_status": "positive"}
        return data

    @model_validator(mode="after")
    def _no_contradictions(self) -> PatientFacts:
        found = contradictions(self)
        if found:
            raise PydanticCustomError(
                "contradiction",
                "; ".join(str(p) for p in found),
                {"problems": [p.as_dict() for p in found]},
            )
        return self

    @classmethod
    def parse(cls, data: Any) -> PatientFacts:
        """Validate a mapping (or JSON text) and raise `FactsError` naming every faulty field."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise FactsError([Problem("$", f"malformed JSON: {exc.msg} at line {exc.lineno}")]) from None
        if not isinstance(data, Mapping):
            raise FactsError([Problem("$", f"expected a JSON object, got {_json_type(data)}")])
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise FactsError(describe_validation_error(exc)) from None


def contradictions(facts: PatientFacts) -> list[Problem]:
    """Facts that each look valid alone but cannot all be true together."""
    found: list[Problem] = []
    done: set[str] = set(facts.completed_phases)
    if facts.relapse_count > facts.remission_count:
        found.append(
            Problem(
                "relapse_count",
                f"must be <= remission_count ({facts.remission_count}): a relapse follows a remission",
            )
        )
    if facts.disease_status == "newly_diagnosed":
        for name in ("remission_count", "relapse_count", "prior_regimen_count"):
            if getattr(facts, name) not in (0, None):
                found.append(Problem(name, "must be 0 when disease_status is newly_diagnosed"))
        if facts.completed_phases:
            found.append(Problem("completed_phases", "must be empty when disease_status is newly_diagnosed"))
    elif facts.disease_status == "in_remission":
        if facts.remission_count <= facts.relapse_count:
            found.append(
                Problem(
                    "remission_count",
                    f"must be > relapse_count ({facts.relapse_count}) when disease_status is in_remission",
                )
            )
    elif facts.disease_status == "relapsed" and facts.relapse_count < 1:
        found.append(Problem("relapse_count", "must be >= 1 when disease_status is relapsed"))
    if "consolidation" in done and "induction" not in done:
        found.append(Problem("completed_phases", "consolidation needs induction completed first"))
    if "maintenance" in done and "consolidation" not in done:
        found.append(Problem("completed_phases", "maintenance needs consolidation completed first"))
    found.extend(_v2_contradictions(facts, done))
    return found


def _v2_contradictions(facts: PatientFacts, done: set[str]) -> list[Problem]:
    found: list[Problem] = []
    if facts.relapse_count == 0:
        if facts.relapse_site != "unknown":
            found.append(Problem("relapse_site", "must be unknown when relapse_count is 0: there has been no relapse"))
        for name in RELAPSE_FIELDS[1:]:
            if getattr(facts, name) is not None:
                found.append(Problem(name, "must be null when relapse_count is 0: there has been no relapse"))
    if facts.relapse_during_therapy is True and facts.months_from_therapy_end_to_relapse is not None:
        found.append(
            Problem(
                "months_from_therapy_end_to_relapse",
                "must be null when relapse_during_therapy is true: therapy had not ended",
            )
        )
    if (
        facts.remission_duration_months is not None
        and facts.months_from_diagnosis_to_relapse is not None
        and facts.remission_duration_months > facts.months_from_diagnosis_to_relapse
    ):
        found.append(
            Problem(
                "remission_duration_months",
                f"must be <= months_from_diagnosis_to_relapse ({_number(facts.months_from_diagnosis_to_relapse)}): "
                "the remission lies between diagnosis and the relapse",
            )
        )
    if facts.phase_in_progress in done:
        found.append(
            Problem("phase_in_progress", f"{facts.phase_in_progress} is listed in completed_phases: it cannot be both")
        )
    subtypes = set(facts.genetic_subtypes)
    if "bcr-abl1" in subtypes and facts.ph_status == "negative":
        found.append(Problem("genetic_subtypes", "bcr-abl1 contradicts ph_status negative"))
    if "bcr-abl1" in subtypes:
        for other in ("ph-like", "abl-class"):
            if other in subtypes:
                found.append(
                    Problem("genetic_subtypes", f"{other} excludes bcr-abl1: it names a BCR::ABL1-negative subtype")
                )
    if "abl1-t315i" in subtypes and "bcr-abl1" not in subtypes:
        found.append(Problem("genetic_subtypes", "abl1-t315i is a mutation of BCR::ABL1: it needs bcr-abl1"))
    return found


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def describe_validation_error(exc: ValidationError) -> list[Problem]:
    """Turn pydantic's errors into short, field-first sentences (`age_years: must be >= 0`)."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        ctx = err.get("ctx") or {}
        field = field_path(err["loc"])
        if kind == "contradiction":
            problems.extend(Problem(p["field"], p["problem"]) for p in ctx["problems"])
            continue
        text = _problem_text(kind, ctx, err)
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            # The problem is the tag field itself (event.type), not the whole object.
            field = (
                f"{field}.{str(ctx['discriminator']).strip(chr(39))}" if field else str(ctx["discriminator"]).strip("'")
            )
        if kind == "extra_forbidden" and len(err["loc"]) == 1:
            text += _did_you_mean(str(err["loc"][0]))
        problems.append(Problem(field, text))
    return problems


def _did_you_mean(name: str) -> str:
    # A misspelt field ("disease_stauts") is the commonest input mistake; name the likely one.
    close = difflib.get_close_matches(name, list(PatientFacts.model_fields), n=1, cutoff=0.75)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _problem_text(kind: str, ctx: Mapping[str, Any], err: Mapping[str, Any]) -> str:
    match kind:
        case "missing":
            return "is required"
        case "extra_forbidden":
            return "is not a known field"
        case "greater_than_equal":
            return f"must be >= {_number(ctx['ge'])}"
        case "greater_than":
            return f"must be > {_number(ctx['gt'])}"
        case "less_than_equal":
            return f"must be <= {_number(ctx['le'])}"
        case "less_than":
            return f"must be < {_number(ctx['lt'])}"
        case "literal_error":
            return f"must be one of {ctx['expected']}"
        case "int_type" | "int_parsing" | "int_from_float":
            return "must be a whole number"
        case "float_type" | "float_parsing":
            return "must be a number"
        case "finite_number":
            return "must be a finite number"
        case "bool_type" | "bool_parsing":
            return "must be true, false or null"
        case "tuple_type" | "list_type":
            return "must be a list"
        case "union_tag_invalid":
            return f"must be one of: {ctx['expected_tags']}"
        case "union_tag_not_found":
            return "is required: it names the kind of event"
        case "model_type" | "dict_type" | "model_attributes_type":
            return "must be an object"
        case _:
            return str(err["msg"]).rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class FactKind:
    """What a rule may say about one fact: its type, its allowed values, whether it can be null."""

    type: Literal["number", "integer", "enum", "boolean", "list"]
    nullable: bool
    values: tuple[str, ...] = ()


def _fact_kinds() -> dict[str, FactKind]:
    # Derived from the model itself, so a new field cannot be forgotten here.
    kinds: dict[str, FactKind] = {}
    for name, info in PatientFacts.model_fields.items():
        annotation = info.annotation
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = type(None) in get_args(annotation)
        base = args[0] if nullable and len(args) == 1 else annotation
        if base is float:
            kinds[name] = FactKind("number", nullable)
        elif base is int:
            kinds[name] = FactKind("integer", nullable)
        elif base is bool:
            kinds[name] = FactKind("boolean", nullable)
        elif get_origin(base) is Literal:
            kinds[name] = FactKind("enum", nullable, tuple(get_args(base)))
        elif get_origin(base) is tuple:
            (item,) = (a for a in get_args(base) if a is not Ellipsis)
            kinds[name] = FactKind("list", nullable, tuple(get_args(item)))
        else:  # pragma: no cover - a new field type must be taught to the rule checker
            raise TypeError(f"PatientFacts.{name}: no rule type for {annotation!r}")
    return kinds


FACT_KINDS: dict[str, FactKind] = _fact_kinds()
