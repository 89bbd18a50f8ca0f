"""The SQL back end of the condition trees: same answers as the reference interpreter, nulls included."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allpath.bulk import facts_schema
from allpath.engine import Engine
from allpath.facts import FACT_KINDS, FIELD_NAMES, PatientFacts
from allpath.knowledge import load_kb
from allpath.knowledge.loader import packs_root
from allpath.knowledge.schema import AllOf, AnyOf, FactTest, NotOf
from allpath.rules.sql import DUCKDB, SPARK, literal, select_sql, to_sql
from allpath.rules.tree import describe, evaluate
from tests.factsgen import collect_patients
from tests.v2_conditions import every_leaf

from .helpers import as_row, python_answer, sql_answer

_VALUES: dict[str, list[Any]] = {
    "number": [0.0, 1.0, 6.0, 17.999, 18.0, 21.999, 22.0, 120.0],
    "integer": [0, 1, 2, 3],
}
_OPS = {
    "number": ["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in"],
    "integer": ["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in"],
    "enum": ["eq", "ne", "in", "not_in"],
    "boolean": ["eq", "ne"],
    "list": ["contains", "not_contains"],
}


@st.composite
def fact_tests(draw: Any) -> FactTest:
    fact = draw(st.sampled_from(sorted(FACT_KINDS)))
    kind = FACT_KINDS[fact]
    ops = list(_OPS[kind.type]) + (["is_null", "not_null"] if kind.nullable else [])
    op = draw(st.sampled_from(ops))
    if op in ("is_null", "not_null"):
        return FactTest(fact=fact, op=op, value=None)
    if kind.type == "boolean":
        pool: list[Any] = [True, False]
    elif kind.type in ("enum", "list"):
        pool = list(kind.values)
    else:
        pool = _VALUES[kind.type]
    if op in ("in", "not_in"):
        return FactTest(fact=fact, op=op, value=tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))))
    return FactTest(fact=fact, op=op, value=draw(st.sampled_from(pool)))


conditions = st.recursive(
    fact_tests(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: AllOf(all=xs)),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: AnyOf(any=xs)),
        inner.map(lambda x: NotOf(**{"not": x})),
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def patients() -> tuple[list[PatientFacts], duckdb.DuckDBPyConnection]:
    drawn = collect_patients(400, seed=1)
    con = duckdb.connect()
    con.register("facts", _table(drawn))
    return drawn, con


def _table(drawn: list[PatientFacts]) -> pa.Table:
    # The facts-table schema, so that a list column is list<string> even if every drawn list is empty.
    return pa.Table.from_pylist([as_row(f"H{i}", f) for i, f in enumerate(drawn)], schema=facts_schema())


def _disagreements(got: list[tuple[Any, ...]], drawn: list[PatientFacts], tests: list[FactTest]) -> list[str]:
    wrong = []
    for j, test in enumerate(tests):
        column = [row[j] for row in got]
        expected = [evaluate(test, f) for f in drawn]
        if column != expected:
            i = next(i for i, (a, b) in enumerate(zip(column, expected, strict=True)) if a != b)
            wrong.append(f"{describe(test)}: {column[i]} != {expected[i]} for {drawn[i].model_dump_json()}")
    return wrong


def test_every_fact_and_operator_agrees_with_the_interpreter_on_duckdb(patients: Any) -> None:
    drawn, con = patients
    tests = every_leaf()
    got = con.execute("SELECT " + ", ".join(to_sql(t) for t in tests) + " FROM facts").fetchall()
    assert not _disagreements(got, drawn, tests)
    # The comparison proves little about a v2 fact the drawn patients do not vary.
    for fact in FIELD_NAMES[FIELD_NAMES.index("phase_in_progress") :]:
        kind = FACT_KINDS[fact]
        seen = {v for f in drawn for v in _items(getattr(f, fact))}
        if kind.type in ("enum", "list"):
            assert seen == set(kind.values), fact
        elif kind.type == "boolean":
            assert seen == {True, False, None}, fact
        else:
            assert None in seen and len(seen) > 10, fact


def _items(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.xdist_group("cohort-spark")
def test_every_fact_and_operator_agrees_with_the_interpreter_on_spark(tmp_path: Path, spark: Any) -> None:
    import pyarrow.parquet as pq

    drawn = collect_patients(400, seed=1)
    pq.write_table(_table(drawn), tmp_path / "facts.parquet")
    spark.read.parquet(str(tmp_path / "facts.parquet")).createOrReplaceTempView("every_leaf_facts")
    tests = every_leaf()
    columns = ", ".join(f"{to_sql(t, SPARK)} AS c{j}" for j, t in enumerate(tests))
    rows = spark.sql(f"SELECT patient_id, {columns} FROM every_leaf_facts").collect()
    by_id = {r["patient_id"]: tuple(r[f"c{j}"] for j in range(len(tests))) for r in rows}
    got = [by_id[f"H{i}"] for i in range(len(drawn))]
    assert not _disagreements(got, drawn, tests)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(condition=conditions)
def test_random_condition_trees_agree_with_the_interpreter(patients: Any, condition: Any) -> None:
    drawn, con = patients
    got = [r[0] for r in con.execute(f"SELECT {to_sql(condition)} FROM facts").fetchall()]
    assert got == [evaluate(condition, f) for f in drawn]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_comparison_with_a_null_fact_is_false_and_its_negation_true() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT CAST(NULL AS DOUBLE) AS remission_duration_months")
    lt = FactTest(fact="remission_duration_months", op="lt", value=18.0)
    assert _one(con, f"SELECT {to_sql(lt)} FROM t") is False
    assert _one(con, f"SELECT {to_sql(NotOf(**{'not': lt}))} FROM t") is True
    ne = FactTest(fact="remission_duration_months", op="ne", value=18.0)
    assert _one(con, f"SELECT {to_sql(ne)} FROM t") is False


def test_empty_all_is_true_in_sql() -> None:
    assert to_sql(AllOf(all=[])) == "TRUE"


def test_spark_dialect_uses_array_contains_and_backticks() -> None:
    test = FactTest(fact="completed_phases", op="contains", value="induction")
    assert to_sql(test, SPARK) == "COALESCE(array_contains(`completed_phases`, 'induction'), FALSE)"
    assert to_sql(test, DUCKDB) == "COALESCE(list_contains(\"completed_phases\", 'induction'), FALSE)"


def test_float_literals_are_doubles_in_both_dialects() -> None:
    assert literal(18.0) == "18.0e0"
    assert literal(0.1) == "0.1e0"
    assert literal(2) == "2"
    assert literal("it's") == "'it''s'"


def test_a_rule_added_to_the_kb_reaches_cohorts_without_other_changes(tmp_path: Path) -> None:
    root = tmp_path / "packs"
    shutil.copytree(Path(str(packs_root())), root)
    rules = root / "base" / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    extra = """
  - id: test-infant-alert
    kind: alert
    severity: critical
    when: {all: [{fact: age_years, op: lt, value: 1}, {not: {fact: cns_involvement, op: eq, value: false}}]}
    message: An infant with CNS status not known to be clear.
    citations:
      - {source_id: cancernet-all-2017, section: Introduction}
"""
    rules.write_text(text.replace("\n# Named conditions", extra + "\n# Named conditions", 1), encoding="utf-8")
    kb = load_kb(root=root)
    assert "test-infant-alert" in kb.rule_ids
    engine = Engine(kb)
    drawn = collect_patients(300, seed=2)
    con = duckdb.connect()
    con.register("facts", pa.Table.from_pylist([as_row(f"H{i}", f) for i, f in enumerate(drawn)]))
    rows = {
        r[0]: dict(zip(["patient_id", "recommendations", "not_recommended", "alerts", "variants"], r, strict=True))
        for r in con.execute(select_sql(kb, "facts")).fetchall()
    }
    fired_somewhere = False
    for i, facts in enumerate(drawn):
        answer = python_answer(engine, facts)
        assert sql_answer(rows[f"H{i}"]) == answer
        fired_somewhere |= "test-infant-alert" in answer[2]
    assert fired_somewhere, "no drawn patient was an infant with unknown CNS status"
