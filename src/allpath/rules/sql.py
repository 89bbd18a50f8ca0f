"""Compile the KB's condition trees to SQL, for DuckDB and Spark (the cohort back end).

One dialect-neutral walk (`tree.fold`) writes every rule; a `Dialect` supplies the few spellings
that differ (identifier quoting, list membership, dropping NULLs from a list). Nothing here
talks to a database: it only writes SQL text, so the core stays free of duckdb and pyspark.

Null semantics match the Python engine exactly: every comparison leaf is wrapped as
`COALESCE(<test>, FALSE)`, so a comparison with a NULL fact is FALSE (never SQL's UNKNOWN) and
`NOT` over it is TRUE. With leaves that are never NULL, SQL's three-valued AND/OR/NOT reduce to
the two-valued logic the Python engine uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from allpath.facts import ID_COLUMN
from allpath.knowledge.loader import KnowledgeBase
from allpath.knowledge.schema import Condition, FactTest
from allpath.rules.order import plan_order
from allpath.rules.tree import fold


@dataclass(frozen=True, slots=True)
class Dialect:
    """The spellings that differ between SQL engines; everything else is shared."""

    name: str
    quote: Callable[[str], str]
    list_contains: str
    make_list: Callable[[Sequence[str]], str]
    """A list/array literal of the given SQL expressions (never empty)."""
    compact: Callable[[str], str]
    """Wrap a list/array expression so that its NULL elements are dropped (order kept)."""
    empty_list: str


def _double_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _backtick(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


DUCKDB = Dialect(
    name="duckdb",
    quote=_double_quote,
    list_contains="list_contains",
    make_list=lambda items: "[" + ", ".join(items) + "]",
    compact=lambda expr: f"list_filter({expr}, lambda x: x IS NOT NULL)",
    empty_list="CAST([] AS VARCHAR[])",
)
SPARK = Dialect(
    name="spark",
    quote=_backtick,
    list_contains="array_contains",
    make_list=lambda items: "array(" + ", ".join(items) + ")",
    compact=lambda expr: f"array_compact({expr})",
    empty_list="CAST(array() AS ARRAY<STRING>)",
)
DIALECTS: dict[str, Dialect] = {"duckdb": DUCKDB, "spark": SPARK}


def literal(value: Any) -> str:
    """A SQL literal both dialects read the same way (floats as DOUBLE, never DECIMAL)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot compile non-finite literal {value!r}")
        # An exponent makes both DuckDB and Spark type the literal as DOUBLE; a bare 18.5
        # would be DECIMAL and compare through a different cast than the Python float does.
        text = repr(value)
        return text if "e" in text else f"{text}e0"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot compile literal {value!r}")


_SYMBOLS = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _leaf(test: FactTest, dialect: Dialect) -> str:
    column = dialect.quote(test.fact)
    op = test.op
    if op == "is_null":
        return f"({column} IS NULL)"
    if op == "not_null":
        return f"({column} IS NOT NULL)"
    if op in ("contains", "not_contains"):
        found = f"COALESCE({dialect.list_contains}({column}, {literal(test.value)}), FALSE)"
        return found if op == "contains" else f"(NOT {found})"
    if op in ("in", "not_in"):
        values = ", ".join(literal(v) for v in test.value)
        keyword = "IN" if op == "in" else "NOT IN"
        expression = f"{column} {keyword} ({values})"
    else:
        expression = f"{column} {_SYMBOLS[op]} {literal(test.value)}"
    # Guarded even for facts PatientFacts never leaves null: a table column can still hold NULL.
    return f"COALESCE({expression}, FALSE)"


def to_sql(node: Condition, dialect: Dialect = DUCKDB) -> str:
    """The tree as a SQL boolean expression over columns named like the PatientFacts fields."""
    return fold(
        node,
        leaf=lambda t: _leaf(t, dialect),
        all_of=lambda parts: "(" + " AND ".join(parts) + ")" if parts else "TRUE",
        any_of=lambda parts: "(" + " OR ".join(parts) + ")",
        not_of=lambda part: f"(NOT {part})",
    )


def plan_ids(kb: KnowledgeBase) -> dict[str, list[str]]:
    """Rule ids per output list, in the order a `Plan` lists them (`allpath.rules.order`)."""
    return {name: [kb.rules[i].id for i in positions] for name, positions in plan_order(kb.rules).items()}


def _id_list(cases: Sequence[tuple[str, str]], dialect: Dialect) -> str:
    """The ids whose condition holds, in the given order: a list of CASEs with the misses dropped."""
    if not cases:
        return dialect.empty_list
    return dialect.compact(dialect.make_list([f"CASE WHEN {test} THEN {literal(i)} END" for i, test in cases]))


def rule_columns(kb: KnowledgeBase, dialect: Dialect = DUCKDB) -> list[tuple[str, str]]:
    """(column, SQL boolean) for each rule, and for each variant (`<rule column>_v<k>`).

    Rule k is column `__r<k>` (its KB position). Computing each condition once, in its own
    column, keeps the expressions the planner sees small: shared conditions such as
    `chemotherapy-active` are inlined into several rules by the KB resolver.
    """
    columns: list[tuple[str, str]] = []
    for index, rule in enumerate(kb.rules):
        columns.append((f"__r{index}", to_sql(kb.conditions[rule.id], dialect)))
        for k, variant in enumerate(kb.variant_conditions[rule.id], start=1):
            columns.append((f"__r{index}_v{k}", to_sql(variant, dialect)))
    return columns


def _list_entries(kb: KnowledgeBase, dialect: Dialect = DUCKDB) -> dict[str, list[tuple[str, str]]]:
    """(id, SQL boolean over the `rule_columns`) per result list, in plan order.

    `recommendations`, `not_recommended` and `alerts` hold rule ids; `variants` holds `rule-id:k`
    for each firing rule whose variant k-1 applied, so the whole of `Engine.fired` is reproduced.
    """
    index = {r.id: i for i, r in enumerate(kb.rules)}
    q = dialect.quote
    entries = {name: [(i, q(f"__r{index[i]}")) for i in ids] for name, ids in plan_ids(kb).items()}
    variants: list[tuple[str, str]] = []
    for rule in kb.rules:
        r = f"__r{index[rule.id]}"
        for k in range(1, len(kb.variant_conditions[rule.id]) + 1):
            # Variant k applies when the rule fires, no earlier variant holds and its own test does.
            earlier = [f"(NOT {q(f'{r}_v{j}')})" for j in range(1, k)]
            variants.append((f"{rule.id}:{k}", "(" + " AND ".join([q(r), *earlier, q(f"{r}_v{k}")]) + ")"))
    entries["variants"] = variants
    return entries


def output_columns(kb: KnowledgeBase, dialect: Dialect = DUCKDB) -> list[tuple[str, str]]:
    """(name, SQL list expression) for the result columns of a cohort evaluation (`_list_entries`)."""
    return [(name, _id_list(cases, dialect)) for name, cases in _list_entries(kb, dialect).items()]


def select_sql(
    kb: KnowledgeBase,
    source: str,
    dialect: Dialect = DUCKDB,
    *,
    keep: Sequence[str] = (ID_COLUMN,),
    where: str | None = None,
) -> str:
    """`SELECT keep..., recommendations, not_recommended, alerts, variants FROM source [WHERE ...]`.

    Two levels: the inner query computes each rule's condition once, the outer builds the lists.
    """
    outer = output_columns(kb, dialect)
    return _over_rule_columns(kb, source, dialect, keep, where, outer)


def _over_rule_columns(
    kb: KnowledgeBase,
    source: str,
    dialect: Dialect,
    keep: Sequence[str],
    where: str | None,
    outer: Sequence[tuple[str, str]],
) -> str:
    """`SELECT keep..., <outer expressions> FROM (SELECT keep..., <rule columns> FROM source [WHERE])`."""
    q = dialect.quote
    inner = [q(k) for k in keep] + [f"{expr} AS {q(name)}" for name, expr in rule_columns(kb, dialect)]
    sql = "SELECT " + ",\n  ".join(inner) + f"\nFROM {source}"
    if where:
        sql += f"\nWHERE {where}"
    selected = [q(k) for k in keep] + [f"{expr} AS {q(name)}" for name, expr in outer]
    return "SELECT " + ",\n  ".join(selected) + f"\nFROM (\n{sql}\n) rules"


MASK_BITS = 62
"""Rules per mask column: a BIGINT holds 63 value bits; one is kept spare."""


def mask_columns(kb: KnowledgeBase, dialect: Dialect = DUCKDB) -> list[tuple[str, str, str, list[str]]]:
    """(column, SQL BIGINT expression, output list name, rule ids by bit) over the `rule_columns`.

    The cheapest way out of an engine whose list functions cost more than its arithmetic: each
    output list travels as bit masks (bit i set when the i-th id of the segment fired), and the
    caller turns the masks into lists, in plan order, in bulk. `variants` are encoded the same way.
    """
    entries = _list_entries(kb, dialect)
    columns: list[tuple[str, str, str, list[str]]] = []
    for name, items in entries.items():
        for segment, start in enumerate(range(0, max(len(items), 1), MASK_BITS)):
            chunk = items[start : start + MASK_BITS]
            terms = [f"(CASE WHEN {test} THEN {1 << bit} ELSE 0 END)" for bit, (_, test) in enumerate(chunk)]
            columns.append((f"__m_{name}_{segment}", " + ".join(terms) or "0", name, [i for i, _ in chunk]))
    return columns


def mask_sql(
    kb: KnowledgeBase,
    source: str,
    dialect: Dialect = DUCKDB,
    *,
    keep: Sequence[str] = (ID_COLUMN,),
    where: str | None = None,
) -> str:
    """Like `select_sql`, with the lists as the bit masks of `mask_columns`."""
    outer = [(name, expr) for name, expr, _, _ in mask_columns(kb, dialect)]
    return _over_rule_columns(kb, source, dialect, keep, where, outer)
