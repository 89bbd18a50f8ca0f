"""Helpers for the cohort tests: Python-engine answers in the shape of a cohort result row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allpath.engine import Engine
from allpath.facts import FIELD_NAMES, ID_COLUMN, PatientFacts


def as_row(patient_id: str, facts: PatientFacts) -> dict[str, Any]:
    """PatientFacts as a facts-table row (lists as lists), under `patient_id`."""
    row: dict[str, Any] = {ID_COLUMN: patient_id}
    for name in FIELD_NAMES:
        value = getattr(facts, name)
        row[name] = list(value) if isinstance(value, tuple) else value
    return row


def facts_of(row: dict[str, Any]) -> PatientFacts:
    """A facts-table row as PatientFacts (NULL cells left out, as the cohort engine reads them)."""
    return PatientFacts.parse({k: v for k, v in row.items() if k in FIELD_NAMES and v is not None})


def python_answer(engine: Engine, facts: PatientFacts) -> tuple[list[str], list[str], list[str], list[str]]:
    """What the single-patient engine says, in the shape of a cohort result row."""
    plan = engine.recommend(facts, with_missing_facts=False)  # a cohort result row has no missing facts
    variants = sorted(f"{rule}:{k}" for rule, k in engine.fired(facts).items() if k > 0)
    return (
        [r.id for r in plan.recommendations],
        [n.id for n in plan.not_recommended],
        [a.id for a in plan.alerts],
        variants,
    )


def sql_answer(row: dict[str, Any]) -> tuple[list[str], list[str], list[str], list[str]]:
    return (
        list(row["recommendations"]),
        list(row["not_recommended"]),
        list(row["alerts"]),
        sorted(row["variants"]),
    )


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    import pyarrow.parquet as pq

    return {r["patient_id"]: r for r in pq.read_table(path).to_pylist()}


ANSWER_COLUMNS = ("recommendations", "not_recommended", "alerts", "variants")


def answers_table(answers: dict[str, tuple[list[str], list[str], list[str], list[str]]]) -> Any:
    """`python_answer`s by patient id as one Arrow table, sorted by patient id, for columnar comparison."""
    import pyarrow as pa

    ids = sorted(answers)
    columns = {"patient_id": pa.array(ids, pa.string())}
    for j, name in enumerate(ANSWER_COLUMNS):
        columns[name] = pa.array([answers[i][j] for i in ids], pa.list_(pa.string()))
    return pa.table(columns)


def results_table(path: Path) -> Any:
    """A cohort results file in `answers_table`'s shape: plain string lists, variants sorted, rows by patient id.

    Reading it column-wise keeps a 100,000-patient comparison to a second or so, where a dict per
    row costs several.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["patient_id", *ANSWER_COLUMNS])
    table = table.take(pc.sort_indices(table, [("patient_id", "ascending")]))
    columns = {"patient_id": table.column("patient_id").combine_chunks().cast(pa.string())}
    for name in ANSWER_COLUMNS:
        lists = table.column(name).combine_chunks().cast(pa.list_(pa.string()))
        if name == "variants":
            lists = _sorted_within_lists(lists)
        columns[name] = lists
    return pa.table(columns)


def _sorted_within_lists(lists: Any) -> Any:
    """Each list's items sorted (as `sql_answer` sorts the variants), the list boundaries kept."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lists = lists.fill_null([]) if lists.null_count else lists
    parents = pc.list_parent_indices(lists)
    flat = pa.table({"parent": parents, "item": pc.list_flatten(lists)})
    order = pc.sort_indices(flat, [("parent", "ascending"), ("item", "ascending")])
    offsets = pc.subtract(lists.offsets, lists.offsets[0])
    return pa.ListArray.from_arrays(offsets, flat.column("item").take(order).combine_chunks())


def first_difference(got: Any, expected: Any) -> str:
    """The first row where two `answers_table`-shaped tables differ, for the failure message."""
    if got.column("patient_id") != expected.column("patient_id"):
        missing = set(expected.column("patient_id").to_pylist()) ^ set(got.column("patient_id").to_pylist())
        return f"patient ids differ: {sorted(missing)[:5]}"
    for name in ANSWER_COLUMNS:
        a, b = got.column(name).combine_chunks(), expected.column(name).combine_chunks()
        if a != b:
            import pyarrow.compute as pc

            row = pc.index(pc.not_equal(pc.binary_join(a, "|"), pc.binary_join(b, "|")), True).as_py()
            return f"{name} of {got.column('patient_id')[row]}: {a[row]} != {b[row]}"
    return "no difference"
