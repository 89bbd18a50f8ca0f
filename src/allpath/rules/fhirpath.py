"""The FHIRPath back end: a condition tree as a `text/fhirpath` expression over a Parameters resource.

How facts travel (docs/fhir-mapping.md, "Facts as Parameters"):

* one `Parameters.parameter` per fact, `name` = the PatientFacts field name;
* `value[x]` typed by the fact's kind (`FACT_KINDS`): `valueDecimal` for numbers (ages and
  months), `valueInteger` for counts, `valueBoolean` for the yes/no facts (cns_involvement,
  relapse_during_therapy, fit_for_intensive_therapy, pregnant, down_syndrome), `valueCode` for
  enumerations (including the value `unknown`, which is a value, not a missing fact);
* a missing (null) fact has no parameter at all;
* a list fact (completed_phases, genetic_subtypes, prior_therapies) is repeated, one
  `valueCode` parameter per item, in the facts' canonical order (none for an empty list).

The expression is evaluated with that Parameters resource as its focus (the root). Each leaf is
written `parameter.where(name = 'F').exists(<test on value>)`, which is always true or false,
never empty: a comparison with a missing fact is false, so `not` over it is true, exactly as
in `tree.evaluate`. Pure string generation; no FHIR library is imported here.
"""

from __future__ import annotations

from typing import Any

from allpath.facts import FACT_KINDS, PatientFacts
from allpath.knowledge.schema import Condition, FactTest
from allpath.rules.tree import fold

_VALUE_TYPE = {"number": "valueDecimal", "integer": "valueInteger", "boolean": "valueBoolean", "enum": "valueCode"}
_SYMBOL = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def literal(value: Any) -> str:
    """A FHIRPath literal for a fact value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no FHIRPath literal for {value!r}")


def _param(fact: str) -> str:
    return f"parameter.where(name = {literal(fact)})"


def leaf(test: FactTest) -> str:
    """One fact test; true or false, never empty."""
    fact, op, value = test.fact, test.op, test.value
    if op == "is_null":
        return f"{_param(fact)}.empty()"
    if op == "not_null":
        return f"{_param(fact)}.exists()"
    if op == "contains":
        return f"{_param(fact)}.exists(value = {literal(value)})"
    if op == "not_contains":
        return f"{_param(fact)}.exists(value = {literal(value)}).not()"
    if op in ("in", "not_in"):
        options = " | ".join(literal(v) for v in value)
        test_text = f"value in ({options})" if op == "in" else f"(value in ({options})).not()"
        return f"{_param(fact)}.exists({test_text})"
    return f"{_param(fact)}.exists(value {_SYMBOL[op]} {literal(value)})"


def to_fhirpath(node: Condition) -> str:
    """The tree as one FHIRPath boolean expression over the facts Parameters resource."""
    return fold(
        node,
        leaf=leaf,
        all_of=lambda parts: " and ".join(f"({p})" for p in parts) if parts else "true",
        any_of=lambda parts: " or ".join(f"({p})" for p in parts),
        not_of=lambda part: f"({part}).not()",
    )


def variable_leaf(test: FactTest) -> str:
    """One fact test over the variable `%<fact>` (a collection: empty when unknown); true or false, never empty."""
    fact, op, value = test.fact, test.op, test.value
    var = f"%{fact}"
    if op == "is_null":
        return f"{var}.empty()"
    if op == "not_null":
        return f"{var}.exists()"
    if op == "contains":
        return f"{var}.exists($this = {literal(value)})"
    if op == "not_contains":
        return f"{var}.exists($this = {literal(value)}).not()"
    if op in ("in", "not_in"):
        options = " | ".join(literal(v) for v in value)
        test_text = f"$this in ({options})" if op == "in" else f"($this in ({options})).not()"
        return f"{var}.exists({test_text})"
    return f"{var}.exists($this {_SYMBOL[op]} {literal(value)})"


def to_fhirpath_variables(node: Condition) -> str:
    """The tree as one FHIRPath boolean over `%<fact>` variables (bound by a Library, not a Parameters resource)."""
    return fold(
        node,
        leaf=variable_leaf,
        all_of=lambda parts: " and ".join(f"({p})" for p in parts) if parts else "true",
        any_of=lambda parts: " or ".join(f"({p})" for p in parts),
        not_of=lambda part: f"({part}).not()",
    )


def facts_to_parameters(facts: PatientFacts) -> dict[str, Any]:
    """The facts as a FHIR Parameters resource (plain JSON), in the form the expressions read."""
    parameters: list[dict[str, Any]] = []
    for name, kind in FACT_KINDS.items():
        value = getattr(facts, name)
        if value is None:
            continue
        if kind.type == "list":
            parameters.extend({"name": name, "valueCode": item} for item in value)
            continue
        if kind.type == "number":
            value = float(value)
        parameters.append({"name": name, _VALUE_TYPE[kind.type]: value})
    return {"resourceType": "Parameters", "parameter": parameters}
