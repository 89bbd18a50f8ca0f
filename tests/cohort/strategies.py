"""Hypothesis strategies for valid PatientFacts, leaning on the values where rules change their answer."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from allpath.facts import FIELD_NAMES, PHASE_ORDER, PatientFacts

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
        data["prior_regimen_count"] = draw(st.integers(0, 5))
        data["completed_phases"] = list(PHASE_ORDER[: draw(st.integers(0, 3))])
    return PatientFacts.parse(data)


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
