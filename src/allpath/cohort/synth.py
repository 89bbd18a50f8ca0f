"""Synthetic ALL cohorts: a facts table and a treatments table, vectorised with numpy.

The distributions are documented, with their sources and where they are approximations, in
docs/cohort.md. Every row is a valid `PatientFacts` (the histories are built so that the
contradiction checks cannot trip). The treatments follow the KB's recommendations, which are
evaluated by the same compiled SQL the cohort engine uses, so no rule is restated here; a
`deviation` share of the relevant patients is then treated against the guideline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allpath.cohort.staging import ROW_COLUMN, SourceKind, typed_sql
from allpath.facts import FACT_KINDS, GENETIC_SUBTYPES, ID_COLUMN, PHASE_ORDER, PRIOR_THERAPIES
from allpath.knowledge import KnowledgeBase
from allpath.rules.sql import to_sql

# Age at diagnosis: share of cases per age band (years). Shape, not a table copied from a
# registry: a childhood peak at 2-5 years, a trough in young adults, a second rise after 50;
# the median falls near 17 years (SEER's median age at diagnosis of ALL). Approximation.
AGE_BANDS: tuple[tuple[float, float, float], ...] = (
    (0.0, 1.0, 0.02),
    (1.0, 2.0, 0.05),
    (2.0, 6.0, 0.25),
    (6.0, 10.0, 0.10),
    (10.0, 15.0, 0.08),
    (15.0, 20.0, 0.06),
    (20.0, 30.0, 0.07),
    (30.0, 40.0, 0.06),
    (40.0, 50.0, 0.06),
    (50.0, 60.0, 0.08),
    (60.0, 70.0, 0.09),
    (70.0, 80.0, 0.06),
    (80.0, 95.0, 0.02),
)
ADULT_AGE = 18.0
# Ph-positive share by age band: about 3-5 % of children, about a quarter of adults overall,
# rising with age. Approximation from the reviews cited in docs/cohort.md.
PH_POSITIVE_BY_AGE: tuple[tuple[float, float], ...] = (
    (10.0, 0.03),
    (18.0, 0.05),
    (40.0, 0.15),
    (60.0, 0.28),
    (999.0, 0.35),
)
T_LINEAGE = {"child": 0.15, "adult": 0.25}
# Complete remission after induction: Cancer.Net (the KB's source) gives > 95 of 100 children
# and 75 to 80 of 100 adults.
CR_RATE = {"child": 0.96, "adult": 0.78}
# Relapse after a first remission: roughly 15-20 % of children, about half of adults. Approximation.
RELAPSE_RATE = {"child": 0.18, "adult": 0.50}
SECOND_CR_RATE = {"child": 0.75, "adult": 0.40}
SECOND_RELAPSE_RATE = {"child": 0.40, "adult": 0.60}
UNKNOWN_SHARE = 0.03  # lineage and Ph status not yet known

PRIOR_REGIMENS_UNKNOWN = 0.05  # prior_regimen_count not recorded
# Site of a relapse: mostly marrow, then CNS, combined, testicular. Approximation.
RELAPSE_SITE_SHARES: tuple[tuple[str, float], ...] = (
    ("marrow", 0.60),
    ("cns", 0.10),
    ("testicular", 0.03),
    ("combined", 0.12),
    ("other_extramedullary", 0.03),
    ("unknown", 0.12),
)
RELAPSE_SITES = tuple(s for s, _ in RELAPSE_SITE_SHARES)
# Primary genetic finding of Ph-negative B-ALL: (subtype, share in children, share in adults);
# "" is none known. ETV6::RUNX1 and high hyperdiploidy are childhood subtypes, Ph-like and KMT2A
# more common in adults. Approximation.
B_SUBTYPE_SHARES: tuple[tuple[str, float, float], ...] = (
    ("", 0.318, 0.548),
    ("etv6-runx1", 0.25, 0.02),
    ("high-hyperdiploid", 0.25, 0.05),
    ("ph-like", 0.10, 0.22),
    ("kmt2a", 0.02, 0.10),
    ("tcf3-pbx1", 0.04, 0.04),
    ("hypodiploid", 0.01, 0.02),
    ("iamp21", 0.01, 0.00),
    ("tcf3-hlf", 0.002, 0.002),
)
B_SUBTYPES = tuple(s for s, _, _ in B_SUBTYPE_SHARES)

TKI_AGENTS = ("imatinib", "dasatinib", "nilotinib", "ponatinib")
BACKBONE_AGENTS = ("vincristine", "dexamethasone", "prednisone", "daunorubicin", "pegaspargase", "methotrexate")
ROW_GROUP = 131_072
LIST_FIELDS = tuple(name for name, kind in FACT_KINDS.items() if kind.type == "list")
PROCEDURES = ("allogeneic-sct", "autologous-sct", "palliative-care")


@dataclass(frozen=True, slots=True)
class SynthResult:
    facts: Path
    treatments: Path
    patients: int
    treatment_rows: int


def _age(rng: Any, n: int) -> Any:
    import numpy as np

    probs = np.array([b[2] for b in AGE_BANDS])
    band = rng.choice(len(AGE_BANDS), size=n, p=probs / probs.sum())
    low = np.array([b[0] for b in AGE_BANDS])[band]
    high = np.array([b[1] for b in AGE_BANDS])[band]
    return np.round(low + rng.random(n) * (high - low), 1).clip(0.0, 120.0)


def _choice(rng: Any, values: tuple[str, ...], probs: Any) -> Any:
    """Per-row categorical draw; `probs` has one row of probabilities per patient."""
    import numpy as np

    cumulative = np.cumsum(probs, axis=1)
    draw = rng.random(len(probs))[:, None]
    index = (draw > cumulative).sum(axis=1).clip(0, len(values) - 1)
    return np.array(values, dtype=object)[index]


def facts_table(n: int, seed: int) -> Any:
    """A pyarrow Table of `n` valid patients (columns: patient_id and the PatientFacts fields)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    age = _age(rng, n)
    adult = age >= ADULT_AGE

    def by_age(rates: dict[str, float]) -> Any:
        return np.where(adult, rates["adult"], rates["child"])

    # Lineage and Ph status.
    u = rng.random(n)
    p_t = by_age(T_LINEAGE)
    lineage = np.where(u < UNKNOWN_SHARE, "unknown", np.where(u < UNKNOWN_SHARE + (1 - UNKNOWN_SHARE) * p_t, "T", "B"))
    edges = np.array([e for e, _ in PH_POSITIVE_BY_AGE])
    p_ph = np.array([p for _, p in PH_POSITIVE_BY_AGE])[np.searchsorted(edges, age, side="right")]
    u = rng.random(n)
    ph = np.where(
        u < UNKNOWN_SHARE, "unknown", np.where(u < UNKNOWN_SHARE + (1 - UNKNOWN_SHARE) * p_ph, "positive", "negative")
    )

    # The course so far: a snapshot somewhere along diagnosis -> induction -> (relapse -> ...).
    new = rng.random(n) < 0.25
    first_cr = ~new & (rng.random(n) < by_age(CR_RATE))
    refractory = ~new & ~first_cr
    relapse1 = first_cr & (rng.random(n) < by_age(RELAPSE_RATE))
    second_cr = relapse1 & (rng.random(n) < by_age(SECOND_CR_RATE))
    relapse2 = second_cr & (rng.random(n) < by_age(SECOND_RELAPSE_RATE))
    third_cr = relapse2 & (rng.random(n) < 0.3)
    relapse3 = third_cr & (rng.random(n) < 0.6)

    remission_count = first_cr.astype(np.int64) + second_cr + third_cr
    relapse_count = relapse1.astype(np.int64) + relapse2 + relapse3
    in_remission = remission_count > relapse_count
    status = np.where(
        new, "newly_diagnosed", np.where(refractory, "refractory", np.where(in_remission, "in_remission", "relapsed"))
    )
    # A failed re-induction leaves the disease refractory after a relapse.
    relapsed_now = status == "relapsed"
    failed_salvage = relapsed_now & (rng.random(n) < 0.15)
    status = np.where(failed_salvage, "refractory", status)

    # Regimens: the first induction, one more per relapse, sometimes an extra salvage line.
    prior = np.where(
        new, 0, 1 + relapse_count + (rng.random(n) < 0.2) * (relapse_count > 0) + refractory * (rng.random(n) < 0.5)
    )
    prior = prior.astype(np.int64)

    # Phases finished in the current line: induction, then consolidation, then maintenance.
    phases_done = np.zeros(n, dtype=np.int64)
    treated = ~new
    phases_done[treated] = rng.choice(4, size=int(treated.sum()), p=[0.15, 0.35, 0.30, 0.20])
    phases_done[status == "in_remission"] = np.maximum(phases_done[status == "in_remission"], 1)
    phases_done[status == "refractory"] = np.minimum(phases_done[status == "refractory"], 1)
    phases_done[status == "relapsed"] = np.minimum(phases_done[status == "relapsed"], 1)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(phases_done, out=offsets[1:])
    position = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], phases_done)
    phase_values = pa.array(np.array(PHASE_ORDER, dtype=object)[position], pa.string())
    completed = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), phase_values)

    # MRD: mostly unknown before treatment; measured in remission and at relapse.
    mrd = np.where(
        new,
        np.where(rng.random(n) < 0.9, "unknown", "positive"),
        _choice(rng, ("negative", "positive", "unknown"), np.tile([0.65, 0.25, 0.10], (n, 1))),
    )
    cns_u = rng.random(n)
    cns = pa.array(np.where(cns_u < 0.05, True, False), pa.bool_(), mask=cns_u > 0.9)

    # Remission length before the latest relapse, in months (children's remissions run longer).
    has_relapse = relapse_count > 0
    duration = np.round(rng.gamma(2.0, np.where(adult, 8.0, 16.0)), 1)
    duration_mask = ~has_relapse | (rng.random(n) < 0.1)
    survival_u = rng.random(n)
    advanced = np.isin(status, ("relapsed", "refractory"))
    survival = np.round(rng.lognormal(np.log(9.0), 0.7, n), 1)
    survival_mask = ~advanced | (survival_u > 0.35)

    # Drawn after every v1 column, so a seed still gives the v1 columns it gave before v2.
    v2 = _v2_columns(
        rng,
        age=age,
        lineage=lineage,
        ph=ph,
        status=status,
        phases_done=phases_done,
        mrd=mrd,
        cns=cns_u < 0.05,
        relapse_count=relapse_count,
        remission_count=remission_count,
        duration=np.where(duration_mask, np.nan, duration),
    )
    prior_mask = rng.random(n) < PRIOR_REGIMENS_UNKNOWN

    return pa.table(
        {
            ID_COLUMN: pa.array(np.char.add("P", np.arange(1, n + 1).astype(str)), pa.string()),
            "age_years": pa.array(age, pa.float64()),
            "lineage": pa.array(lineage, pa.string()),
            "ph_status": pa.array(ph, pa.string()),
            "cns_involvement": cns,
            "disease_status": pa.array(status, pa.string()),
            "completed_phases": completed,
            "mrd_status": pa.array(mrd, pa.string()),
            "remission_count": pa.array(remission_count, pa.int64()),
            "relapse_count": pa.array(relapse_count, pa.int64()),
            "remission_duration_months": pa.array(duration, pa.float64(), mask=duration_mask),
            "prior_regimen_count": pa.array(prior, pa.int64(), mask=prior_mask),
            "expected_survival_months": pa.array(survival, pa.float64(), mask=survival_mask),
            **v2,
        }
    )


def _list_column(matrix: Any, values: tuple[str, ...]) -> Any:
    """A list<string> column from a patients x values boolean matrix (items in `values` order)."""
    import numpy as np
    import pyarrow as pa

    offsets = np.zeros(len(matrix) + 1, dtype=np.int32)
    np.cumsum(matrix.sum(axis=1), out=offsets[1:])
    _, column = np.nonzero(matrix)  # row-major: each row's items come out in `values` order
    items = pa.array(np.array(values, dtype=object)[column], pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items)


def _nullable_bool(rng: Any, p_true: Any, p_false: Any) -> Any:
    """True, False or null (the rest) per patient, with per-patient probabilities."""
    import numpy as np
    import pyarrow as pa

    u = rng.random(len(p_true))
    return pa.array(u < p_true, pa.bool_(), mask=u >= np.asarray(p_true) + p_false)


def _v2_columns(
    rng: Any,
    *,
    age: Any,
    lineage: Any,
    ph: Any,
    status: Any,
    phases_done: Any,
    mrd: Any,
    cns: Any,
    relapse_count: Any,
    remission_count: Any,
    duration: Any,
) -> dict[str, Any]:
    """The v2 fields, drawn so that `facts._v2_contradictions` cannot trip (shapes in docs/cohort.md)."""
    import numpy as np
    import pyarrow as pa

    n = len(age)
    child = age < ADULT_AGE
    b_cell, t_cell = lineage == "B", lineage == "T"
    new = status == "newly_diagnosed"
    relapsed = relapse_count > 0
    advanced = np.isin(status, ("relapsed", "refractory"))

    # The phase under way is the one after the last completed, so it is never also completed.
    next_phase = np.array(("induction", "consolidation", "maintenance", "none"), dtype=object)[phases_done]
    next_phase = np.where(new, np.where(rng.random(n) < 0.5, "induction", "none"), next_phase)
    phase_in_progress = np.where(rng.random(n) < 0.1, "unknown", next_phase)
    timepoint = np.array(("unknown", "end_of_induction", "end_of_consolidation", "later"), dtype=object)[phases_done]
    mrd_timepoint = np.where((mrd == "unknown") | (rng.random(n) < 0.1), "unknown", timepoint)

    # Relapse details, only once there has been a relapse. Therapy lasts 2 to 3 years: a relapse
    # before its end came during therapy, and only a later one has a time from its end.
    site = _choice(rng, RELAPSE_SITES, np.tile([p for _, p in RELAPSE_SITE_SHARES], (n, 1)))
    relapse_site = np.where(relapsed, site, "unknown")
    to_relapse = np.round(np.nan_to_num(duration, nan=0.0) + 1.0 + rng.gamma(2.0, 6.0, n), 1)
    to_relapse_mask = ~relapsed | (rng.random(n) < 0.1)
    therapy_months = 24.0 + 12.0 * rng.random(n)
    during = to_relapse < therapy_months
    during_mask = ~relapsed | to_relapse_mask | (rng.random(n) < 0.1)
    from_end = np.round(np.maximum(to_relapse - therapy_months, 0.0), 1)
    from_end_mask = ~relapsed | to_relapse_mask | during | (rng.random(n) < 0.1)

    # Surface markers: CD19 and CD22 on nearly all B-ALL, CD20 on about half; not measured on T-ALL
    # as a rule. After CD19-directed therapy a CD19-negative relapse happens; shares below.
    def marker(p_pos_b: float, p_neg_b: float) -> Any:
        u = rng.random(n)
        on_b = np.where(u < p_pos_b, "positive", np.where(u < p_pos_b + p_neg_b, "negative", "unknown"))
        on_t = np.where(u < 0.6, "negative", "unknown")
        return np.where(b_cell, on_b, np.where(t_cell, on_t, "unknown"))

    # Genetic subtypes: one primary finding per B-ALL patient, by age; BCR::ABL1 with Ph positive
    # (and now and then with Ph status not yet known, which PatientFacts reads as positive).
    column: dict[str, int] = {name: i for i, name in enumerate(GENETIC_SUBTYPES)}
    subtypes = np.zeros((n, len(GENETIC_SUBTYPES)), dtype=bool)
    subtypes[:, column["bcr-abl1"]] = ((ph == "positive") & (rng.random(n) < 0.8)) | (
        (ph == "unknown") & (rng.random(n) < 0.2)
    )
    shares = np.where(child[:, None], [p for _, p, _ in B_SUBTYPE_SHARES], [p for _, _, p in B_SUBTYPE_SHARES])
    primary = _choice(rng, B_SUBTYPES, shares)
    ph_negative_b = b_cell & (ph == "negative")
    for name in B_SUBTYPES[1:]:
        subtypes[:, column[name]] = ph_negative_b & (primary == name)
    subtypes[:, column["kmt2a"]] |= (age < 1.0) & ~subtypes[:, column["bcr-abl1"]] & (rng.random(n) < 0.7)
    subtypes[:, column["abl-class"]] = subtypes[:, column["ph-like"]] & (rng.random(n) < 0.3)
    subtypes[:, column["abl1-t315i"]] = subtypes[:, column["bcr-abl1"]] & relapsed & (rng.random(n) < 0.15)
    ph_positive = subtypes[:, column["bcr-abl1"]] | (ph == "positive")

    # Therapies already received, from the history drawn above (approximate shares).
    therapy: dict[str, int] = {name: i for i, name in enumerate(PRIOR_THERAPIES)}
    received = np.zeros((n, len(PRIOR_THERAPIES)), dtype=bool)

    def u() -> Any:
        return rng.random(n)

    treated = ~new
    received[:, therapy["tki"]] = treated & ph_positive & (u() < 0.9)
    received[:, therapy["blinatumomab"]] = treated & b_cell & ((advanced & (u() < 0.3)) | (relapsed & (u() < 0.2)))
    received[:, therapy["inotuzumab-ozogamicin"]] = treated & b_cell & advanced & (u() < 0.2)
    received[:, therapy["car-t"]] = b_cell & (relapse_count >= 2) & (u() < 0.25)
    received[:, therapy["allogeneic-sct"]] = (remission_count >= 2) & (u() < 0.3)
    received[:, therapy["nelarabine"]] = treated & t_cell & (advanced | relapsed) & (u() < 0.4)
    received[:, therapy["clofarabine"]] = child & (advanced | relapsed) & (u() < 0.1)
    received[:, therapy["rituximab"]] = treated & b_cell & ~child & (u() < 0.3)
    received[:, therapy["cranial-radiation"]] = treated & cns & (u() < 0.3)

    fit_true = np.where(age < 60.0, 0.85, 0.45)
    fit_false = np.where(age < 60.0, 0.05, 0.40)
    childbearing = (age >= 15.0) & (age < 50.0)
    return {
        "phase_in_progress": pa.array(phase_in_progress, pa.string()),
        "mrd_timepoint": pa.array(mrd_timepoint, pa.string()),
        "relapse_site": pa.array(relapse_site, pa.string()),
        "months_from_diagnosis_to_relapse": pa.array(to_relapse, pa.float64(), mask=to_relapse_mask),
        "relapse_during_therapy": pa.array(during, pa.bool_(), mask=during_mask),
        "months_from_therapy_end_to_relapse": pa.array(from_end, pa.float64(), mask=from_end_mask),
        "cd19_status": pa.array(marker(0.93, 0.02), pa.string()),
        "cd20_status": pa.array(marker(0.40, 0.45), pa.string()),
        "cd22_status": pa.array(marker(0.85, 0.05), pa.string()),
        "genetic_subtypes": _list_column(subtypes, GENETIC_SUBTYPES),
        "prior_therapies": _list_column(received, PRIOR_THERAPIES),
        "fit_for_intensive_therapy": _nullable_bool(rng, fit_true, fit_false),
        "pregnant": _nullable_bool(rng, np.where(childbearing, 0.01, 0.0), np.where(childbearing, 0.7, 0.4)),
        "down_syndrome": _nullable_bool(rng, np.where(child, 0.025, 0.003), np.where(child, 0.8, 0.6)),
    }


def _arrow_kind(data_type: Any) -> SourceKind:
    import pyarrow as pa

    if pa.types.is_list(data_type):
        return "list"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type):
        return "float"
    return "text"


def _fired(facts: Any, kb: KnowledgeBase, rule_ids: tuple[str, ...]) -> dict[str, Any]:
    """Which of `rule_ids` fire per patient, from the compiled SQL (the same as the engine's).

    The rules read the staged facts, as `cohort evaluate` does: PatientFacts reads some values
    from others (a BCR::ABL1 finding makes an unknown Ph status positive).
    """
    import duckdb
    import numpy as np

    con = duckdb.connect()
    con.register("facts", facts)
    kinds = {f.name: _arrow_kind(f.type) for f in facts.schema}
    staged = typed_sql(f'(SELECT 0 AS "{ROW_COLUMN}", * FROM facts) raw', kinds)
    columns = ", ".join(f'{to_sql(kb.conditions[r])} AS "{r}"' for r in rule_ids)
    relation = con.sql(f"SELECT {columns} FROM ({staged}) typed")
    result = (getattr(relation, "to_arrow_table", None) or relation.arrow)()
    con.close()
    return {r: np.asarray(result.column(r).to_numpy(zero_copy_only=False), dtype=bool) for r in rule_ids}


def treatments_table(facts: Any, kb: KnowledgeBase, seed: int, deviation: float) -> Any:
    """What each patient received: guideline care, except for a `deviation` share of the relevant."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed + 1)
    n = facts.num_rows
    fired = _fired(
        facts,
        kb,
        (
            "tki-ph-positive",
            "allogeneic-sct-after-second-remission",
            "clofarabine-pediatric-relapse",
            "reinduction-chemotherapy",
            "allogeneic-sct-consider",
            "palliative-care",
        ),
    )
    status = np.asarray(facts.column("disease_status").to_numpy(zero_copy_only=False))
    ids = np.asarray(facts.column(ID_COLUMN).to_numpy(zero_copy_only=False))
    treated = status != "newly_diagnosed"
    deviate = rng.random(n) < deviation

    parts: list[tuple[Any, str, Any]] = []  # (mask over patients, kind, code per patient)

    def add(mask: Any, kind: str, codes: Any) -> None:
        parts.append((mask, kind, codes))

    # Backbone chemotherapy for everyone treated so far.
    add(treated, "agent", np.array(BACKBONE_AGENTS, dtype=object)[rng.integers(0, 2, n)])
    add(treated, "agent", np.array(BACKBONE_AGENTS, dtype=object)[rng.integers(2, len(BACKBONE_AGENTS), n)])
    # A TKI when one is recommended, unless this patient is a deviation.
    add(
        fired["tki-ph-positive"] & ~deviate,
        "agent",
        np.array(TKI_AGENTS, dtype=object)[rng.integers(0, 4, n)],
    )
    # A donor transplant after a second relapse, unless a deviation.
    add(
        fired["allogeneic-sct-after-second-remission"] & ~deviate,
        "procedure",
        np.full(n, "allogeneic-sct", dtype=object),
    )
    # An autologous transplant now and then among transplant candidates who deviate.
    candidates = fired["allogeneic-sct-after-second-remission"] | fired["allogeneic-sct-consider"]
    add(candidates & deviate & (rng.random(n) < 0.3), "procedure", np.full(n, "autologous-sct", dtype=object))
    # Clofarabine within its indication for some, and outside it for some deviating relapses.
    within = fired["clofarabine-pediatric-relapse"] & (rng.random(n) < 0.3)
    outside = (
        fired["reinduction-chemotherapy"] & ~fired["clofarabine-pediatric-relapse"] & deviate & (rng.random(n) < 0.3)
    )
    add(within | outside, "agent", np.full(n, "clofarabine", dtype=object))
    # Palliative care offered from the start, unless a deviation.
    add(fired["palliative-care"] & ~deviate, "procedure", np.full(n, "palliative-care", dtype=object))

    start = np.datetime64("2015-01-01")
    diagnosed = start + rng.integers(0, 3650, n).astype("timedelta64[D]")
    columns: dict[str, list[Any]] = {ID_COLUMN: [], "kind": [], "code": [], "date": []}
    for mask, kind, codes in parts:
        index = np.flatnonzero(mask)
        columns[ID_COLUMN].append(ids[index])
        columns["kind"].append(np.full(len(index), kind, dtype=object))
        columns["code"].append(codes[index])
        columns["date"].append(diagnosed[index] + rng.integers(0, 720, len(index)).astype("timedelta64[D]"))
    return pa.table(
        {
            ID_COLUMN: pa.array(np.concatenate(columns[ID_COLUMN]), pa.string()),
            "kind": pa.array(np.concatenate(columns["kind"]), pa.string()),
            "code": pa.array(np.concatenate(columns["code"]), pa.string()),
            "date": pa.array(np.concatenate(columns["date"]), pa.date32()),
        }
    )


def synthesize(
    n: int,
    seed: int,
    out_dir: str | Path,
    kb: KnowledgeBase,
    *,
    deviation: float = 0.05,
    fmt: str = "parquet",
    treatments: bool = True,
) -> SynthResult:
    """Write `facts.<fmt>` and `treatments.<fmt>` for `n` synthetic patients into `out_dir`."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not 0.0 <= deviation <= 1.0:
        raise ValueError("deviation must be between 0 and 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    facts = facts_table(n, seed)
    given = treatments_table(facts, kb, seed, deviation) if treatments else None
    facts_path = out / f"facts.{fmt}"
    treatments_path = out / f"treatments.{fmt}"
    if fmt == "csv":
        import pyarrow.compute as pc

        as_text = facts
        for name in LIST_FIELDS:
            joined = pc.binary_join(facts.column(name), ";")
            as_text = as_text.set_column(as_text.schema.get_field_index(name), name, joined)
        pacsv.write_csv(as_text, facts_path)
        if given is not None:
            pacsv.write_csv(given, treatments_path)
    else:
        # Row groups of 128k rows, as most writers produce, so readers can scan them in parallel.
        pq.write_table(facts, facts_path, compression="zstd", row_group_size=ROW_GROUP)
        if given is not None:
            pq.write_table(given, treatments_path, compression="zstd", row_group_size=ROW_GROUP)
    return SynthResult(
        facts=facts_path,
        treatments=treatments_path,
        patients=n,
        treatment_rows=given.num_rows if given is not None else 0,
    )
