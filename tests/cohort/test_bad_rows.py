"""Bad rows are reported (row, field, problem, in PatientFacts' words) and set aside; they never stop a run."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allpath.cohort.evaluate import evaluate_duckdb
from allpath.cohort.staging import TableError
from allpath.engine import default_engine
from allpath.facts import FACT_KINDS, FIELD_NAMES, FactsError, PatientFacts

from .helpers import read_results

HEADER = ["patient_id", *FIELD_NAMES]
GOOD = {
    "patient_id": "ok",
    "age_years": "30",
    "lineage": "B",
    "ph_status": "negative",
    "cns_involvement": "false",
    "disease_status": "in_remission",
    "completed_phases": "induction;consolidation",
    "mrd_status": "negative",
    "remission_count": "1",
    "relapse_count": "0",
    "remission_duration_months": "",
    "prior_regimen_count": "1",
    "expected_survival_months": "",
}


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _problems(summary: Any) -> set[tuple[int, str, str]]:
    return {(p.row, p.field, p.problem) for p in summary.problems}


def test_each_kind_of_bad_cell_is_reported_with_row_field_and_problem(tmp_path: Path) -> None:
    rows = [
        GOOD,
        {**GOOD, "patient_id": "neg-age", "age_years": "-1"},
        {**GOOD, "patient_id": "text-age", "age_years": "abc"},
        {**GOOD, "patient_id": "bad-lineage", "lineage": "X"},
        {**GOOD, "patient_id": "half-count", "remission_count": "2.5"},
        {**GOOD, "patient_id": "maybe-cns", "cns_involvement": "maybe"},
        {**GOOD, "patient_id": "bad-phase", "completed_phases": "induction;inductionx"},
        {**GOOD, "patient_id": "contradiction", "relapse_count": "2", "disease_status": "relapsed"},
        {**GOOD, "patient_id": "no-status", "disease_status": ""},
        {**GOOD, "patient_id": "", "age_years": "40"},
        {**GOOD, "patient_id": "nan-age", "age_years": "nan"},
        {**GOOD, "patient_id": "ok-2", "age_years": "2"},
    ]
    source = _write_csv(tmp_path / "facts.csv", rows)
    summary = evaluate_duckdb(source, tmp_path / "out.parquet", default_engine().kb)
    assert (summary.rows, summary.evaluated, summary.rejected) == (12, 2, 10)
    found = _problems(summary)
    assert (2, "age_years", "must be >= 0") in found
    assert (3, "age_years", "must be a number") in found
    assert (4, "lineage", "must be one of 'B', 'T' or 'unknown'") in found
    assert (5, "remission_count", "must be a whole number") in found
    assert (6, "cns_involvement", "must be true, false or null") in found
    assert (7, "completed_phases[1]", "must be one of 'induction', 'consolidation' or 'maintenance'") in found
    assert any(r == 8 and f == "relapse_count" and p.startswith("must be <= remission_count (1)") for r, f, p in found)
    assert (9, "disease_status", "is required") in found
    assert (10, "patient_id", "is required") in found
    assert (11, "age_years", "must be a finite number") in found
    assert set(read_results(tmp_path / "out.parquet")) == {"ok", "ok-2"}
    with open(summary.rejects or "", newline="", encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert [int(r["row_number"]) for r in rejected] == list(range(2, 12))
    assert rejected[0]["age_years"] == "-1"
    assert json.loads(rejected[0]["problems"]) == [{"field": "age_years", "problem": "must be >= 0"}]


def test_bad_cells_of_the_v2_fields_are_reported_with_their_field(tmp_path: Path) -> None:
    relapsed = {**GOOD, "disease_status": "relapsed", "relapse_count": "1", "completed_phases": ""}
    rows = [
        {**GOOD, "genetic_subtypes": "bcr-abl1; ph-like", "ph_status": ""},
        {**GOOD, "prior_therapies": "tki;aspirin"},
        {**GOOD, "pregnant": "yes"},
        {**GOOD, "cd22_status": "dim"},
        {**GOOD, "relapse_site": "marrow"},
        {**relapsed, "months_from_diagnosis_to_relapse": "-2"},
        {**relapsed, "relapse_during_therapy": "true", "months_from_therapy_end_to_relapse": "4"},
        {**GOOD, "phase_in_progress": "consolidation"},
        {**GOOD, "ph_status": "negative", "genetic_subtypes": "bcr-abl1"},
        {**GOOD, "genetic_subtypes": "abl1-t315i"},
        {**relapsed, "remission_duration_months": "20", "months_from_diagnosis_to_relapse": "12"},
        {**GOOD, "down_syndrome": "TRUE", "fit_for_intensive_therapy": "false", "genetic_subtypes": " kmt2a ;"},
    ]
    rows = [{**r, "patient_id": f"p{i}"} for i, r in enumerate(rows, start=1)]
    summary = evaluate_duckdb(_write_csv(tmp_path / "facts.csv", rows), tmp_path / "out.parquet", default_engine().kb)
    fields = {(p.row, p.field) for p in summary.problems}
    assert fields == {
        (1, "genetic_subtypes"),
        (2, "prior_therapies[1]"),
        (3, "pregnant"),
        (4, "cd22_status"),
        (5, "relapse_site"),
        (6, "months_from_diagnosis_to_relapse"),
        (7, "months_from_therapy_end_to_relapse"),
        (8, "phase_in_progress"),
        (9, "genetic_subtypes"),
        (10, "genetic_subtypes"),
        (11, "remission_duration_months"),
    }
    assert (
        2,
        "prior_therapies[1]",
        "must be one of 'blinatumomab', 'inotuzumab-ozogamicin', 'car-t', "
        "'allogeneic-sct', 'tki', 'nelarabine', 'clofarabine', 'rituximab' or 'cranial-radiation'",
    ) in _problems(summary)
    assert set(read_results(tmp_path / "out.parquet")) == {"p12"}


def test_unknown_or_missing_columns_refuse_the_whole_table(tmp_path: Path) -> None:
    path = tmp_path / "facts.csv"
    path.write_text("patient_id,age,disease_status\nA,3,newly_diagnosed\n", encoding="utf-8")
    with pytest.raises(TableError) as info:
        evaluate_duckdb(path, tmp_path / "out.parquet", default_engine().kb)
    assert {(p.field, p.problem) for p in info.value.problems} == {
        ("age", "is not a PatientFacts field or patient_id"),
        ("age_years", "column is required"),
    }


def test_parquet_rows_with_wrong_values_are_set_aside_in_a_parquet_rejects_file(tmp_path: Path) -> None:
    table = pa.table(
        {
            "patient_id": ["a", "b", "c"],
            "age_years": [5.0, 130.0, 40.0],
            "disease_status": ["newly_diagnosed", "newly_diagnosed", "newly_diagnosed"],
            "completed_phases": [[], [], ["consolidation"]],
            "remission_count": [0, 0, 0],
        }
    )
    pq.write_table(table, tmp_path / "facts.parquet")
    summary = evaluate_duckdb(tmp_path / "facts.parquet", tmp_path / "out.parquet", default_engine().kb)
    assert _problems(summary) == {
        (2, "age_years", "must be <= 120"),
        (3, "completed_phases", "must be empty when disease_status is newly_diagnosed"),
        (3, "completed_phases", "consolidation needs induction completed first"),
    }
    rejects = pq.read_table(summary.rejects or "").to_pylist()
    assert [r["patient_id"] for r in rejects] == ["b", "c"]


# --- property: the SQL flag never lets an invalid row through, and never loses a valid one ------

_CELLS: dict[str, list[str]] = {
    "age_years": ["0", "3.5", "18", "64", "120", "-1", "121", "abc", "nan", ""],
    "lineage": ["B", "T", "unknown", "b", "X", ""],
    "ph_status": ["positive", "negative", "unknown", "pos", ""],
    "cns_involvement": ["true", "false", "TRUE", "", "maybe", "1x"],
    "disease_status": ["newly_diagnosed", "in_remission", "refractory", "relapsed", "cured", ""],
    "completed_phases": ["", "induction", "induction;consolidation", "consolidation", "induction;maintenance", "x"],
    "mrd_status": ["positive", "negative", "unknown", "?", ""],
    "remission_count": ["0", "1", "2", "-1", "1.5", "one", ""],
    "relapse_count": ["0", "1", "2", "3", "-2", ""],
    "remission_duration_months": ["", "6", "18", "-3", "inf", "x"],
    "prior_regimen_count": ["0", "1", "2", "4", "2.2", ""],
    "expected_survival_months": ["", "3", "6", "-1", "soon"],
    "phase_in_progress": ["", "none", "induction", "consolidation", "unknown", "rest"],
    "mrd_timepoint": ["", "end_of_induction", "later", "day29"],
    "relapse_site": ["", "unknown", "marrow", "cns", "bone"],
    "months_from_diagnosis_to_relapse": ["", "3", "30", "-1", "x"],
    "relapse_during_therapy": ["", "true", "false", "FALSE", "sometimes"],
    "months_from_therapy_end_to_relapse": ["", "0", "12", "-5"],
    "cd19_status": ["", "positive", "negative", "dim"],
    "genetic_subtypes": ["", "bcr-abl1", "ph-like", "bcr-abl1;abl1-t315i", "bcr-abl1;ph-like", "abl1-t315i", "bcr"],
    "prior_therapies": ["", "tki", "blinatumomab;car-t", "car-t; tki", "aspirin"],
    "fit_for_intensive_therapy": ["", "true", "false", "1"],
    "pregnant": ["", "false", "True"],
}
_NUMBERS = ("age_years", "remission_duration_months", "expected_survival_months", "months_from_diagnosis_to_relapse")
_NUMBERS += ("months_from_therapy_end_to_relapse",)


def _oracle(row: dict[str, str]) -> bool:
    """Whether PatientFacts accepts the row, converting text cells the obvious way."""
    data: dict[str, Any] = {}
    for name, text in row.items():
        if name == "patient_id" or text == "":
            continue
        value: Any = text
        if name in _NUMBERS:
            try:
                value = float(text)
            except ValueError:
                value = text
        elif name in ("remission_count", "relapse_count", "prior_regimen_count"):
            value = int(text) if text.lstrip("-").isdigit() else text
        elif FACT_KINDS[name].type == "boolean":
            value = {"true": True, "false": False}.get(text.lower(), text)
        elif FACT_KINDS[name].type == "list":
            value = [p.strip() for p in text.split(";") if p.strip()]
        data[name] = value
    try:
        PatientFacts.parse(data)
    except FactsError:
        return False
    return True


# Each row is judged on its own, so what the property needs is many rows, not many tables: an
# evaluation costs about 0.25 s of CPU whatever its size (the rules' SQL is planned every time),
# and 10 tables of 20 to 40 rows check more rows (about 300) than 40 tables of hypothesis' usual
# half dozen did, for a quarter of the time.
rows_strategy = st.lists(
    st.fixed_dictionaries({name: st.sampled_from(cells) for name, cells in _CELLS.items()}), min_size=20, max_size=40
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy)
def test_rows_rejected_are_exactly_those_patient_facts_rejects(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    rows = [{"patient_id": f"p{i}", **r} for i, r in enumerate(rows)]
    source = _write_csv(tmp_path / "facts.csv", rows)
    summary = evaluate_duckdb(source, tmp_path / "out.parquet", default_engine().kb, rejects=tmp_path / "rej.csv")
    rejected = {p.row for p in summary.problems}
    expected = {i + 1 for i, r in enumerate(rows) if not _oracle(r)}
    assert rejected == expected
    assert summary.evaluated + summary.rejected == len(rows)
