"""PatientFacts: the input contract of the engine, and how its problems are reported.

Every adapter (CLI, REST, FHIR import, course history, cohort tables) ends in
`PatientFacts.parse(...)`, so a problem is described the same way everywhere:
one `Problem(field, problem)` per fault, naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

Lineage = Literal["B", "T", "unknown"]
PhStatus = Literal["positive", "negative", "unknown"]
MrdStatus = Literal["positive", "negative", "unknown"]
DiseaseStatus = Literal["newly_diagnosed", "in_remission", "refractory", "relapsed"]
CompletedPhase = Literal["induction", "consolidation", "maintenance"]

# Treatment phases finish in this order; facts keep them in it so that equal
# histories give equal facts (and equal plans).
PHASE_ORDER: tuple[CompletedPhase, ...] = ("induction", "consolidation", "maintenance")
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
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, named by its field (dotted path for nested input)."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class ProblemsError(ValueError):
    """Bad input, with every problem found (field and problem), never just the first.

    The base of each layer's input error, so every adapter can turn `.problems` into a CLI exit
    2 or an HTTP 4xx body the same way.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class FactsError(ProblemsError):
    """Raised by `PatientFacts.parse` with every problem found, never just the first."""


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
    prior_regimen_count: int = Field(
        0, ge=0, strict=True, description="Chemotherapy regimens already received (the first induction counts)."
    )
    expected_survival_months: float | None = Field(
        None, ge=0, strict=True, description="Clinician's estimate of survival in advanced disease, in months."
    )

    @field_validator("completed_phases", mode="after")
    @classmethod
    def _canonical_phase_order(cls, phases: tuple[CompletedPhase, ...]) -> tuple[CompletedPhase, ...]:
        present = set(phases)
        return tuple(p for p in PHASE_ORDER if p in present)

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
    done = set(facts.completed_phases)
    if facts.relapse_count > facts.remission_count:
        found.append(
            Problem(
                "relapse_count",
                f"must be <= remission_count ({facts.remission_count}): a relapse follows a remission",
            )
        )
    if facts.disease_status == "newly_diagnosed":
        for name in ("remission_count", "relapse_count", "prior_regimen_count"):
            if getattr(facts, name) != 0:
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


def _loc_to_field(loc: Iterable[Any]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif parts:
            parts.append(f".{part}")
        else:
            parts.append(str(part))
    return "".join(parts) or "$"


def describe_validation_error(exc: ValidationError) -> list[Problem]:
    """Turn pydantic's errors into short, field-first sentences (`age_years: must be >= 0`)."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        ctx = err.get("ctx") or {}
        field = _loc_to_field(err["loc"])
        if kind == "contradiction":
            problems.extend(Problem(p["field"], p["problem"]) for p in ctx["problems"])
            continue
        problems.append(Problem(field, _problem_text(kind, ctx, err)))
    return problems


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
        case "model_type" | "dict_type" | "model_attributes_type":
            return "must be an object"
        case _:
            return str(err["msg"]).rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class FactKind:
    """What a rule may say about one fact: its type, its allowed values, whether it can be null."""

    type: Literal["number", "integer", "enum", "boolean", "phase_list"]
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
            kinds[name] = FactKind("phase_list", nullable, PHASE_ORDER)
        else:  # pragma: no cover - a new field type must be taught to the rule checker
            raise TypeError(f"PatientFacts.{name}: no rule type for {annotation!r}")
    return kinds


FACT_KINDS: dict[str, FactKind] = _fact_kinds()
