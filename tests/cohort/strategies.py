"""Hypothesis strategies for valid PatientFacts, leaning on the values where rules change their answer."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from allpath.facts import FACT_KINDS, FIELD_NAMES, PHASE_ORDER, PatientFacts

AGES = [0.0, 0.5, 0.99, 1.0, 17.9, 17.999, 18.0, 21.0, 21.5, 21.999, 22.0, 65.0, 120.0]
DURATIONS = [0.0, 17.9, 17.999, 18.0, 18.001, 24.0]
SURVIVALS = [0.0, 5.9, 6.0, 6.1]


@st.composite
def patient_facts(draw: Any) -> PatientFacts:
    status = draw(st.sampled_from(["newly_diagnosed", "in_remission", "refractory", "relapsed"]))
    age = draw(st.one_of(st.sampled_from(AGES), st.floats(0, 120, allow_nan=False, allow_infinity=False)))
    data: dict[str, Any] = {
        "age_years": age,
        "disease_status": status,
        "lineage": draw(st.sampled_from(["B", "T", "unknown"])),
        "ph_status": draw(st.sampled_from(["positive", "negative", "unknown"])),
        "mrd_status": draw(st.sampled_from(["positive", "negative", "unknown"])),
        "cns_involvement": draw(st.sampled_from([None, True, False])),
        "remission_duration_months": draw(
            st.one_of(st.none(), st.sampled_from(DURATIONS), st.floats(0, 240, allow_nan=False, allow_infinity=False))
        ),
        "expected_survival_months": draw(
            st.one_of(st.none(), st.sampled_from(SURVIVALS), st.floats(0, 240, allow_nan=False, allow_infinity=False))
        ),
    }
    if status != "newly_diagnosed":
        relapses = draw(st.integers(0, 4))
        if status == "relapsed":
            relapses = max(relapses, 1)
        low = relapses + 1 if status == "in_remission" else relapses
        data["relapse_count"] = relapses
        data["remission_count"] = draw(st.integers(low, low + 2))
        data["prior_regimen_count"] = draw(st.one_of(st.none(), st.integers(0, 5)))
        data["completed_phases"] = list(PHASE_ORDER[: draw(st.integers(0, 3))])
    data.update(draw(v2_fields(data)))
    return PatientFacts.parse(data)


MONTHS = [0.0, 5.9, 6.0, 12.0, 17.999, 18.0, 18.001, 24.0, 36.0]
NULLABLE_BOOLEAN = st.sampled_from([None, True, False])


def _months() -> st.SearchStrategy[float | None]:
    return st.one_of(st.none(), st.sampled_from(MONTHS), st.floats(0, 240, allow_nan=False, allow_infinity=False))


def _items(field: str) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(FACT_KINDS[field].values), max_size=3, unique=True)


@st.composite
def v2_fields(draw: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The v2 fields for `data` (v1 facts), each varied, never contradicting `facts._v2_contradictions`.

    A field is sometimes left out, so its default is exercised as well.
    """
    done = set(data.get("completed_phases", ()))
    v2: dict[str, Any] = {
        "phase_in_progress": draw(
            st.sampled_from([p for p in FACT_KINDS["phase_in_progress"].values if p not in done])
        ),
        "mrd_timepoint": draw(st.sampled_from(FACT_KINDS["mrd_timepoint"].values)),
        "cd19_status": draw(st.sampled_from(FACT_KINDS["cd19_status"].values)),
        "cd20_status": draw(st.sampled_from(FACT_KINDS["cd20_status"].values)),
        "cd22_status": draw(st.sampled_from(FACT_KINDS["cd22_status"].values)),
        "prior_therapies": draw(_items("prior_therapies")),
        "fit_for_intensive_therapy": draw(NULLABLE_BOOLEAN),
        "pregnant": draw(NULLABLE_BOOLEAN),
        "down_syndrome": draw(NULLABLE_BOOLEAN),
    }
    subtypes = set(draw(_items("genetic_subtypes")))
    if data["ph_status"] == "negative":
        subtypes.discard("bcr-abl1")
    if "bcr-abl1" in subtypes:
        subtypes -= {"ph-like", "abl-class"}
    else:
        subtypes.discard("abl1-t315i")
    v2["genetic_subtypes"] = sorted(subtypes)
    if data.get("relapse_count", 0) >= 1:
        v2["relapse_site"] = draw(st.sampled_from(FACT_KINDS["relapse_site"].values))
        to_relapse = draw(_months())
        remission = data.get("remission_duration_months")
        if to_relapse is not None and remission is not None and remission > to_relapse:
            to_relapse = remission
        v2["months_from_diagnosis_to_relapse"] = to_relapse
        during = draw(NULLABLE_BOOLEAN)
        v2["relapse_during_therapy"] = during
        v2["months_from_therapy_end_to_relapse"] = None if during else draw(_months())
    left_out = draw(st.sets(st.sampled_from(sorted(v2)), max_size=3))
    return {k: v for k, v in v2.items() if k not in left_out}


def collect_patients(count: int, seed: int = 0) -> list[PatientFacts]:
    """`count` patients drawn by hypothesis (its shrinking-free generate phase), for batch tests."""
    found: list[PatientFacts] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(patient_facts())
    def draw(facts: PatientFacts) -> None:
        found.append(facts)

    draw()
    return found


def as_row(patient_id: str, facts: PatientFacts) -> dict[str, Any]:
    row: dict[str, Any] = {"patient_id": patient_id}
    for name in FIELD_NAMES:
        value = getattr(facts, name)
        row[name] = list(value) if isinstance(value, tuple) else value
    return row
