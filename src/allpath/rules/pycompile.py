"""Compile the KB's condition trees into one Python function (the engine's hot path).

Walking the trees for each patient costs a function call per node; compiling them once into
the body of a single function lets CPython evaluate every rule of a plan in a few
microseconds. The tree is still the only source of the logic: this module is one more
back end of `tree.fold`, and a property test checks it against the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from allpath.facts import FACT_KINDS
from allpath.knowledge.schema import Condition, FactTest
from allpath.rules.tree import fold

Chooser = Callable[[Any], tuple[int, ...]]


def _literal(value: Any) -> str:
    if isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, tuple | list):
        return "(" + "".join(f"{_literal(v)}, " for v in value) + ")"
    raise TypeError(f"cannot compile literal {value!r}")


def _leaf(test: FactTest) -> str:
    name = f"f_{test.fact}"
    nullable = FACT_KINDS[test.fact].nullable
    value = _literal(test.value) if test.value is not None else "None"
    op = test.op
    if op == "is_null":
        return f"({name} is None)"
    if op == "not_null":
        return f"({name} is not None)"
    if op == "contains":
        return f"({value} in {name})"
    if op == "not_contains":
        return f"({value} not in {name})"
    symbol = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "in": "in", "not_in": "not in"}[op]
    expression = f"{name} {symbol} {value}"
    if nullable and op not in ("eq", "in"):
        # None == x and None in (...) are already False; the rest must be guarded explicitly.
        return f"({name} is not None and {expression})"
    return f"({expression})"


def to_python(node: Condition) -> str:
    """The tree as a Python boolean expression over local variables `f_<fact>`."""
    return fold(
        node,
        leaf=_leaf,
        all_of=lambda parts: "(" + " and ".join(parts) + ")" if parts else "True",
        any_of=lambda parts: "(" + " or ".join(parts) + ")",
        not_of=lambda part: f"(not {part})",
    )


def choice_expression(condition: Condition, variants: Sequence[Condition]) -> str:
    """One rule's choice as a Python expression: -1 (not fired), 0 (fired), k (its variant k-1 holds first)."""
    choice = "0"
    for k in range(len(variants), 0, -1):
        choice = f"({k} if {to_python(variants[k - 1])} else {choice})"
    return f"({choice} if {to_python(condition)} else -1)"


def compile_chooser(rules: Sequence[tuple[Condition, Sequence[Condition]]]) -> tuple[Chooser, str]:
    """Build `choose(facts) -> tuple[int, ...]`, one entry per rule, in order.

    Each entry is -1 when the rule does not fire, 0 when it fires with its own fields, and
    k >= 1 when it fires and its variant k-1 is the first whose condition holds.
    Returns the function and its source, kept for debugging and for the docs.
    """
    used = sorted(FACT_KINDS)
    lines = ["def choose(f):"]
    lines += [f"    f_{name} = f.{name}" for name in used]
    outputs = []
    for index, (condition, variants) in enumerate(rules):
        lines.append(f"    c{index} = {choice_expression(condition, variants)}")
        outputs.append(f"c{index}")
    lines.append("    return (" + "".join(f"{o}, " for o in outputs) + ")")
    source = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<allpath-rules>", "exec"), {"__builtins__": {}}, namespace)
    chooser: Chooser = namespace["choose"]
    return chooser, source
