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

from allpath.facts import PHASE_ORDER
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

TKI_AGENTS = ("imatinib", "dasatinib", "nilotinib", "ponatinib")
BACKBONE_AGENTS = ("vincristine", "dexamethasone", "prednisone", "daunorubicin", "pegaspargase", "methotrexate")
ROW_GROUP = 131_072
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

    return pa.table(
        {
            "patient_id": pa.array(np.char.add("P", np.arange(1, n + 1).astype(str)), pa.string()),
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
            "prior_regimen_count": pa.array(prior, pa.int64()),
            "expected_survival_months": pa.array(survival, pa.float64(), mask=survival_mask),
        }
    )


def _fired(facts: Any, kb: KnowledgeBase, rule_ids: tuple[str, ...]) -> dict[str, Any]:
    """Which of `rule_ids` fire per patient, from the compiled SQL (the same as the engine's)."""
    import duckdb
    import numpy as np

    con = duckdb.connect()
    con.register("facts", facts)
    columns = ", ".join(f'{to_sql(kb.conditions[r])} AS "{r}"' for r in rule_ids)
    relation = con.sql(f"SELECT {columns} FROM facts")
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
    ids = np.asarray(facts.column("patient_id").to_numpy(zero_copy_only=False))
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
    columns: dict[str, list[Any]] = {"patient_id": [], "kind": [], "code": [], "date": []}
    for mask, kind, codes in parts:
        index = np.flatnonzero(mask)
        columns["patient_id"].append(ids[index])
        columns["kind"].append(np.full(len(index), kind, dtype=object))
        columns["code"].append(codes[index])
        columns["date"].append(diagnosed[index] + rng.integers(0, 720, len(index)).astype("timedelta64[D]"))
    return pa.table(
        {
            "patient_id": pa.array(np.concatenate(columns["patient_id"]), pa.string()),
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

        joined = pc.binary_join(facts.column("completed_phases"), ";")
        as_text = facts.set_column(facts.schema.get_field_index("completed_phases"), "completed_phases", joined)
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
