"""From a raw facts table to typed, checked rows, in SQL (DuckDB or Spark), and the rejects.

A facts table holds one row per patient: `patient_id` plus columns named as the `PatientFacts`
fields. Each raw column is typed in SQL (text from CSV, or whatever Parquet stored), and a
per-row `__suspect` flag marks every row that could fail `PatientFacts` validation: a cell
that does not convert, a value out of range or not allowed, a missing required field, or one
of the contradictions between fields.

Only the flagged rows travel to Python, where `PatientFacts.parse` itself decides (and words)
every problem from the same typed values SQL computed. The flag is a superset: a flagged row
that Python accepts is evaluated like any other. So the answer is always PatientFacts', while
the millions of clean rows never leave the database. A NULL (or empty CSV) cell means the
field was not given, so `PatientFacts`' default applies, as if the key were left out of JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from annotated_types import Ge, Le

from allpath.facts import (
    FACT_KINDS,
    FIELD_NAMES,
    ID_COLUMN,
    RELAPSE_FIELDS,
    FactsError,
    PatientFacts,
    Problem,
    ProblemsError,
)
from allpath.rules.sql import DUCKDB, Dialect, literal

ROW_COLUMN = "__row"
SUSPECT_COLUMN = "__suspect"
ALLOWED_COLUMNS = (ID_COLUMN, *FIELD_NAMES)

SourceKind = Literal["text", "integer", "float", "boolean", "list", "other"]

# Comma-separated, never sniffed: `completed_phases` holds `;` inside its cells, which a sniffer
# could take for the delimiter, and a ragged row should be reported, not re-read as one column.
CSV_READ_OPTIONS = "header = true, all_varchar = true, delim = ',', quote = '\"'"


class TableError(ProblemsError):
    """The table as a whole cannot be read (a missing required column, an unknown column)."""


def first_line(exc: BaseException) -> str:
    """An engine's error message without its stack or query excerpt, for a `TableError`."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class FieldRule:
    """What PatientFacts demands of one field, read off the model so that nothing is restated."""

    name: str
    kind: str
    nullable: bool
    required: bool
    default: Any
    values: tuple[str, ...]
    ge: float | None = None
    le: float | None = None


def _field_rules() -> dict[str, FieldRule]:
    rules: dict[str, FieldRule] = {}
    for name, info in PatientFacts.model_fields.items():
        kind = FACT_KINDS[name]
        ge = next((m.ge for m in info.metadata if isinstance(m, Ge)), None)
        le = next((m.le for m in info.metadata if isinstance(m, Le)), None)
        rules[name] = FieldRule(
            name=name,
            kind=kind.type,
            nullable=kind.nullable,
            required=info.is_required(),
            default=None if info.is_required() else info.default,
            values=kind.values,
            ge=float(ge) if ge is not None else None,  # type: ignore[arg-type]
            le=float(le) if le is not None else None,  # type: ignore[arg-type]
        )
    return rules


FIELD_RULES: dict[str, FieldRule] = _field_rules()


@dataclass(frozen=True, slots=True)
class SqlDialect:
    """The staging spellings on top of the rule compiler's dialect."""

    rules: Dialect
    double: str
    bigint: str
    text: str
    empty_text_list: str
    split_list: str  # format string with {x}: a ';'-separated string to a trimmed list, empties dropped
    any_bad_element: str  # format string with {x} and {values}
    cardinality: str
    not_finite: str  # format string with {x}


DUCKDB_STAGING = SqlDialect(
    rules=DUCKDB,
    double="DOUBLE",
    bigint="BIGINT",
    text="VARCHAR",
    empty_text_list="CAST([] AS VARCHAR[])",
    split_list="list_filter(list_transform(string_split({x}, ';'), lambda e: trim(e)), lambda e: e <> '')",
    any_bad_element="len(list_filter({x}, lambda e: e IS NULL OR e NOT IN ({values}))) > 0",
    cardinality="len({x})",
    not_finite="NOT isfinite({x})",
)


def _spark_staging() -> SqlDialect:
    from allpath.rules.sql import SPARK

    return SqlDialect(
        rules=SPARK,
        double="DOUBLE",
        bigint="BIGINT",
        text="STRING",
        empty_text_list="CAST(array() AS ARRAY<STRING>)",
        split_list="filter(transform(split({x}, ';'), e -> trim(e)), e -> e <> '')",
        any_bad_element="exists({x}, e -> e IS NULL OR e NOT IN ({values}))",
        cardinality="size({x})",
        not_finite="(isnan({x}) OR abs({x}) = CAST('Infinity' AS DOUBLE))",
    )


SPARK_STAGING = _spark_staging()
STAGING = {"duckdb": DUCKDB_STAGING, "spark": SPARK_STAGING}


@dataclass(slots=True)
class StagedColumn:
    """SQL for one field: its typed value (NULL when absent or unconvertible) and its checks."""

    value: str
    defaulted: str
    bad: list[str] = field(default_factory=list)


def check_columns(columns: Iterable[str]) -> None:
    """Refuse a table whose columns cannot be facts: unknown names, or a required field missing."""
    present = list(columns)
    problems = [Problem(c, f"is not a PatientFacts field or {ID_COLUMN}") for c in present if c not in ALLOWED_COLUMNS]
    for name in (ID_COLUMN, *(n for n, r in FIELD_RULES.items() if r.required)):
        if name not in present:
            problems.append(Problem(name, "column is required"))
    if problems:
        raise TableError(problems)


def _stage(rule: FieldRule, source: SourceKind, d: SqlDialect) -> StagedColumn:
    col = d.rules.quote(rule.name)
    text = f"NULLIF(trim(CAST({col} AS {d.text})), '')"
    bad: list[str] = []
    if rule.kind == "number":
        if source in ("integer", "float"):
            value = f"CAST({col} AS {d.double})"
        else:
            value = f"TRY_CAST({text} AS {d.double})"
            bad.append(f"({text} IS NOT NULL AND {value} IS NULL)")
        bad.append(d.not_finite.format(x=value))
    elif rule.kind == "integer":
        if source == "integer":
            value = f"CAST({col} AS {d.bigint})"
        else:
            number = f"CAST({col} AS {d.double})" if source == "float" else f"TRY_CAST({text} AS {d.double})"
            whole = f"({number} = floor({number}) AND abs({number}) < 9.0e15)"
            value = f"CASE WHEN {whole} THEN CAST({number} AS {d.bigint}) END"
            raw = col if source == "float" else text
            bad.append(f"({raw} IS NOT NULL AND NOT COALESCE({whole}, FALSE))")
    elif rule.kind == "enum":
        value = text if source != "text" else f"NULLIF({col}, '')"
        allowed = ", ".join(literal(v) for v in rule.values)
        bad.append(f"({value} NOT IN ({allowed}))")
    elif rule.kind == "boolean":
        if source == "boolean":
            value = col
        else:
            lowered = f"lower({text})"
            value = f"CASE {lowered} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
            bad.append(f"({text} IS NOT NULL AND {value} IS NULL)")
    elif rule.kind == "list":
        value = col if source == "list" else d.split_list.format(x=text)
        allowed = ", ".join(literal(v) for v in rule.values)
        bad.append(d.any_bad_element.format(x=value, values=allowed))
    else:  # pragma: no cover - a new PatientFacts field type must be taught here
        raise TypeError(f"no staging for {rule.name} ({rule.kind})")
    if rule.ge is not None:
        bad.append(f"({value} < {literal(rule.ge)})")
    if rule.le is not None:
        bad.append(f"({value} > {literal(rule.le)})")
    if rule.required:
        bad.append(f"({value} IS NULL)")
        defaulted = value
    elif rule.kind == "list":
        defaulted = f"COALESCE({value}, {d.empty_text_list})"
    elif rule.default is None:
        defaulted = value
    else:
        defaulted = f"COALESCE({value}, {literal(rule.default)})"
    return StagedColumn(value=value, defaulted=defaulted, bad=bad)


def _contradictions(d: SqlDialect) -> list[str]:
    """The same cases as `facts.contradictions`, over defaulted typed values (a superset is fine)."""
    q = d.rules.quote
    remission, relapse, prior = q("remission_count"), q("relapse_count"), q("prior_regimen_count")
    status, phases = q("disease_status"), q("completed_phases")

    def has(column: str, value: str) -> str:
        return f"COALESCE({d.rules.list_contains}({q(column)}, {value}), FALSE)"

    def done(phase: str) -> str:
        return has("completed_phases", literal(phase))

    def subtype(name: str) -> str:
        return has("genetic_subtypes", literal(name))

    relapse_fields = " OR ".join(f"{q(name)} IS NOT NULL" for name in RELAPSE_FIELDS[1:])
    return [
        f"({relapse} > {remission})",
        f"({status} = 'newly_diagnosed' AND ({remission} <> 0 OR {relapse} <> 0 OR {prior} <> 0"
        f" OR {d.cardinality.format(x=phases)} > 0))",
        f"({status} = 'in_remission' AND {remission} <= {relapse})",
        f"({status} = 'relapsed' AND {relapse} < 1)",
        f"({done('consolidation')} AND NOT {done('induction')})",
        f"({done('maintenance')} AND NOT {done('consolidation')})",
        # v2 (`facts._v2_contradictions`)
        f"({relapse} = 0 AND ({q('relapse_site')} <> 'unknown' OR {relapse_fields}))",
        f"({q('relapse_during_therapy')} AND {q('months_from_therapy_end_to_relapse')} IS NOT NULL)",
        f"({q('remission_duration_months')} > {q('months_from_diagnosis_to_relapse')})",
        has("completed_phases", q("phase_in_progress")),
        f"({subtype('bcr-abl1')} AND {q('ph_status')} = 'negative')",
        f"({subtype('bcr-abl1')} AND ({subtype('ph-like')} OR {subtype('abl-class')}))",
        f"({subtype('abl1-t315i')} AND NOT {subtype('bcr-abl1')})",
    ]


def _ph_status_from_subtypes(ph_status: str, subtypes: str, d: SqlDialect) -> str:
    """PatientFacts' own reading of a BCR::ABL1 finding with Ph status unknown: Ph positive.

    Without it a rule on `ph_status` would see `unknown` in SQL where the engine sees `positive`.
    """
    found = f"COALESCE({d.rules.list_contains}({subtypes}, 'bcr-abl1'), FALSE)"
    return f"CASE WHEN {ph_status} = 'unknown' AND {found} THEN 'positive' ELSE {ph_status} END"


def typed_sql(
    source: str, kinds: Mapping[str, SourceKind], d: SqlDialect = DUCKDB_STAGING, *, carry: bool = False
) -> str:
    """SELECT the row number, patient_id, every field typed and defaulted, and the suspect flag.

    `source` must expose `__row` and the table's columns; `kinds` says how each present column
    is stored. A field without a column takes its default (a required one was refused earlier).
    With `carry`, each present field's undefaulted typed value (`v__<field>`) and raw cell
    (`r__<field>`) ride along, for the Python check of the flagged rows.
    """
    q = d.rules.quote
    staged = {name: _stage(rule, kinds.get(name, "text"), d) for name, rule in FIELD_RULES.items() if name in kinds}
    inner = [q(ROW_COLUMN), f"NULLIF(trim(CAST({q(ID_COLUMN)} AS {d.text})), '') AS {q(ID_COLUMN)}"]
    field_bad: list[str] = []
    defaulted: dict[str, str] = {}
    for name, rule in FIELD_RULES.items():
        if name in staged:
            defaulted[name] = staged[name].defaulted
            field_bad += staged[name].bad
        elif rule.kind == "list":
            defaulted[name] = d.empty_text_list
        else:
            defaulted[name] = literal(rule.default) if rule.default is not None else "NULL"
    if "genetic_subtypes" in staged:
        defaulted["ph_status"] = _ph_status_from_subtypes(defaulted["ph_status"], defaulted["genetic_subtypes"], d)
    for name in FIELD_RULES:
        inner.append(f"{defaulted[name]} AS {q(name)}")
        if carry and name in staged:
            inner.append(f"{staged[name].value} AS {q('v__' + name)}")
            inner.append(f"{q(name)} AS {q('r__' + name)}")
    if carry:
        inner.append(f"CAST({q(ID_COLUMN)} AS {d.text}) AS {q('r__' + ID_COLUMN)}")
    # Field checks read the raw columns, contradictions the typed ones: two levels, one pass.
    raw_flags = " OR ".join(f"COALESCE({b}, FALSE)" for b in field_bad) or "FALSE"
    typed = ",\n    ".join(inner)
    outer_bad = " OR ".join([*(f"COALESCE({b}, FALSE)" for b in _contradictions(d)), f"({q(ID_COLUMN)} IS NULL)"])
    return (
        f"SELECT *, ({q('__field_bad')} OR {outer_bad}) AS {q(SUSPECT_COLUMN)} FROM (\n"
        f"  SELECT {typed},\n    ({raw_flags}) AS {q('__field_bad')}\n  FROM {source}\n) staged"
    )


def suspect_sql(source: str, kinds: Mapping[str, SourceKind], d: SqlDialect = DUCKDB_STAGING) -> str:
    """The flagged rows with, per field, the typed value and the raw cell (for the Python check); one scan."""
    q = d.rules.quote
    parts = [q(ROW_COLUMN), f"{q('r__' + ID_COLUMN)} AS {q(ID_COLUMN)}"]
    for name in (n for n in FIELD_NAMES if n in kinds):
        parts += [q("v__" + name), q("r__" + name)]
    flagged = typed_sql(source, kinds, d, carry=True)
    return f"SELECT {', '.join(parts)} FROM ({flagged}) flagged WHERE {q(SUSPECT_COLUMN)}"


def python_view(row: Mapping[str, Any], present: Sequence[str]) -> dict[str, Any]:
    """The input PatientFacts sees for one flagged row: SQL's typed value, else the raw cell.

    The raw cell is given only where SQL could not convert it, so the Python check judges the
    very values SQL would have evaluated. NULL cells are left out, as absent JSON keys are.
    """
    data: dict[str, Any] = {}
    for name in present:
        value = row.get("v__" + name)
        if value is None:
            value = row.get("r__" + name)
            if isinstance(value, str) and not value.strip():
                value = None
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = list(value)
        data[name] = value
    return data


def check_row(row: Mapping[str, Any], present: Sequence[str]) -> list[Problem]:
    """PatientFacts' own problems for one flagged row (empty: the row is valid after all)."""
    problems: list[Problem] = []
    patient_id = row.get(ID_COLUMN)
    if patient_id is None or not str(patient_id).strip():
        problems.append(Problem(ID_COLUMN, "is required"))
    try:
        PatientFacts.parse(python_view(row, present))
    except FactsError as exc:
        problems.extend(exc.problems)
    return problems
