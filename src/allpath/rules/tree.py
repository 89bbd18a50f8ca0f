"""Walking a resolved condition tree: evaluate it, describe it, list the facts it reads.

Every back end (this interpreter, the Python compiler, SQL, FHIRPath) walks the same tree
with the same rule for missing facts: a comparison with a null fact is false. So `not`
over a comparison with a null fact is true, in every back end alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from allpath.knowledge.schema import AllOf, AnyOf, Condition, FactTest, NotOf, RuleRef

T = TypeVar("T")


def fold(
    node: Condition,
    *,
    leaf: Callable[[FactTest], T],
    all_of: Callable[[list[T]], T],
    any_of: Callable[[list[T]], T],
    not_of: Callable[[T], T],
) -> T:
    """The one walk every back end shares: each supplies what a leaf and each connective become."""
    if isinstance(node, AllOf):
        return all_of([fold(n, leaf=leaf, all_of=all_of, any_of=any_of, not_of=not_of) for n in node.all])
    if isinstance(node, AnyOf):
        return any_of([fold(n, leaf=leaf, all_of=all_of, any_of=any_of, not_of=not_of) for n in node.any])
    if isinstance(node, NotOf):
        return not_of(fold(node.not_, leaf=leaf, all_of=all_of, any_of=any_of, not_of=not_of))
    if isinstance(node, RuleRef):
        raise ValueError(f"unresolved reference {node.ref!r}: walk the KB's resolved conditions")
    return leaf(node)


def apply_op(op: str, actual: Any, expected: Any) -> bool:
    """The meaning of each operator on one fact value (None is a missing fact)."""
    if op == "is_null":
        return actual is None
    if op == "not_null":
        return actual is not None
    if op == "contains":
        return expected in actual
    if op == "not_contains":
        return expected not in actual
    if actual is None:
        return False
    match op:
        case "eq":
            return bool(actual == expected)
        case "ne":
            return bool(actual != expected)
        case "in":
            return actual in expected
        case "not_in":
            return actual not in expected
        case "lt":
            return bool(actual < expected)
        case "le":
            return bool(actual <= expected)
        case "gt":
            return bool(actual > expected)
        case "ge":
            return bool(actual >= expected)
    raise ValueError(f"unknown operator {op!r}")


def evaluate(node: Condition, facts: Any) -> bool:
    """Interpret the tree against an object with PatientFacts attributes (the reference back end)."""
    return fold(
        node,
        leaf=lambda t: apply_op(t.op, getattr(facts, t.fact), t.value),
        all_of=all,
        any_of=any,
        not_of=lambda v: not v,
    )


_OP_WORDS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "is_null": "is not known",
    "not_null": "is known",
    "contains": "includes",
    "not_contains": "does not include",
}


def describe(node: Condition) -> str:
    """A compact, readable form of the tree, for the KB browser and the PlanDefinition text."""

    def leaf(t: FactTest) -> str:
        value = t.value
        if isinstance(value, tuple | list):
            value = ", ".join(str(v) for v in value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool):
            value = str(value).lower()
        tail = "" if t.op in ("is_null", "not_null") else f" {value}"
        return f"{t.fact} {_OP_WORDS[t.op]}{tail}"

    def join(word: str) -> Callable[[list[str]], str]:
        def inner(parts: list[str]) -> str:
            if not parts:
                return "always"
            if len(parts) == 1:
                return parts[0]
            return "(" + f" {word} ".join(parts) + ")"

        return inner

    return fold(node, leaf=leaf, all_of=join("and"), any_of=join("or"), not_of=lambda s: f"not {s}")


def leaves(node: Condition) -> Iterator[FactTest]:
    if isinstance(node, AllOf):
        for n in node.all:
            yield from leaves(n)
    elif isinstance(node, AnyOf):
        for n in node.any:
            yield from leaves(n)
    elif isinstance(node, NotOf):
        yield from leaves(node.not_)
    elif isinstance(node, FactTest):
        yield node


def facts_used(node: Condition) -> list[str]:
    return sorted({t.fact for t in leaves(node)})
