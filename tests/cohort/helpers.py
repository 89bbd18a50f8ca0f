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
