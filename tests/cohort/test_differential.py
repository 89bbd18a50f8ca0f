"""The Done-when test: on >= 100,000 valid patients, Python, DuckDB and Spark fire the same rules.

Patients come from the synthetic generator (100,000, realistic mixes) and from hypothesis
(a few thousand, leaning on the boundary values where rules change their answer). Each
engine's answer per patient is compared exactly: the three id lists in plan order, and the
variant chosen for each firing rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allpath.cohort.evaluate import evaluate_duckdb, evaluate_spark
from allpath.cohort.synth import facts_table
from allpath.engine import Engine, default_engine
from allpath.facts import PatientFacts
from allpath.knowledge import KnowledgeBase
from tests.factsgen import collect_patients
from tests.v2_conditions import V2_RULE_IDS, kb_with_v2_rules

from .helpers import as_row, facts_of, python_answer, read_results, sql_answer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cohort-spark")]

# The facts file, the Python engine's answer per patient, and each patient's facts.
Cohort = tuple[Path, dict[str, Any], dict[str, PatientFacts]]

GENERATED = 100_000
FROM_HYPOTHESIS = 3_000


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    engine = default_engine()
    synthetic = facts_table(GENERATED, seed=2026)
    drawn = collect_patients(FROM_HYPOTHESIS)
    extra = pa.Table.from_pylist([as_row(f"H{i}", f) for i, f in enumerate(drawn)], schema=synthetic.schema)
    table = pa.concat_tables([synthetic, extra])
    path = tmp_path_factory.mktemp("differential") / "facts.parquet"
    pq.write_table(table, path)
    facts = {row["patient_id"]: facts_of(row) for row in table.to_pylist()}
    expected = {pid: python_answer(engine, f) for pid, f in facts.items()}
    assert len(expected) >= 100_000
    return path, expected, facts


@pytest.fixture(scope="module")
def v2_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return kb_with_v2_rules(tmp_path_factory.mktemp("v2-kb") / "packs")


@pytest.fixture(scope="module")
def v2_expected(cohort: Cohort, v2_kb: KnowledgeBase) -> dict[str, Any]:
    """The Python engine's answers with the `test-v2-*` rules, each of which fires for some patients only."""
    engine = Engine(v2_kb)
    expected = {pid: python_answer(engine, facts) for pid, facts in cohort[2].items()}
    fired = [{a for a in answer[2] if a.startswith("test-v2-")} for answer in expected.values()]
    for rule in V2_RULE_IDS:
        assert 0 < sum(rule in f for f in fired) < len(fired), f"{rule} does not split the cohort"
    return expected


def _compare(results: dict[str, dict[str, Any]], expected: dict[str, Any]) -> None:
    assert results.keys() == expected.keys()
    wrong = [pid for pid, answer in expected.items() if sql_answer(results[pid]) != answer]
    assert not wrong, (
        f"{len(wrong)} patients differ, e.g. {wrong[0]}: {sql_answer(results[wrong[0]])} != {expected[wrong[0]]}"
    )


def test_duckdb_fires_exactly_what_the_python_engine_fires(cohort: Cohort, tmp_path: Path) -> None:
    path, expected, _ = cohort
    summary = evaluate_duckdb(path, tmp_path / "results.parquet", default_engine().kb)
    assert summary.rejected == 0
    _compare(read_results(tmp_path / "results.parquet"), expected)


@pytest.mark.spark
def test_spark_fires_exactly_what_the_python_engine_fires(cohort: Cohort, tmp_path: Path, spark: Any) -> None:
    path, expected, _ = cohort
    summary = evaluate_spark(path, tmp_path / "results", default_engine().kb, spark=spark)
    assert summary.rejected == 0
    assert summary.evaluated == len(expected)
    _compare(read_results(tmp_path / "results"), expected)


def test_duckdb_agrees_on_rules_over_the_v2_fields(
    cohort: Cohort, v2_kb: KnowledgeBase, v2_expected: dict[str, Any], tmp_path: Path
) -> None:
    summary = evaluate_duckdb(cohort[0], tmp_path / "results.parquet", v2_kb)
    assert summary.rejected == 0
    _compare(read_results(tmp_path / "results.parquet"), v2_expected)


@pytest.mark.spark
def test_spark_agrees_on_rules_over_the_v2_fields(
    cohort: Cohort, v2_kb: KnowledgeBase, v2_expected: dict[str, Any], tmp_path: Path, spark: Any
) -> None:
    summary = evaluate_spark(cohort[0], tmp_path / "results", v2_kb, spark=spark)
    assert summary.rejected == 0
    _compare(read_results(tmp_path / "results"), v2_expected)


@pytest.mark.spark
def test_spark_sets_aside_the_same_bad_rows_as_duckdb(tmp_path: Path, spark: Any) -> None:
    source = tmp_path / "facts.csv"
    source.write_text(
        "patient_id,age_years,disease_status,completed_phases,remission_count,cns_involvement\n"
        "A,3,newly_diagnosed,,,\n"
        "B,-4,newly_diagnosed,,,\n"
        "C,70,in_remission,induction;consolidation,1,maybe\n"
        "D,12.5,in_remission,consolidation,1,true\n"
        "E,40,relapsed,,1,false\n",
        encoding="utf-8",
    )
    kb = default_engine().kb
    on_duckdb = evaluate_duckdb(source, tmp_path / "d.parquet", kb)
    on_spark = evaluate_spark(source, tmp_path / "s", kb, spark=spark)
    assert [str(p) for p in on_spark.problems] == [str(p) for p in on_duckdb.problems]
    assert {p.row for p in on_spark.problems} == {2, 3, 4, 5}
    assert read_results(tmp_path / "s").keys() == read_results(tmp_path / "d.parquet").keys() == {"A"}


@pytest.mark.spark
def test_spark_reports_a_file_it_cannot_read_as_a_table_error(tmp_path: Path, spark: Any) -> None:
    from allpath.cohort.staging import TableError

    source = tmp_path / "facts.parquet"
    source.write_text("not parquet at all\n", encoding="utf-8")
    with pytest.raises(TableError) as caught:
        evaluate_spark(source, tmp_path / "results", default_engine().kb, spark=spark)
    assert [p.field for p in caught.value.problems] == ["SOURCE"]
    assert "cannot be read" in caught.value.problems[0].problem
