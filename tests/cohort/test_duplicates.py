"""A patient_id names one patient: its second and later rows are bad rows, reported and set aside."""

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

from allpath.cohort.evaluate import evaluate_duckdb, evaluate_spark
from allpath.engine import default_engine

from .test_bad_rows import _CELLS, GOOD, _oracle, _write_csv

_VALID = {k: v for k, v in GOOD.items() if k != "patient_id"}


def _csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["patient_id,age_years,disease_status", *(",".join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _result_ids(path: Path) -> list[str]:
    ids: list[str] = pq.read_table(path).column("patient_id").to_pylist()
    return ids


REPEATS = [
    ("A", "3", "newly_diagnosed"),
    ("B", "4", "newly_diagnosed"),
    ("A", "5", "newly_diagnosed"),
    ("C", "6", "newly_diagnosed"),
    ("B", "7", "newly_diagnosed"),
    (" A ", "8", "newly_diagnosed"),
]


def test_later_rows_of_a_patient_id_are_duplicates_of_the_first_row(tmp_path: Path) -> None:
    source = _csv(tmp_path / "facts.csv", REPEATS)
    summary = evaluate_duckdb(source, tmp_path / "out.parquet", default_engine().kb)
    assert (summary.rows, summary.evaluated, summary.rejected) == (6, 3, 3)
    assert [(p.row, p.patient_id, p.field, p.problem) for p in summary.problems] == [
        (3, "A", "patient_id", "duplicate of row 1"),
        (5, "B", "patient_id", "duplicate of row 2"),
        (6, "A", "patient_id", "duplicate of row 1"),  # ids are trimmed, as the staging query trims them
    ]
    assert _result_ids(tmp_path / "out.parquet") == ["A", "B", "C"]
    with open(summary.rejects or "", newline="", encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["row_number"], r["age_years"]) for r in rejected] == [("3", "5"), ("5", "7"), ("6", "8")]
    assert json.loads(rejected[0]["problems"]) == [{"field": "patient_id", "problem": "duplicate of row 1"}]


def test_a_duplicate_that_is_also_invalid_lists_the_duplicate_first_then_its_other_problems(tmp_path: Path) -> None:
    source = _csv(tmp_path / "facts.csv", [("A", "3", "newly_diagnosed"), ("A", "-1", "newly_diagnosed")])
    summary = evaluate_duckdb(source, tmp_path / "out.parquet", default_engine().kb)
    assert [(p.row, p.field, p.problem) for p in summary.problems] == [
        (2, "patient_id", "duplicate of row 1"),
        (2, "age_years", "must be >= 0"),
    ]


def test_the_rows_after_an_invalid_first_row_are_still_duplicates(tmp_path: Path) -> None:
    # Which of two rows is the patient is unknowable, so a bad first row does not promote the second.
    source = _csv(tmp_path / "facts.csv", [("A", "-3", "newly_diagnosed"), ("A", "3", "newly_diagnosed")])
    summary = evaluate_duckdb(source, tmp_path / "out.parquet", default_engine().kb)
    assert [(p.row, p.field) for p in summary.problems] == [(1, "age_years"), (2, "patient_id")]
    assert summary.evaluated == 0


def test_duplicates_in_a_parquet_table_with_integer_ids_are_found_and_set_aside(tmp_path: Path) -> None:
    table = pa.table(
        {
            "patient_id": pa.array([7, 8, 7, 9], pa.int64()),
            "age_years": [5.0, 6.0, 7.0, 8.0],
            "disease_status": ["newly_diagnosed"] * 4,
        }
    )
    pq.write_table(table, tmp_path / "facts.parquet", row_group_size=2)
    summary = evaluate_duckdb(tmp_path / "facts.parquet", tmp_path / "out.parquet", default_engine().kb)
    assert [(p.row, p.patient_id, p.problem) for p in summary.problems] == [(3, "7", "duplicate of row 1")]
    assert _result_ids(tmp_path / "out.parquet") == ["7", "8", "9"]
    assert pq.read_table(summary.rejects or "").column("age_years").to_pylist() == [7.0]


def test_unique_ids_reject_nothing_and_write_no_rejects_file(tmp_path: Path) -> None:
    source = _csv(tmp_path / "facts.csv", [("A", "3", "newly_diagnosed"), ("a", "3", "newly_diagnosed")])
    summary = evaluate_duckdb(source, tmp_path / "out.parquet", default_engine().kb)
    assert (summary.rejected, summary.rejects) == (0, None)


# Fewer, longer tables than hypothesis' habit of a half dozen rows: an evaluation costs about
# 0.25 s of CPU whatever its size, and 12 tables of 8 to 24 rows hold about as many rows, and
# more repeats of each id, as 30 tables of up to 12 did.
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids=st.lists(st.sampled_from(["p0", "p1", "p2", " p1"]), min_size=8, max_size=24),
    # Half the rows valid, so that valid repeats (which only the duplicate check rejects) are common.
    cells=st.lists(
        st.one_of(st.just(_VALID), st.fixed_dictionaries({n: st.sampled_from(c) for n, c in _CELLS.items()})),
        min_size=24,
        max_size=24,
    ),
)
def test_rows_rejected_are_the_invalid_ones_and_every_repeat_of_an_earlier_id(
    tmp_path: Path, ids: list[str], cells: list[dict[str, str]]
) -> None:
    rows = [{"patient_id": i, **c} for i, c in zip(ids, cells, strict=False)]
    source = _write_csv(tmp_path / "facts.csv", rows)
    summary = evaluate_duckdb(source, tmp_path / "out.parquet", default_engine().kb, rejects=tmp_path / "rej.csv")
    seen: set[str] = set()
    expected: set[int] = set()
    for i, row in enumerate(rows, start=1):
        key = row["patient_id"].strip()
        if key in seen or not _oracle(row):
            expected.add(i)
        seen.add(key)
    assert {p.row for p in summary.problems} == expected
    evaluated = [r["patient_id"].strip() for i, r in enumerate(rows, start=1) if i not in expected]
    assert _result_ids(tmp_path / "out.parquet") == evaluated


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.xdist_group("cohort-spark")
def test_spark_sets_aside_the_same_duplicates_as_duckdb_in_the_same_order(tmp_path: Path, spark: Any) -> None:
    source = _csv(tmp_path / "facts.csv", [*REPEATS, ("D", "-1", "newly_diagnosed"), ("D", "9", "newly_diagnosed")])
    kb = default_engine().kb
    on_duckdb = evaluate_duckdb(source, tmp_path / "d.parquet", kb)
    on_spark = evaluate_spark(source, tmp_path / "s", kb, spark=spark)
    assert [str(p) for p in on_spark.problems] == [str(p) for p in on_duckdb.problems]
    assert {p.row for p in on_spark.problems} == {3, 5, 6, 7, 8}
    assert (on_spark.rows, on_spark.evaluated, on_spark.rejected) == (8, 3, 5)
    assert _result_ids(tmp_path / "s") == _result_ids(tmp_path / "d.parquet") == ["A", "B", "C"]
