"""Synthetic cohorts: every row a valid PatientFacts, the documented shape, reproducible by seed."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from allpath.cohort import concordance
from allpath.cohort.evaluate import evaluate_duckdb
from allpath.cohort.synth import facts_table, synthesize
from allpath.engine import default_engine
from allpath.facts import FACT_KINDS, FIELD_NAMES

from .helpers import facts_of


@pytest.fixture(scope="module")
def cohort() -> dict[str, np.ndarray]:
    table = facts_table(50_000, seed=11)
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def test_every_generated_row_is_a_valid_patient() -> None:
    for row in facts_table(5_000, seed=3).to_pylist():
        facts_of(row)  # raises FactsError on any invalid row


def test_same_seed_same_cohort_and_another_seed_another() -> None:
    assert facts_table(1_000, seed=5).equals(facts_table(1_000, seed=5))
    assert not facts_table(1_000, seed=5).equals(facts_table(1_000, seed=6))


def test_age_at_diagnosis_peaks_in_early_childhood_with_a_later_rise(cohort: dict[str, np.ndarray]) -> None:
    age = cohort["age_years"]
    per_year = lambda lo, hi: ((age >= lo) & (age < hi)).mean() / (hi - lo)  # noqa: E731
    assert per_year(2, 6) > 2 * per_year(6, 10)
    assert per_year(60, 70) > per_year(20, 30)
    assert 13 <= float(np.median(age)) <= 21  # SEER's median age at diagnosis is about 17


def test_ph_positive_share_is_low_in_children_and_about_a_quarter_of_adults(cohort: dict[str, np.ndarray]) -> None:
    child, ph = cohort["age_years"] < 18, cohort["ph_status"] == "positive"
    assert 0.02 <= ph[child].mean() <= 0.06
    assert 0.20 <= ph[~child].mean() <= 0.30


def test_t_lineage_is_more_common_in_adults(cohort: dict[str, np.ndarray]) -> None:
    child, t = cohort["age_years"] < 18, cohort["lineage"] == "T"
    assert 0.12 <= t[child].mean() <= 0.18
    assert 0.21 <= t[~child].mean() <= 0.29


def test_refractory_share_follows_the_kb_remission_rates(cohort: dict[str, np.ndarray]) -> None:
    child = cohort["age_years"] < 18
    treated = cohort["disease_status"] != "newly_diagnosed"
    never_cr = treated & (cohort["remission_count"] == 0)
    assert never_cr[child & treated].mean() <= 0.05  # > 95 of 100 children reach remission
    assert 0.18 <= never_cr[~child & treated].mean() <= 0.26  # 75-80 of 100 adults


def test_v2_fields_vary_and_relapse_details_follow_only_a_relapse() -> None:
    table = facts_table(20_000, seed=8)
    rows = table.to_pylist()
    for name, kind in FACT_KINDS.items():
        if kind.type in ("enum", "list") and name in FIELD_NAMES[FIELD_NAMES.index("phase_in_progress") :]:
            seen = {v for r in rows for v in (r[name] if kind.type == "list" else [r[name]])}
            assert seen == set(kind.values), name
    for name in ("relapse_during_therapy", "fit_for_intensive_therapy", "pregnant", "down_syndrome"):
        assert {r[name] for r in rows} == {True, False, None}, name
    no_relapse = [r for r in rows if r["relapse_count"] == 0]
    assert {r["relapse_site"] for r in no_relapse} == {"unknown"}
    assert {r["months_from_diagnosis_to_relapse"] for r in no_relapse} == {None}
    relapsed = [r for r in rows if r["relapse_count"] > 0]
    assert sum(r["months_from_diagnosis_to_relapse"] is not None for r in relapsed) > 0.8 * len(relapsed)
    assert any(r["prior_regimen_count"] is None for r in rows)


def test_no_deviation_means_full_concordance_and_deviations_are_found(tmp_path: Path) -> None:
    kb = default_engine().kb
    found = {}
    for deviation in (0.0, 0.2):
        folder = tmp_path / str(deviation)
        result = synthesize(20_000, 9, folder, kb, deviation=deviation)
        evaluate_duckdb(result.facts, folder / "results.parquet", kb)
        measures = concordance.compute(folder / "results.parquet", result.treatments, kb)
        found[deviation] = {m.measure.id: m for m in measures}
    clean, deviating = found[0.0], found[0.2]
    assert clean["ph-positive-tki"].rate == 1.0
    assert clean["allo-sct-after-second-remission"].rate == 1.0
    assert clean["palliative-care-offered"].rate == 1.0
    assert clean["autologous-sct"].numerator == 0
    assert clean["clofarabine-outside-indication"].numerator == 0
    assert 0.7 < (deviating["ph-positive-tki"].rate or 0) < 0.9
    assert deviating["autologous-sct"].numerator > 0
    assert deviating["clofarabine-outside-indication"].numerator > 0


def test_csv_output_keeps_every_list_as_a_semicolon_list(tmp_path: Path) -> None:
    result = synthesize(2_000, 1, tmp_path, default_engine().kb, fmt="csv")
    with open(result.facts, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for name in ("completed_phases", "genetic_subtypes", "prior_therapies"):
        assert any(";" in r[name] for r in rows), name
    summary = evaluate_duckdb(result.facts, tmp_path / "results.parquet", default_engine().kb)
    assert (summary.rows, summary.rejected) == (2_000, 0)
    parquet = synthesize(500, 1, tmp_path / "pq", default_engine().kb)
    assert pc.sum(pq.read_table(parquet.facts).column("remission_count")).as_py() > 0
