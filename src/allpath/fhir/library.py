"""A FHIR Library of FHIRPath expressions that derive each fact from the patient's own record.

The exported PlanDefinition's conditions read allpath's facts Parameters resource. A CPG engine
holding only the patient's resources has no such thing, so the PlanDefinition also carries this
Library, and each condition an alternative expression (`cqf-alternativeExpression`) over
`%fact` variables. The Library defines each variable: one output parameter per fact, its
FHIRPath in a `cqf-expression` extension, evaluated with the data Bundle (Patient plus the rest
of the record) as its root, in the listed order, each result bound to `%<fact>` before the next
is evaluated (later facts read earlier ones, as CQL definitions do). `%asOf` (a date, the day
the plan is for) is the one input.

The codes in the expressions are never written here: they are generated from the importer's code
tables (`codes.yaml` through `code_tables()`, the case-feature systems of `codes.py` and the
importer's unit table), so when the importer learns a code the Library follows. A code table
entry whose meaning the generator does not know is reported by `unread_meanings`, and a test
keeps that list empty.

What FHIRPath cannot express, the Library says (the parameter's documentation), and the
expression yields the fact's unknown value: `unknown` for an enumeration that has one, nothing
(empty) otherwise. Never a negative. The known gaps, each in the documentation of its parameter:
`age_years` is whole years (FHIRPath has no day arithmetic; exact for the KB's thresholds in
whole years compared with >= and <, not for the one-month age limit); the facts the importer
does not read from FHIR yet have no expression (always unknown); and a record the importer
refuses (ALL Conditions or disease-status readings that disagree) gives an unknown disease
status here. docs/cpg.md has the whole list.

Pure string generation, like `allpath.rules.fhirpath`; fhirpathpy is only used by the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from allpath.facts import FACT_KINDS, PHASE_ORDER
from allpath.fhir.codes import (
    CASE_FEATURE_SYSTEM,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    FACT_VALUE_SYSTEM,
    CodeTables,
    code_tables,
)
from allpath.fhir.importer import _MONTHS_PER_UNIT as MONTHS_PER_UNIT  # the importer's own unit table
from allpath.fhir.importer import CASE_FEATURES
from allpath.rules.fhirpath import literal

LIBRARY_ID = "facts-from-record"
CQF_EXPRESSION = "http://hl7.org/fhir/StructureDefinition/cqf-expression"
FHIRPATH = "text/fhirpath"
LIBRARY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/library-type"
_FHIR_TYPE = {"number": "decimal", "integer": "integer", "boolean": "boolean", "enum": "code", "list": "code"}
# The meanings of code-table entries the generator knows: turned into FHIRPath (diagnosis, remission,
# lineage, the p210 reading), or, like the importer, read as notes that set no fact (`note_only`,
# a procedure's `note`). Any other meaning is reported by `unread_meanings`, not dropped silently.
_READ_MEANINGS = {
    "conditions": {"diagnosis", "remission", "lineage"},
    "observations": {"fact", "reading", "note_only"},
    "procedures": {"note"},
}
# Meanings the importer reads that the Library does not derive yet (issue 12 item 1: mCODE disease
# status and genomic variants, read by their own rules; transplants as prior therapies). Named by
# `not_yet_derived` and in docs/fhir-mapping.md, so the gap is visible, not silent.
_NOT_YET_DERIVED = {"observations": {"read"}, "procedures": {"prior_therapy"}}
_MAX = "aggregate(iif($total.empty() or $this > $total, $this, $total))"


@dataclass(frozen=True)
class FactExpression:
    """One named expression; `fact` False for a working value later expressions read (not a fact)."""

    name: str
    expression: str
    documentation: str
    fact: bool = True


def _codes_test(codes: Iterable[tuple[str, str]]) -> str:
    """FHIRPath over a `coding` collection: true when any coding is one of these (system, code) pairs."""
    by_system: dict[str, list[str]] = {}
    for system, code in codes:
        by_system.setdefault(system, []).append(code)
    if not by_system:
        return "false"
    parts = [
        f"(system = {literal(s)} and code in ({' | '.join(literal(c) for c in sorted(cs))}))"
        for s, cs in sorted(by_system.items())
    ]
    return " or ".join(parts)


def _when(*keys: str) -> str:
    """The importer's `_when`: the first of these elements present (a Period by its start), else ''."""
    text = "''"
    for key in reversed(keys):
        element = f"{key}.start" if key.endswith("Period") else key
        text = f"iif({element}.exists(), {element}.toString(), {text})"
    return text


_OBSERVATION_WHEN = _when("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
_CONDITION_WHEN = _when("recordedDate", "onsetDateTime", "onsetPeriod")
_READ_STATUS = "status.exists($this in ('entered-in-error' | 'cancelled')).not()"
_FACT_VALUE = f"valueCodeableConcept.coding.where(system = {literal(FACT_VALUE_SYSTEM)}).code.first()"
_HAS_VALUE = "(valueCodeableConcept | valueBoolean | valueInteger | valueQuantity).exists()"
# The importer's `_same_patient`: no reference, or one naming the Bundle's Patient (by fullUrl,
# `Patient/id`, an absolute URL ending so, or a version of it).
_REFERENCE = "(subject | patient).reference"
# Nested `iif`s so that the costly regular expressions run only when the plain comparison fails.
_SAME_PATIENT = (
    f"iif(%subjectRefs.empty() or {_REFERENCE}.empty(), true, {_REFERENCE}.exists(iif($this in %subjectRefs, true,"
    " $this.replaceMatches('/_history/.*$', '').replaceMatches('/$', '')"
    ".replaceMatches('^(.*/)?([^/]+/[^/]+)$', '$2') in %subjectRefs)))"
)


def _months() -> str:
    text = "{}"
    for unit, factor in reversed(list(MONTHS_PER_UNIT.items())):
        value = "value" if unit == "mo" else f"(value * {literal(factor)}).round(6)"
        text = f"iif(code = {literal(unit)}, {value}, {text})"
    return f"valueQuantity.select({text})"


def _feature_value(fact: str) -> str:
    kind = FACT_KINDS[fact].type if fact in FACT_KINDS else "enum"
    return {"enum": _FACT_VALUE, "list": _FACT_VALUE, "boolean": "valueBoolean", "integer": "valueInteger"}.get(
        kind, _months()
    )


def _feature_filter(fact: str) -> str:
    """Over `%features`: the readings of one fact that carry a value (not merely an absent reason)."""
    return (
        f"code.coding.exists(system = {literal(CASE_FEATURE_SYSTEM)} and code = {literal(fact)})"
        f" and (dataAbsentReason.empty() or {_HAS_VALUE})"
    )


def _or_unknown(expression: str) -> str:
    return f"iif(({expression}).exists(), {expression}, 'unknown')"


def fact_expressions(tables: CodeTables | None = None) -> list[FactExpression]:
    """Every named expression in evaluation order: working values, then facts; facts not derivable last."""
    tables = tables or code_tables()
    conditions = tables.conditions.values()
    out: list[FactExpression] = []

    def add(name: str, expression: str, documentation: str, *, fact: bool = True) -> None:
        out.append(FactExpression(name, expression, documentation, fact))

    def coded(key: str, value: str) -> str:
        return _codes_test((c.system, c.code) for c in conditions if c.means.get(key) == value)

    def latest(name: str, readings: str, value: str) -> str:
        """Working values for one fact's readings, and the value of the newest (nothing when they disagree)."""
        add(f"readings_{name}", readings, f"The readings of {name}.", fact=False)
        add(
            f"newest_{name}",
            f"%readings_{name}.select({_OBSERVATION_WHEN}).{_MAX}",
            f"When the newest reading of {name} was made.",
            fact=False,
        )
        values = f"%readings_{name}.where({_OBSERVATION_WHEN} = %newest_{name}).select({value}).distinct()"
        return f"iif({values}.count() = 1, {values}, {{}})"

    def latest_feature(fact: str) -> str:
        return latest(fact, f"%features.where({_feature_filter(fact)})", _feature_value(fact))

    add(
        "subjectRefs",
        "%context.entry.where(resource.resourceType = 'Patient')"
        ".select(fullUrl | iif(resource.id.exists(), 'Patient/' + resource.id, {}))",
        "How the record's resources may name the patient.",
        fact=False,
    )
    add(
        "record",
        f"%context.entry.resource.where(resourceType != 'Patient').where({_SAME_PATIENT})",
        "The resources about the patient (those naming another patient are left out).",
        fact=False,
    )
    # Observations are read once here; each fact's readings are then picked from the few left.
    add(
        "observations",
        f"%record.where(resourceType = 'Observation').where({_READ_STATUS})",
        "The patient's Observations, less those cancelled or entered in error.",
        fact=False,
    )
    add(
        "features",
        f"%observations.where(code.coding.exists(system = {literal(CASE_FEATURE_SYSTEM)}))",
        "The Observations in allpath's case-feature code system.",
        fact=False,
    )
    all_codes = [(c.system, c.code) for c in conditions if c.means.get("diagnosis") == "all"]
    add(
        "allConditions",
        f"%record.where(resourceType = 'Condition').where(code.coding.exists({_codes_test(all_codes)})"
        f" and verificationStatus.coding.exists(system = {literal(CONDITION_VER_STATUS)}"
        " and code in ('refuted' | 'entered-in-error')).not())",
        "The Conditions coded as ALL, neither refuted nor entered in error.",
        fact=False,
    )

    add(
        "age_years",
        "%context.entry.resource.where(resourceType = 'Patient').birthDate.toString().select("
        "%asOf.toString().substring(0, 4).toInteger() - substring(0, 4).toInteger()"
        " - iif(%asOf.toString().substring(5, 5) < substring(5, 5), 1, 0))",
        "Whole years at %asOf, from Patient.birthDate. FHIRPath has no day arithmetic, so the "
        "fraction of the year allpath's importer adds is not expressed: exact for thresholds in whole "
        "years compared with >= or <, not for the one-month age limit.",
    )

    lineages = sorted({str(c.means["lineage"]) for c in conditions if "lineage" in c.means})
    lineage_readings = " | ".join(
        [f"%allConditions.where(code.coding.exists({coded('lineage', v)})).select({literal(v)})" for v in lineages]
        + [f"%features.where({_feature_filter('lineage')}).select({_FACT_VALUE})"]
    )
    add(
        "lineage",
        f"iif(({lineage_readings}).count() = 1, {lineage_readings}, 'unknown')",
        "From the lineage an ALL Condition's code implies and allpath lineage Observations; readings "
        "that disagree leave it unknown.",
    )

    p210 = [
        (c.system, c.code)
        for c in tables.observations.values()
        if c.means.get("fact") == "ph_status" and c.means.get("reading") == "p210_ratio"
    ]
    ph_readings = (
        f"%features.where({_feature_filter('ph_status')})"
        f" | %observations.where(code.coding.exists({_codes_test(p210)}) and valueQuantity.value > 0)"
    )
    ph_value = (
        f"iif(code.coding.exists(system = {literal(CASE_FEATURE_SYSTEM)} and code = 'ph_status'),"
        f" {_FACT_VALUE}, 'positive')"
    )
    add(
        "ph_status",
        _or_unknown(latest("ph_status", ph_readings, ph_value)),
        "The latest allpath ph_status Observation or BCR-ABL1 p210 ratio above 0 (positive); a p210 "
        "ratio of 0 says nothing (p190 is not excluded).",
    )
    add("mrd_status", _or_unknown(latest_feature("mrd_status")), "The latest allpath mrd_status Observation.")
    for fact in ("cns_involvement", "remission_duration_months", "expected_survival_months"):
        add(fact, latest_feature(fact), f"The latest allpath {fact} Observation (durations in months).")
    add(
        "completed_phases",
        f"%features.where({_feature_filter('completed_phase')}).select({_FACT_VALUE}).distinct()",
        f"Every allpath completed_phase Observation (order: {', '.join(PHASE_ORDER)}).",
    )

    clinical = f"clinicalStatus.coding.where(system = {literal(CONDITION_CLINICAL)}).code.first()"
    remissions = sorted({str(c.means["remission"]) for c in conditions if "remission" in c.means})
    status_of_code = "'not_in_remission'"
    for value in reversed(remissions):
        status_of_code = f"iif(code.coding.exists({coded('remission', value)}), {literal(value)}, {status_of_code})"
    condition_status = (
        f"iif({clinical} in ('relapse' | 'recurrence'), 'relapsed', "
        f"iif({clinical} in ('remission' | 'inactive' | 'resolved'), 'in_remission', {status_of_code}))"
    )
    add(
        "newestConditions",
        f"%allConditions.where({_CONDITION_WHEN} = %allConditions.select({_CONDITION_WHEN}).{_MAX})",
        "The most recently recorded ALL Conditions.",
        fact=False,
    )
    statuses = f"%newestConditions.select({condition_status}).distinct()"
    from_condition = f"iif({statuses}.count() = 1, {statuses}, {{}})"
    recorded = latest_feature("disease_status")
    relapses = latest_feature("relapse_count")
    regimens = latest_feature("prior_regimen_count")
    remissions_recorded = latest_feature("remission_count")
    not_in_remission = (
        f"iif({relapses} >= 1, 'relapsed', "
        f"iif(%completed_phases.exists($this = 'induction') or {regimens} >= 1, 'refractory', 'newly_diagnosed'))"
    )
    add(
        "disease_status",
        f"iif(({recorded}).exists(), {recorded}, "
        f"iif({from_condition} = 'not_in_remission', {not_in_remission}, {from_condition}))",
        "The latest allpath disease_status Observation, else the newest ALL Condition (its clinicalStatus, "
        "then its code): not in remission reads as relapsed after a relapse, refractory after induction, "
        "else newly diagnosed. Records the importer refuses (disagreeing Conditions) give nothing.",
    )

    def count(recorded_count: str, implied: str) -> str:
        return f"iif(({recorded_count}).exists(), {recorded_count}, iif(%disease_status.exists(), {implied}, {{}}))"

    add(
        "relapse_count",
        count(relapses, "iif(%disease_status = 'relapsed', 1, 0)"),
        "The latest allpath relapse_count Observation, else the least the disease status implies.",
    )
    add(
        "remission_count",
        count(remissions_recorded, "iif(%disease_status = 'in_remission', %relapse_count + 1, %relapse_count)"),
        "The latest allpath remission_count Observation, else the least the disease status implies.",
    )
    add(
        "prior_regimen_count",
        count(regimens, "iif(%disease_status != 'newly_diagnosed', 1, {})"),
        "The latest allpath prior_regimen_count Observation, else 1 past diagnosis (a lower bound).",
    )

    derived = {e.name for e in out}
    for fact, kind in FACT_KINDS.items():
        if fact in derived:
            continue
        add(
            fact,
            "'unknown'" if "unknown" in kind.values else "{}",
            "Not derived from the record in FHIRPath: the Library has no expression for it yet, so it is "
            "reported unknown (never as a negative finding).",
        )
    return out


def not_derived(tables: CodeTables | None = None) -> list[str]:
    """The facts the Library reports as unknown whatever the record says."""
    return [e.name for e in fact_expressions(tables) if e.fact and e.expression in ("'unknown'", "{}")]


def not_yet_derived(tables: CodeTables | None = None) -> list[str]:
    """Code-table meanings the importer reads and the Library knowingly does not derive yet."""
    tables = tables or code_tables()
    return [
        f"{name} {system}|{code}: {key}"
        for name, later in _NOT_YET_DERIVED.items()
        for (system, code), entry in getattr(tables, name).items()
        for key in entry.means
        if key in later
    ]


def unread_meanings(tables: CodeTables | None = None) -> list[str]:
    """Code-table meanings the generator does not turn into FHIRPath (a test keeps this empty)."""
    tables = tables or code_tables()
    unread: list[str] = []
    for name, known in _READ_MEANINGS.items():
        table: Mapping[tuple[str, str], Any] = getattr(tables, name)
        later = _NOT_YET_DERIVED.get(name, set())
        for (system, code), entry in table.items():
            unread.extend(f"{name} {system}|{code}: {key}" for key in entry.means if key not in known | later)
    features_read = {"lineage", "ph_status", "mrd_status", "cns_involvement", "completed_phase", "disease_status"}
    features_read |= {"remission_duration_months", "expected_survival_months"}
    features_read |= {"relapse_count", "remission_count", "prior_regimen_count"}
    unread.extend(f"case feature {f}" for f in CASE_FEATURES if f not in features_read)
    return unread


def facts_library(version: str, url: str, tables: CodeTables | None = None) -> dict[str, Any]:
    """The Library resource (plain JSON): one `out` parameter per fact, its FHIRPath in `cqf-expression`."""
    parameters: list[dict[str, Any]] = [
        {
            "name": "asOf",
            "use": "in",
            "min": 1,
            "max": "1",
            "type": "date",
            "documentation": "The day the facts are for (today for a plan now); bound as %asOf.",
        }
    ]
    for e in fact_expressions(tables):
        kind = FACT_KINDS.get(e.name)
        parameters.append(
            {
                "extension": [
                    {
                        "url": CQF_EXPRESSION,
                        "valueExpression": {"language": FHIRPATH, "expression": e.expression},
                    }
                ],
                "name": e.name,
                "use": "out",
                "min": 0,
                "max": "1" if kind is not None and kind.type != "list" else "*",
                "type": _FHIR_TYPE[kind.type] if kind is not None else "Any",
                "documentation": e.documentation if e.fact else f"Working value, not a fact: {e.documentation}",
            }
        )
    return {
        "resourceType": "Library",
        "id": LIBRARY_ID,
        "url": url,
        "version": version,
        "name": "AllpathFactsFromRecord",
        "title": "allpath: the facts of the treatment options, derived from the patient's record in FHIRPath",
        "status": "active",
        "type": {"coding": [{"system": LIBRARY_TYPE_SYSTEM, "code": "logic-library"}]},
        "description": (
            "Evaluate each output parameter's cqf-expression (FHIRPath) in order, with the data Bundle "
            "(Patient plus the record) as its root and %asOf bound, binding each result to %<name>; the "
            "PlanDefinition's alternative conditions then read those variables. Codes come from allpath's "
            "importer tables. Facts the Library cannot derive are reported unknown, never negative."
        ),
        "parameter": parameters,
    }
