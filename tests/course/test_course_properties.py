"""Property: any history the state machine accepts derives valid `PatientFacts`, at every date."""

from __future__ import annotations

import datetime as dt
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from allpath.course import PHASES, CourseError, CourseState, apply, derive_facts, parse_event
from allpath.facts import GENETIC_SUBTYPES, PRIOR_THERAPIES, PatientFacts, RelapseSite, contradictions

START = dt.date(2020, 1, 1)
BIRTH = dt.date(2005, 7, 15)

event_fields = st.one_of(
    st.builds(
        lambda lineage, ph, cns, down: {
            "type": "diagnosed",
            "lineage": lineage,
            "ph_status": ph,
            "cns_involvement": cns,
            "down_syndrome": down,
        },
        st.sampled_from(["B", "T", "unknown"]),
        st.sampled_from(["positive", "negative", "unknown"]),
        st.sampled_from([True, False, None]),
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
    st.builds(lambda s: {"type": "relapsed", "site": s}, st.sampled_from(get_args(RelapseSite))),
    st.builds(lambda r: {"type": "mrd_result", "result": r}, st.sampled_from(["positive", "negative"])),
    st.builds(lambda k: {"type": "transplant", "kind": k}, st.sampled_from(["allogeneic", "autologous"])),
    st.builds(lambda m: {"type": "survival_estimate", "months": m}, st.floats(0, 120, allow_nan=False)),
    st.builds(lambda t: {"type": "therapy_given", "therapy": t}, st.sampled_from(PRIOR_THERAPIES)),
    st.builds(
        lambda markers: {"type": "immunophenotype", **markers},
        st.fixed_dictionaries(
            {}, optional={m: st.sampled_from(["positive", "negative"]) for m in ("cd19", "cd20", "cd22")}
        ).filter(bool),
    ),
    st.builds(
        lambda f: {"type": "genetics_result", "findings": f},
        st.lists(st.sampled_from(GENETIC_SUBTYPES), min_size=1, max_size=3),
    ),
    st.builds(lambda fit: {"type": "fitness_assessed", "fit": fit}, st.booleans()),
    st.builds(lambda p: {"type": "pregnancy_status", "pregnant": p}, st.booleans()),
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


# Every kind of event with a few values each; the guided strategy below offers only those the
# state machine accepts next, so deep courses (a relapse after treatment ended, a second line
# with its own MRD and markers) are reached, not just their refusals.
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "diagnosed": [
        {"lineage": "B", "ph_status": "negative", "cns_involvement": False},
        {"lineage": "T", "ph_status": "positive", "cns_involvement": True, "down_syndrome": True},
        {"lineage": "unknown", "ph_status": "unknown", "down_syndrome": False},
    ],
    "phase_started": [{"phase": p} for p in PHASES],
    "phase_completed": [{"phase": p} for p in PHASES],
    "remission_achieved": [{}],
    "induction_failed": [{}],
    "relapsed": [{"site": s} for s in get_args(RelapseSite)],
    "mrd_result": [{"result": "positive"}, {"result": "negative"}],
    "transplant": [{"kind": "allogeneic"}, {"kind": "autologous"}],
    "therapy_given": [{"therapy": t} for t in PRIOR_THERAPIES],
    "immunophenotype": [{"cd19": "negative"}, {"cd19": "positive", "cd22": "positive"}, {"cd20": "negative"}],
    "genetics_result": [
        *({"findings": [g]} for g in GENETIC_SUBTYPES),
        {"findings": ["bcr-abl1", "abl1-t315i"]},
        {"findings": ["ph-like", "abl-class"]},
    ],
    "fitness_assessed": [{"fit": True}, {"fit": False}],
    "pregnancy_status": [{"pregnant": True}, {"pregnant": False}],
    "trial_enrolled": [{}],
    "survival_estimate": [{"months": 3.5}, {"months": 40}],
    "hospice_started": [{}],
    "treatment_completed": [{}],
    "died": [{}],
}
PROGRESS = frozenset(
    {"phase_started", "phase_completed", "remission_achieved", "induction_failed", "relapsed", "treatment_completed"}
)
ENDINGS = frozenset({"hospice_started", "died"})


@st.composite
def reachable_courses(draw: st.DrawFn) -> list[Any]:
    state, history, day = CourseState(), [], 0
    for _ in range(draw(st.integers(1, 30))):
        day += draw(st.integers(0, 300))
        date = START + dt.timedelta(days=day)
        accepted: dict[str, list[tuple[Any, CourseState]]] = {}
        for kind, variants in CANDIDATES.items():
            if kind in ENDINGS and draw(st.integers(0, 19)):
                continue  # rarely, or every course would end before it got far
            for fields in variants:
                event = parse_event({"type": kind, "date": date, **fields})
                try:
                    after = apply(state, event)
                except CourseError:
                    continue
                accepted.setdefault(kind, []).append((event, after))
        if not accepted:
            break
        # Mostly a step along the course, so that it gets far; otherwise something beside it.
        along = sorted(accepted.keys() & PROGRESS) if draw(st.integers(0, 2)) else []
        kind = draw(st.sampled_from(along or sorted(accepted)))
        event, state = draw(st.sampled_from(accepted[kind]))
        history.append(event)
    return history


@settings(max_examples=200, deadline=None)
@given(reachable_courses(), st.integers(0, 20000))
def test_every_reachable_course_derives_valid_v2_facts(history: list[Any], later: int) -> None:
    for as_of in {e.date for e in history} | {history[-1].date + dt.timedelta(days=later)}:
        facts = derive_facts(BIRTH, history, as_of)  # never a FactsError for an accepted course
        assert PatientFacts.parse(facts.model_dump(mode="json")) == facts
        if facts.relapse_count:
            assert facts.months_from_diagnosis_to_relapse is not None
            assert facts.relapse_during_therapy is not None
            assert (facts.months_from_therapy_end_to_relapse is None) == facts.relapse_during_therapy
        if facts.mrd_status == "unknown":
            assert facts.mrd_timepoint == "unknown"
