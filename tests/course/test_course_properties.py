"""Property: any history the state machine accepts derives valid `PatientFacts`, at every date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from allpath.course import CourseError, CourseState, apply, derive_facts, parse_event
from allpath.facts import PatientFacts, contradictions

START = dt.date(2020, 1, 1)
BIRTH = dt.date(2005, 7, 15)

event_fields = st.one_of(
    st.builds(
        lambda lineage, ph, cns: {"type": "diagnosed", "lineage": lineage, "ph_status": ph, "cns_involvement": cns},
        st.sampled_from(["B", "T", "unknown"]),
        st.sampled_from(["positive", "negative", "unknown"]),
        st.sampled_from([True, False, None]),
    ),
    st.builds(
        lambda t, p: {"type": t, "phase": p},
        st.sampled_from(["phase_started", "phase_completed"]),
        st.sampled_from(["induction", "consolidation", "maintenance", "reinduction"]),
    ),
    st.sampled_from(
        [
            {"type": "remission_achieved"},
            {"type": "induction_failed"},
            {"type": "hospice_started"},
            {"type": "treatment_completed"},
            {"type": "died"},
            {"type": "trial_enrolled"},
        ]
    ),
    st.builds(lambda s: {"type": "relapsed", "site": s}, st.sampled_from(["marrow", "cns", "other"])),
    st.builds(lambda r: {"type": "mrd_result", "result": r}, st.sampled_from(["positive", "negative"])),
    st.builds(lambda k: {"type": "transplant", "kind": k}, st.sampled_from(["allogeneic", "autologous"])),
    st.builds(lambda m: {"type": "survival_estimate", "months": m}, st.floats(0, 120, allow_nan=False)),
)
steps = st.lists(st.tuples(st.integers(0, 400), event_fields), min_size=1, max_size=40)


def _accepted_history(raw: list[tuple[int, dict[str, Any]]]) -> list[Any]:
    """Offer each generated event in turn; keep the ones the state machine accepts."""
    state, accepted, day = CourseState(), [], 0
    for gap, fields in raw:
        day += gap
        event = parse_event({**fields, "date": START + dt.timedelta(days=day)})
        try:
            state = apply(state, event)
        except CourseError:
            continue
        accepted.append(event)
    return accepted


@settings(max_examples=300, deadline=None)
@given(steps, st.integers(0, 20000))
def test_any_accepted_history_derives_valid_facts(raw: list[tuple[int, dict[str, Any]]], later: int) -> None:
    history = _accepted_history(raw)
    if not history:
        return
    for as_of in (history[0].date, history[-1].date, history[-1].date + dt.timedelta(days=later)):
        facts = derive_facts(BIRTH, history, as_of)
        assert contradictions(facts) == []
        # The facts survive the strict parse every adapter uses.
        assert PatientFacts.parse(facts.model_dump(mode="json")) == facts
        assert facts.relapse_count <= facts.remission_count
