"""The Done-when test: on >= 100,000 valid patients, Python, DuckDB and Spark fire the same rules.

Patients come from the synthetic generator (100,000, realistic mixes) and from `tests.factsgen`'s
seeded stream (a few thousand, the property tests' construction, crowding the boundary values
where rules change their answer). Each engine's answer per patient is compared exactly: the
three id lists in plan order, and the variant chosen for each firing rule.

DuckDB runs twice, on the default packs and on the packs plus the `test-v2-*` alert rules
(`tests.v2_conditions`). Spark runs once, on the latter: the Python engine's answers show that
those alerts leave every default rule's answer unchanged on every patient, so the one Spark run
that matches the Python engine there also fires exactly what the default packs fire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from allpath.cohort.evaluate import evaluate_duckdb, evaluate_spark
from allpath.cohort.synth import facts_table
from allpath.engine import Engine, default_engine
from allpath.facts import PatientFacts
from allpath.knowledge import KnowledgeBase
from tests.factsgen import facts_stream
from tests.v2_conditions import V2_RULE_IDS, kb_with_v2_rules

from .helpers import answers_table, as_row, facts_of, first_difference, python_answer, read_results, results_table

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cohort-spark")]

Answers = dict[str, tuple[list[str], list[str], list[str], list[str]]]
# The facts file, the Python engine's answers (by patient and as an `answers_table`), and each patient's facts.
Cohort = tuple[Path, Answers, Any, dict[str, PatientFacts]]

GENERATED = 100_000
FROM_STREAM = 3_000
ROW_GROUP = 13_000


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    engine = default_engine()
    synthetic = facts_table(GENERATED, seed=2026)
    drawn = facts_stream(FROM_STREAM, seed=2026)
    extra = pa.Table.from_pylist([as_row(f"H{i}", f) for i, f in enumerate(drawn)], schema=synthetic.schema)
    table = pa.concat_tables([synthetic, extra])
    path = tmp_path_factory.mktemp("differential") / "facts.parquet"
    # Several row groups, so that Spark (and DuckDB) read the file on both cores, not one.
    pq.write_table(table, path, row_group_size=ROW_GROUP)
    facts = {row["patient_id"]: facts_of(row) for row in table.to_pylist()}
    answers = {pid: python_answer(engine, f) for pid, f in facts.items()}
    assert len(answers) >= 100_000
    return path, answers, answers_table(answers), facts


@pytest.fixture(scope="module")
def v2_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return kb_with_v2_rules(tmp_path_factory.mktemp("v2-kb") / "packs")


@pytest.fixture(scope="module")
def v2_answers(cohort: Cohort, v2_kb: KnowledgeBase) -> Answers:
    """The Python engine's answers with the `test-v2-*` rules, each of which fires for some patients only."""
    engine = Engine(v2_kb)
    answers = {pid: python_answer(engine, facts) for pid, facts in cohort[3].items()}
    fired = pc.value_counts(pc.list_flatten(pa.array([a[2] for a in answers.values()], pa.list_(pa.string()))))
    times = {item["values"].as_py(): item["counts"].as_py() for item in fired}
    for rule in V2_RULE_IDS:
        assert 0 < times.get(rule, 0) < len(answers), f"{rule} does not split the cohort"
    return answers


@pytest.fixture(scope="module")
def v2_expected(v2_answers: Answers) -> Any:
    return answers_table(v2_answers)


def _compare(results: Path, expected: Any) -> None:
    got = results_table(results)
    assert got.equals(expected), first_difference(got, expected)


def test_the_v2_test_alerts_leave_every_default_rules_answer_unchanged(cohort: Cohort, v2_answers: Answers) -> None:
    # What lets one Spark run over the v2 rules stand for a run over the default packs too.
    default_answers = cohort[1]
    assert v2_answers.keys() == default_answers.keys()
    changed = [
        pid
        for pid, (recommended, not_recommended, alerts, variants) in v2_answers.items()
        if (recommended, not_recommended, [a for a in alerts if a not in V2_RULE_IDS], variants) != default_answers[pid]
    ]
    assert not changed, f"{len(changed)} patients' default answers change with the test-v2 rules, e.g. {changed[0]}"
    assert any(a in V2_RULE_IDS for answer in v2_answers.values() for a in answer[2])


def test_duckdb_fires_exactly_what_the_python_engine_fires(cohort: Cohort, tmp_path: Path) -> None:
    summary = evaluate_duckdb(cohort[0], tmp_path / "results.parquet", default_engine().kb)
    assert summary.rejected == 0
    _compare(tmp_path / "results.parquet", cohort[2])


def test_duckdb_agrees_on_rules_over_the_v2_fields(
    cohort: Cohort, v2_kb: KnowledgeBase, v2_expected: Any, tmp_path: Path
) -> None:
    summary = evaluate_duckdb(cohort[0], tmp_path / "results.parquet", v2_kb)
    assert summary.rejected == 0
    _compare(tmp_path / "results.parquet", v2_expected)


@pytest.mark.spark
def test_spark_fires_exactly_what_the_python_engine_fires_default_and_v2_rules(
    cohort: Cohort, v2_kb: KnowledgeBase, v2_expected: Any, tmp_path: Path, spark: Any
) -> None:
    """Every rule of the default packs and every `test-v2-*` rule, on all the patients, in one Spark run."""
    summary = evaluate_spark(cohort[0], tmp_path / "results", v2_kb, spark=spark)
    assert summary.rejected == 0
    assert summary.evaluated == v2_expected.num_rows >= 100_000
    _compare(tmp_path / "results", v2_expected)


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
