"""The events of a treatment course: what a clinician records, one dated fact at a time.

Every event is a small frozen pydantic model; `CourseEvent` is their union, told apart by
`type`. Events carry no free text on purpose: a note field invites names and other
identifying detail into a record that is logged, audited and exported.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from allpath.facts import GeneticSubtype, PriorTherapy, RelapseSite

Phase = Literal["induction", "consolidation", "maintenance", "reinduction"]
TransplantKind = Literal["allogeneic", "autologous"]
MrdResult = Literal["positive", "negative"]
Marker = Literal["positive", "negative"]

PHASES: tuple[Phase, ...] = ("induction", "consolidation", "maintenance", "reinduction")
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(
        None, pattern=EVENT_ID_PATTERN, description="Assigned by the store; refers to this event in `supersedes`."
    )
    date: dt.date = Field(description="When it happened (not when it was recorded).")
    supersedes: str | None = Field(
        None,
        pattern=EVENT_ID_PATTERN,
        description="Id of an earlier event this one corrects; the earlier event then no longer counts.",
    )


class Diagnosed(_Event):
    type: Literal["diagnosed"] = "diagnosed"
    lineage: Literal["B", "T", "unknown"] = "unknown"
    ph_status: Literal["positive", "negative", "unknown"] = "unknown"
    cns_involvement: bool | None = None
    down_syndrome: bool | None = Field(None, strict=True)


class PhaseStarted(_Event):
    type: Literal["phase_started"] = "phase_started"
    phase: Phase


class PhaseCompleted(_Event):
    type: Literal["phase_completed"] = "phase_completed"
    phase: Phase


class RemissionAchieved(_Event):
    type: Literal["remission_achieved"] = "remission_achieved"


class InductionFailed(_Event):
    type: Literal["induction_failed"] = "induction_failed"


class Relapsed(_Event):
    type: Literal["relapsed"] = "relapsed"
    site: RelapseSite = Field("unknown", description="combined: marrow plus elsewhere.")


class MrdResultEvent(_Event):
    type: Literal["mrd_result"] = "mrd_result"
    result: MrdResult


class Transplant(_Event):
    type: Literal["transplant"] = "transplant"
    kind: TransplantKind


class TherapyGiven(_Event):
    """A therapy received that the phases do not say (an antibody, CAR-T, a TKI, radiation...)."""

    type: Literal["therapy_given"] = "therapy_given"
    therapy: PriorTherapy


class Immunophenotype(_Event):
    """Surface markers found on the leukemia cells; a marker left out (null) was not reported."""

    type: Literal["immunophenotype"] = "immunophenotype"
    cd19: Marker | None = None
    cd20: Marker | None = None
    cd22: Marker | None = None

    @model_validator(mode="after")
    def _reports_a_marker(self) -> Immunophenotype:
        if self.cd19 is None and self.cd20 is None and self.cd22 is None:
            raise ValueError("an immunophenotype result reports at least one of cd19, cd20, cd22")
        return self


class GeneticsResult(_Event):
    """Genetic findings of the leukemia; they add to earlier ones (correct an entry with `supersedes`)."""

    type: Literal["genetics_result"] = "genetics_result"
    findings: tuple[GeneticSubtype, ...] = Field(min_length=1)


class FitnessAssessed(_Event):
    type: Literal["fitness_assessed"] = "fitness_assessed"
    fit: bool = Field(strict=True, description="Fit for intensive chemotherapy, in the care team's judgement.")


class PregnancyStatus(_Event):
    type: Literal["pregnancy_status"] = "pregnancy_status"
    pregnant: bool = Field(strict=True)


class TrialEnrolled(_Event):
    type: Literal["trial_enrolled"] = "trial_enrolled"
    trial_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$",
        description="Registry identifier of the trial (for example an NCT number), if known.",
    )


class SurvivalEstimate(_Event):
    type: Literal["survival_estimate"] = "survival_estimate"
    months: float = Field(ge=0, le=1200, allow_inf_nan=False)


class HospiceStarted(_Event):
    type: Literal["hospice_started"] = "hospice_started"


class TreatmentCompleted(_Event):
    type: Literal["treatment_completed"] = "treatment_completed"


class Died(_Event):
    type: Literal["died"] = "died"


class Retracted(_Event):
    """Withdraws an event entered in error (it must name it in `supersedes`)."""

    type: Literal["retracted"] = "retracted"
    supersedes: str = Field(pattern=EVENT_ID_PATTERN, description="Id of the event entered in error.")


CourseEvent = Annotated[
    Diagnosed
    | PhaseStarted
    | PhaseCompleted
    | RemissionAchieved
    | InductionFailed
    | Relapsed
    | MrdResultEvent
    | Transplant
    | TherapyGiven
    | Immunophenotype
    | GeneticsResult
    | FitnessAssessed
    | PregnancyStatus
    | TrialEnrolled
    | SurvivalEstimate
    | HospiceStarted
    | TreatmentCompleted
    | Died
    | Retracted,
    Field(discriminator="type"),
]

EVENT_TYPES: tuple[str, ...] = (
    "diagnosed",
    "phase_started",
    "phase_completed",
    "remission_achieved",
    "induction_failed",
    "relapsed",
    "mrd_result",
    "transplant",
    "therapy_given",
    "immunophenotype",
    "genetics_result",
    "fitness_assessed",
    "pregnancy_status",
    "trial_enrolled",
    "survival_estimate",
    "hospice_started",
    "treatment_completed",
    "died",
    "retracted",
)

_adapter: TypeAdapter[Any] = TypeAdapter(CourseEvent)


def parse_event(data: Any) -> CourseEvent:
    """Validate one event from plain data (raises pydantic's `ValidationError`)."""
    return _adapter.validate_python(data)  # type: ignore[no-any-return]


# Relapse sites recorded before the v2 sites, as the store may hold them (its rows are never
# rewritten). "other" said only "neither marrow nor CNS": it cannot tell testicular from other
# extramedullary sites, so it is read as not known rather than guessed.
_LEGACY_RELAPSE_SITES = {"other": "unknown"}


def parse_stored_event(data: dict[str, Any]) -> CourseEvent:
    """`parse_event` for an event as stored, reading values of earlier versions as they now are."""
    if data.get("type") == "relapsed" and data.get("site") in _LEGACY_RELAPSE_SITES:
        data = {**data, "site": _LEGACY_RELAPSE_SITES[data["site"]]}
    return parse_event(data)


def event_payload(event: BaseModel) -> dict[str, Any]:
    """The type-specific fields of an event (everything but id, type, date and supersedes), JSON-ready."""
    return event.model_dump(mode="json", exclude={"id", "type", "date", "supersedes"})


def event_json_schema() -> dict[str, Any]:
    return _adapter.json_schema()
