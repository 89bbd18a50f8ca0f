"""Hypothesis strategies for PatientFacts: valid ones (consistent by construction) and raw invalid input."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from allpath.facts import PHASE_ORDER, PatientFacts

# Boundaries the rules care about get extra weight, so shrinking lands on them.
AGES = st.one_of(
    st.sampled_from([0, 0.5, 0.9, 1, 1.5, 17.9, 18, 21, 21.9, 22, 25, 26, 60, 120]),
    st.floats(min_value=0, max_value=120, allow_nan=False, allow_infinity=False),
)
MONTHS = st.one_of(
    st.none(),
    st.sampled_from([0, 5.9, 6, 17.9, 18, 24, 36]),
    st.floats(min_value=0, max_value=240, allow_nan=False, allow_infinity=False),
)


@st.composite
def valid_facts_dicts(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(st.sampled_from(["newly_diagnosed", "in_remission", "refractory", "relapsed"]))
    data: dict[str, Any] = {
        "age_years": draw(AGES),
        "lineage": draw(st.sampled_from(["B", "T", "unknown"])),
        "ph_status": draw(st.sampled_from(["positive", "negative", "unknown"])),
        "cns_involvement": draw(st.sampled_from([True, False, None])),
        "disease_status": status,
        "mrd_status": draw(st.sampled_from(["positive", "negative", "unknown"])),
        "expected_survival_months": draw(MONTHS),
    }
    if status == "newly_diagnosed":
        return data
    relapses = draw(st.integers(0, 4))
    if status == "relapsed":
        relapses = max(relapses, 1)
    remissions = relapses + draw(st.integers(0, 2))
    if status == "in_remission":
        remissions = max(remissions, relapses + 1)
    data.update(
        remission_count=remissions,
        relapse_count=relapses,
        completed_phases=list(PHASE_ORDER[: draw(st.integers(0, 3))]),
        prior_regimen_count=draw(st.integers(0, 6)),
        remission_duration_months=draw(MONTHS),
    )
    return data


valid_facts = valid_facts_dicts().map(PatientFacts.parse)

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 200), st.floats(allow_nan=False), st.text(max_size=12)
)


@st.composite
def invalid_facts_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """Start from valid facts and break them in one of the ways a caller can."""
    data = draw(valid_facts_dicts())
    how = draw(st.sampled_from(["drop_required", "unknown_field", "bad_value", "contradiction"]))
    if how == "drop_required":
        del data[draw(st.sampled_from(["age_years", "disease_status"]))]
    elif how == "unknown_field":
        data[draw(st.sampled_from(["agee_years", "name", "stage", "ph"]))] = draw(JSON_SCALARS)
    elif how == "bad_value":
        field, value = draw(
            st.sampled_from(
                [
                    ("age_years", -1),
                    ("age_years", 121),
                    ("age_years", "ten"),
                    ("lineage", "X"),
                    ("ph_status", "pos"),
                    ("disease_status", "cured"),
                    ("completed_phases", ["induction", "transplant"]),
                    ("remission_count", -1),
                    ("remission_count", 1.5),
                    ("cns_involvement", "yes"),
                    ("remission_duration_months", -3),
                    ("expected_survival_months", "soon"),
                ]
            )
        )
        data[field] = value
    else:
        data.update(disease_status="relapsed", relapse_count=0, remission_count=0, completed_phases=[])
    return data
