"""Facts tables and the v2 fields: absent columns take their defaults, lists come as Parquet lists or CSV text."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from allpath.bulk import facts_schema
from allpath.cohort.evaluate import evaluate_duckdb
from allpath.engine import default_engine
from allpath.facts import FACT_KINDS, FIELD_NAMES
from tests.factsgen import collect_patients

from .helpers import as_row, facts_of, python_answer, read_results, sql_answer

V1_FIELDS = FIELD_NAMES[: FIELD_NAMES.index("expected_survival_months") + 1]


def _agree_with_the_engine(results: Path, rows: list[dict[str, Any]]) -> None:
    engine = default_engine()
    got = read_results(results)
    assert got.keys() == {r["patient_id"] for r in rows}
    for row in rows:
        assert sql_answer(got[row["patient_id"]]) == python_answer(engine, facts_of(row)), row


def test_a_table_without_the_v2_columns_is_evaluated_with_their_defaults(tmp_path: Path) -> None:
    rows = [
        {k: v for k, v in as_row(f"H{i}", f).items() if k in ("patient_id", *V1_FIELDS)}
        for i, f in enumerate(collect_patients(300, seed=4))
    ]
    schema = pa.schema([f for f in facts_schema() if f.name in ("patient_id", *V1_FIELDS)])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "facts.parquet")
    summary = evaluate_duckdb(tmp_path / "facts.parquet", tmp_path / "out.parquet", default_engine().kb)
    assert (summary.evaluated, summary.rejected) == (300, 0)
    _agree_with_the_engine(tmp_path / "out.parquet", rows)


def test_bcr_abl1_with_ph_status_not_given_counts_as_ph_positive_as_in_patient_facts(tmp_path: Path) -> None:
    source = tmp_path / "facts.csv"
    source.write_text(
        "patient_id,age_years,disease_status,ph_status,genetic_subtypes\n"
        "fusion,40,newly_diagnosed,,bcr-abl1\n"
        "fusion-unknown,40,newly_diagnosed,unknown,bcr-abl1;kmt2a\n"
        "no-fusion,40,newly_diagnosed,,kmt2a\n",
        encoding="utf-8",
    )
    summary = evaluate_duckdb(source, tmp_path / "out.parquet", default_engine().kb)
    assert summary.rejected == 0
    recommended = {pid: row["recommendations"] for pid, row in read_results(tmp_path / "out.parquet").items()}
    assert "tki-ph-positive" in recommended["fusion"]
    assert "tki-ph-positive" in recommended["fusion-unknown"]
    assert "tki-ph-positive" not in recommended["no-fusion"]
    with open(source, newline="", encoding="utf-8") as handle:
        rows = [{k: v or None for k, v in r.items()} for r in csv.DictReader(handle)]
    for row in rows:
        row["age_years"] = float(row["age_years"])
        row["genetic_subtypes"] = row["genetic_subtypes"].split(";")
    _agree_with_the_engine(tmp_path / "out.parquet", rows)


def test_list_fields_read_the_same_from_parquet_lists_and_csv_text(tmp_path: Path) -> None:
    drawn = collect_patients(300, seed=5)
    rows = [as_row(f"H{i}", f) for i, f in enumerate(drawn)]
    lists = [n for n in FIELD_NAMES if FACT_KINDS[n].type == "list"]
    assert all(any(r[n] for r in rows) for n in lists), "every list field should hold items somewhere"
    pq.write_table(pa.Table.from_pylist(rows, schema=facts_schema()), tmp_path / "facts.parquet")
    with open(tmp_path / "facts.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["patient_id", *FIELD_NAMES])
        writer.writeheader()
        for row in rows:
            cells = {k: ";".join(v) if k in lists else v for k, v in row.items()}
            writer.writerow(
                {k: "" if v is None else str(v).lower() if isinstance(v, bool) else v for k, v in cells.items()}
            )
    kb = default_engine().kb
    for name in ("facts.parquet", "facts.csv"):
        summary = evaluate_duckdb(tmp_path / name, tmp_path / f"{name}.out.parquet", kb)
        assert (summary.evaluated, summary.rejected) == (300, 0), summary.problems[:3]
        _agree_with_the_engine(tmp_path / f"{name}.out.parquet", rows)
