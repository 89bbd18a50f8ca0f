"""Hypothesis strategies for PatientFacts: valid ones (consistent by construction) and raw invalid input."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from allpath.facts import GENETIC_SUBTYPES, PHASE_ORDER, PRIOR_THERAPIES, PatientFacts

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
        return _with_v2(draw, data)
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
        prior_regimen_count=draw(st.one_of(st.none(), st.integers(0, 6))),
        remission_duration_months=draw(MONTHS),
    )
    return _with_v2(draw, data)


UNKNOWN_OR = st.sampled_from
BOOL_OR_NONE = st.sampled_from([True, False, None])


def _with_v2(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """Add the clinical model v2 fields, each left out often, keeping the facts consistent."""
    if not draw(st.booleans()):
        return data
    done = set(data.get("completed_phases", []))
    optional: dict[str, Any] = {
        "phase_in_progress": draw(
            st.sampled_from(
                [p for p in ("none", "induction", "consolidation", "maintenance", "unknown") if p not in done]
            )
        ),
        "mrd_timepoint": draw(st.sampled_from(["end_of_induction", "end_of_consolidation", "later", "unknown"])),
        "cd19_status": draw(st.sampled_from(["positive", "negative", "unknown"])),
        "cd20_status": draw(st.sampled_from(["positive", "negative", "unknown"])),
        "cd22_status": draw(st.sampled_from(["positive", "negative", "unknown"])),
        "prior_therapies": draw(st.lists(st.sampled_from(PRIOR_THERAPIES), max_size=3, unique=True)),
        "fit_for_intensive_therapy": draw(BOOL_OR_NONE),
        "pregnant": draw(BOOL_OR_NONE),
        "down_syndrome": draw(BOOL_OR_NONE),
    }
    subtypes = set(draw(st.lists(st.sampled_from(GENETIC_SUBTYPES), max_size=3, unique=True)))
    if data["ph_status"] == "negative":
        subtypes.discard("bcr-abl1")
    if "bcr-abl1" in subtypes:
        subtypes -= {"ph-like", "abl-class"}
    else:
        subtypes.discard("abl1-t315i")
    optional["genetic_subtypes"] = sorted(subtypes)
    if data.get("relapse_count", 0) >= 1:
        optional["relapse_site"] = draw(
            st.sampled_from(["marrow", "cns", "testicular", "combined", "other_extramedullary", "unknown"])
        )
        to_relapse = draw(MONTHS)
        optional["months_from_diagnosis_to_relapse"] = to_relapse
        remission = data.get("remission_duration_months")
        if to_relapse is not None and remission is not None and remission > to_relapse:
            data["remission_duration_months"] = to_relapse
        during = draw(BOOL_OR_NONE)
        optional["relapse_during_therapy"] = during
        optional["months_from_therapy_end_to_relapse"] = None if during else draw(MONTHS)
    # Leave each field out half the time: omitted and unknown must mean the same.
    keep = draw(st.lists(st.booleans(), min_size=len(optional), max_size=len(optional)))
    data.update({k: v for (k, v), kept in zip(optional.items(), keep, strict=True) if kept})
    return data


valid_facts = valid_facts_dicts().map(PatientFacts.parse)

# A child at diagnosis with every fact a rule reads known: no unknown fact would change the plan.
NOTHING_MISSING: dict[str, Any] = {
    "age_years": 8,
    "disease_status": "newly_diagnosed",
    "lineage": "B",
    "ph_status": "negative",
    "cns_involvement": False,
    "mrd_status": "negative",
    "expected_survival_months": 100,
    "phase_in_progress": "none",
    "fit_for_intensive_therapy": True,
    "pregnant": False,
    "down_syndrome": False,
}

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
