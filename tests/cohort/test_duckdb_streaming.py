"""The DuckDB path's streaming details: mask decoding, batch-wise rejection, output order and schema."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import allpath.cohort.evaluate as evaluate
import allpath.rules.sql as rules_sql
from allpath.cohort.synth import facts_table
from allpath.engine import default_engine

from .helpers import facts_of, python_answer, sql_answer


def _answers_by_patient(path: Path) -> dict[str, tuple[list[str], list[str], list[str], list[str]]]:
    return {r["patient_id"]: sql_answer(r) for r in pq.read_table(path).to_pylist()}


def test_lists_split_over_several_mask_columns_keep_plan_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Five rules per mask column forces every list of the default KB over several segments.
    monkeypatch.setattr(rules_sql, "MASK_BITS", 5)
    engine = default_engine()
    table = facts_table(3_000, seed=11)
    pq.write_table(table, tmp_path / "facts.parquet")
    evaluate.evaluate_duckdb(tmp_path / "facts.parquet", tmp_path / "out.parquet", engine.kb)
    got = _answers_by_patient(tmp_path / "out.parquet")
    expected = {row["patient_id"]: python_answer(engine, facts_of(row)) for row in table.to_pylist()}
    assert got == expected


def test_rejected_rows_in_several_batches_leave_the_rest_in_input_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluate, "BATCH_ROWS", 1_000)
    engine = default_engine()
    table = facts_table(5_000, seed=12)
    ages = table.column("age_years").to_pylist()
    bad = {9, 2_500, 2_501, 4_999}  # 0-based; rows 10, 2501, 2502 and 5000 of the file
    for index in bad:
        ages[index] = 150.0
    table = table.set_column(table.schema.get_field_index("age_years"), "age_years", pa.array(ages, pa.float64()))
    pq.write_table(table, tmp_path / "facts.parquet", row_group_size=700)

    summary = evaluate.evaluate_duckdb(tmp_path / "facts.parquet", tmp_path / "out.parquet", engine.kb)

    assert summary.rejected == len(bad)
    assert sorted({p.row for p in summary.problems}) == sorted(i + 1 for i in bad)
    assert {p.field for p in summary.problems} == {"age_years"}
    rows = table.to_pylist()
    written = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["patient_id"] for r in written] == [r["patient_id"] for i, r in enumerate(rows) if i not in bad]
    expected = {r["patient_id"]: python_answer(engine, facts_of(r)) for i, r in enumerate(rows) if i not in bad}
    assert {r["patient_id"]: sql_answer(r) for r in written} == expected
    rejects = pq.read_table(summary.rejects or "").to_pylist()
    assert [r["row_number"] for r in rejects] == sorted(i + 1 for i in bad)


def test_result_lists_read_back_as_plain_string_lists(tmp_path: Path) -> None:
    pq.write_table(facts_table(200, seed=13), tmp_path / "facts.parquet")
    evaluate.evaluate_duckdb(tmp_path / "facts.parquet", tmp_path / "out.parquet", default_engine().kb)
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert schema.field("patient_id").type == pa.string()
    for name in evaluate.RESULT_LISTS:
        assert schema.field(name).type == pa.list_(pa.string()), name
