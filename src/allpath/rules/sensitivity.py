"""Which unknown facts would change a plan: `Plan.missing_facts`, computed exactly and fast.

A fact is missing for a patient when it is unknown (null, or the value `unknown`) and some
value it is allowed to take, with every other fact held fixed, changes which rules fire or which
variant a firing rule picks. "Allowed" means the facts stay valid (`facts.contradictions`).

Exact, not a heuristic: every value is tried, through equivalence classes for numbers. A number
is only ever compared with the constants written in the rules, so between two neighbouring
constants every value gives the same answers; one value per class (the constants themselves,
a point between each pair, one beyond the last, and the bounds another fact sets) stands for
all. A property test checks the result against brute-force enumeration over a dense grid.

Like `pycompile`, this is one more back end of the condition trees: for each fact that can be
unknown, the compiler writes a block that re-evaluates only the rules that read that fact, once
per alternative value, and compares each rule's choice with the plan's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any

from allpath.facts import FACT_KINDS, RELAPSE_FIELDS
from allpath.knowledge.schema import Condition
from allpath.rules.pycompile import choice_expression
from allpath.rules.tree import leaves

Missing = Callable[[Any, tuple[int, ...]], list[tuple[str, tuple[str, ...]]]]

UNKNOWN = "unknown"


def unknowable_fields() -> list[str]:
    """Fields that can be left unknown: nullable ones, and enums with an `unknown` value.

    Lists are not among them: they hold findings known, and an empty list is a statement.
    """
    names = []
    for name, kind in FACT_KINDS.items():
        if kind.type == "list":
            continue
        if kind.nullable or (kind.type == "enum" and UNKNOWN in kind.values):
            names.append(name)
    return sorted(names)


def _constants(conditions: Sequence[Condition], field: str) -> tuple[float, ...]:
    found: set[float] = set()
    for node in conditions:
        for test in leaves(node):
            if test.fact != field or test.value is None:
                continue
            values = test.value if isinstance(test.value, tuple | list) else (test.value,)
            found.update(float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    return tuple(sorted(found))


@lru_cache(maxsize=4096)
def numeric_points(constants: tuple[float, ...], lo: float, hi: float, integer: bool) -> tuple[float, ...]:
    """One value per equivalence class of [lo, hi] under comparisons with `constants`."""
    if integer:
        lo_i = math.ceil(lo)
        hi_i = math.inf if math.isinf(hi) else math.floor(hi)
        points = {lo_i}
        for c in constants:
            for p in (math.floor(c) - 1, math.floor(c), math.ceil(c), math.ceil(c) + 1):
                if lo_i <= p <= hi_i:
                    points.add(p)
        if not math.isinf(hi_i):
            points.add(int(hi_i))
        else:
            points.add(max(points) + 1)
        return tuple(sorted(points))
    breaks = sorted({lo, *(c for c in constants if lo < c < hi), *(() if math.isinf(hi) else (hi,))})
    points = set(breaks)
    points.update((a + b) / 2 for a, b in pairwise(breaks))
    if math.isinf(hi):
        points.add(breaks[-1] + 1)
    return tuple(sorted(points))


def compile_missing(
    rule_ids: Sequence[str], rules: Sequence[tuple[Condition, Sequence[Condition]]]
) -> tuple[Missing, str]:
    """Build `missing(facts, choices) -> [(field, (rule ids...)), ...]`, fields sorted by name.

    `choices` is what `compile_chooser`'s function returned for the same facts.
    """
    used = sorted(FACT_KINDS)
    readers: dict[str, list[int]] = {}
    for index, (condition, variants) in enumerate(rules):
        for name in {t.fact for node in (condition, *variants) for t in leaves(node)}:
            readers.setdefault(name, []).append(index)
    all_conditions = [node for condition, variants in rules for node in (condition, *variants)]

    lines = ["def missing(f, b):"]
    lines += [f"    f_{name} = f.{name}" for name in used]
    lines.append("    out = []")
    # No builtins in the generated code, so the one it calls (phase_in_progress' alternatives) is given.
    namespace: dict[str, Any] = {"numeric_points": numeric_points, "INF": math.inf, "tuple": tuple}
    for field in unknowable_fields():
        indexes = readers.get(field)
        if not indexes:
            continue
        kind = FACT_KINDS[field]
        local = f"f_{field}"
        unknown_value = "None" if kind.nullable else repr(UNKNOWN)
        guard, alternatives = _domain(field, kind, _constants(all_conditions, field), namespace)
        lines.append(
            f"    if {local} is {unknown_value}{guard}:"
            if kind.nullable
            else f"    if {local} == {unknown_value}{guard}:"
        )
        flags = [f"h{i}" for i in indexes]
        lines.append("        " + " = ".join(flags) + " = False")
        lines.append(f"        for {local} in {alternatives}:")
        for i, flag in zip(indexes, flags, strict=True):
            condition, variants = rules[i]
            choice = choice_expression(condition, variants)
            lines.append(f"            if not {flag} and ({choice}) != b[{i}]: {flag} = True")
        lines.append(f"        {local} = {unknown_value}")
        ordered = sorted(zip((rule_ids[i] for i in indexes), flags, strict=True))
        hits = " + ".join(f"(({rid!r},) if {flag} else ())" for rid, flag in ordered)
        lines.append(f"        hit = {hits}")
        lines.append(f"        if hit: out.append(({field!r}, hit))")
    lines.append("    return out")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<allpath-missing>", "exec"), {"__builtins__": {"tuple": tuple}, **namespace}, namespace)
    function: Missing = namespace["missing"]
    return function, source


def _domain(field: str, kind: Any, constants: tuple[float, ...], namespace: dict[str, Any]) -> tuple[str, str]:
    """The guard (when any alternative is allowed) and the expression of the alternatives.

    These mirror `facts.contradictions`: a value that would make the facts invalid is not one
    the fact can take. The brute-force property test checks the two agree.
    """
    guard = ""
    if field in RELAPSE_FIELDS:
        guard = " and f_relapse_count > 0"
    if kind.type == "enum":
        values = tuple(v for v in kind.values if v != UNKNOWN)
        if field == "phase_in_progress":
            return guard, f"tuple(v for v in {values!r} if v not in f_completed_phases)"
        return guard, repr(values)
    if kind.type == "boolean":
        if field == "relapse_during_therapy":
            return guard, "((True, False) if f_months_from_therapy_end_to_relapse is None else (False,))"
        return guard, "(True, False)"
    integer = kind.type == "integer"
    name = f"C_{field}"
    namespace[name] = constants
    lo, hi = "0", "INF"
    if field == "months_from_therapy_end_to_relapse":
        guard += " and f_relapse_during_therapy is not True"
    if field == "prior_regimen_count":
        # At diagnosis no regimen has been given: 0 is the only value the count can take.
        return guard, f"((0,) if f_disease_status == 'newly_diagnosed' else numeric_points({name}, 0, INF, True))"
    if field == "remission_duration_months":
        hi = "(INF if f_months_from_diagnosis_to_relapse is None else f_months_from_diagnosis_to_relapse)"
    if field == "months_from_diagnosis_to_relapse":
        lo = "(0 if f_remission_duration_months is None else f_remission_duration_months)"
    return guard, f"numeric_points({name}, {lo}, {hi}, {integer})"
