"""FHIR R4 in: a Bundle (or a CDS Hooks prefetch) becomes `PatientFacts`.

Every resource is validated with the `fhir.resources` R4B models (R4B keeps R4's clinical
resources unchanged; the package's default models are R5). Only confirmed codes
(`codes.yaml`, the KB's agents) and allpath's own case-feature code system carry meaning;
docs/fhir-mapping.md is the table. Data that is missing stays unknown (or null) and raises an
alert; where a count cannot be missing (the facts contract makes it a number), the smallest
value the other data imply is used and an alert says it is a lower bound. Nothing is guessed.

Problems name the resource and the element path, for example
`Bundle.entry[3].resource(Observation/abc).valueCodeableConcept`. Notes never carry PHI
(no names, no birth dates): only resource types, ids and codes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from allpath.dates import DAYS_PER_MONTH, age_in_years, months_between
from allpath.engine import default_engine
from allpath.errors import NotAnAllPatientError, field_path
from allpath.facts import (
    GENETIC_SUBTYPES,
    PHASE_ORDER,
    PRIOR_THERAPIES,
    FactsError,
    PatientFacts,
    Problem,
    ProblemsError,
)
from allpath.fhir.alerts import AlertDefinition, ImporterConfigError, alert_definitions, check_alerts
from allpath.fhir.codes import (
    CASE_FEATURE_SYSTEM,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    FACT_VALUE_SYSTEM,
    LOINC,
    RXNORM,
    UCUM,
    CodeTables,
    agent_by_code,
    code_tables,
)
from allpath.knowledge import KnowledgeBase
from allpath.plan import Alert

__all__ = [
    "FhirInputError",
    "ImportResult",
    "Importer",
    "ImporterConfigError",
    "NotAnAllPatientInputError",
    "default_importer",
    "facts_from_bundle",
    "facts_from_resources",
    "validate_resource",
]

MEDICATION_RECORDS = ("MedicationRequest", "MedicationAdministration", "MedicationStatement")
# The patient's own resources the mapping reads (a Bulk Data import gathers these per patient).
# Medication resources are read too, but only to resolve a `medicationReference`: they belong to
# no patient.
INTERPRETED = ("Patient", "Condition", "Observation", *MEDICATION_RECORDS, "Procedure")
_IGNORED_STATUSES = {"entered-in-error", "cancelled"}
# A medication record that says the drug was (or is being) given. An order (MedicationRequest)
# says it was asked for, not that it was given; drafts and records of a drug not taken neither.
_GIVEN_STATUSES = {
    "MedicationAdministration": {"completed", "in-progress"},
    "MedicationStatement": {"active", "completed"},
    "MedicationRequest": set(),
}
_UNCONFIRMED = ("provisional", "differential", "unconfirmed")
# Steroids are given for much besides leukemia: alone they do not show that leukemia treatment began.
_NOT_ALONE_TREATMENT = frozenset({"dexamethasone", "prednisone"})
# An ALL diagnosis named in free text only (asked to be coded, never read as a diagnosis). The
# abbreviation must be in capitals: "all" is an English word.
_ALL_TEXT = re.compile(r"(?i:acute\s+lympho(?:blastic|cytic|id)\s+leuk)|\b[BT]?-?ALL\b")
_P210_LOINC = (LOINC, "69380-4")
_ROOT = ("__root__", "root")  # a root model's own step in a location: not an element of the resource
# Months per UCUM unit accepted on duration facts.
_MONTHS_PER_UNIT = {"mo": 1.0, "a": 12.0, "wk": 7 / DAYS_PER_MONTH, "d": 1 / DAYS_PER_MONTH}

_ENUM_FACTS = {
    "lineage": ("B", "T"),
    "ph_status": ("positive", "negative"),
    "mrd_status": ("positive", "negative"),
    "disease_status": ("newly_diagnosed", "in_remission", "refractory", "relapsed"),
    "completed_phase": PHASE_ORDER,
}
_INTEGER_FACTS = ("remission_count", "relapse_count", "prior_regimen_count")
_DURATION_FACTS = ("remission_duration_months", "expected_survival_months")
_BOOLEAN_FACTS = ("cns_involvement",)
CASE_FEATURES = (*_ENUM_FACTS, *_INTEGER_FACTS, *_DURATION_FACTS, *_BOOLEAN_FACTS)


def _dashed(fact: str) -> str:
    return fact.replace("_", "-")


# Every alert the import can raise (defined in alerts.yaml) and the message fields it fills.
_RAISED: tuple[tuple[str, tuple[str, ...]], ...] = (
    *(
        (f"fhir-missing-{name}", ())
        for name in ("lineage", "ph-status", "cns-involvement", "mrd-status", "remission-duration", "completed-phases")
    ),
    *((f"fhir-missing-{_dashed(f)}", ("fact", "value")) for f in _INTEGER_FACTS),
    ("fhir-conflicting-lineage", ("paths",)),
    ("fhir-unconfirmed-diagnosis", ("path", "status")),
    ("fhir-conflicting-condition-codes", ("detail", "paths")),
    ("fhir-uncoded-diagnosis", ("path",)),
    ("fhir-treatment-without-response", ("start", "agents")),
    *(
        (f"fhir-conflicting-{_dashed(f)}", ("fact", "paths"))
        for f in ("ph_status", "mrd_status", "cns_involvement", *_DURATION_FACTS, *_INTEGER_FACTS, "disease_status")
    ),
)


class FhirInputError(ProblemsError):
    """The input is not valid FHIR R4, or cannot be read as one ALL patient; `.problems` name each path."""


class NotAnAllPatientInputError(FhirInputError, NotAnAllPatientError):
    """The record is readable but holds no ALL diagnosis (and no recorded disease status)."""

    title = "not an ALL patient"


@dataclass(frozen=True)
class ImportResult:
    facts: PatientFacts
    alerts: list[Alert]
    notes: list[str]


class Importer:
    """FHIR R4 in, for one knowledge base: its drug codes say which medications are read.

    Build one per knowledge base and hand it to every path that reads FHIR (the CLI, a Bulk Data
    import, the CDS service), so the record is read with the same knowledge the plan is made
    from. Construction checks that every source section the import alerts cite is in that
    knowledge base, so a pack set without them fails at start-up, not on a patient (the alerts and
    their citations are data: `alerts.yaml`). Only plain tables are kept, so an Importer is cheap
    to send to worker processes.
    """

    def __init__(self, kb: KnowledgeBase, *, alerts: Mapping[str, AlertDefinition] | None = None):
        self.alerts: Mapping[str, AlertDefinition] = alert_definitions() if alerts is None else dict(alerts)
        check_alerts(self.alerts, kb, _RAISED)
        self.drugs: Mapping[tuple[str, str], str] = agent_by_code(kb)
        self.tables = code_tables()

    def wants(self, resource: Mapping[str, Any]) -> bool:
        """Whether reading the resource can matter. Medication orders only reach the facts through
        the KB's drug codes; an uncoded one would cost a full FHIR validation for nothing."""
        if resource.get("resourceType") != "MedicationRequest":
            return True
        if "medicationReference" in resource:
            return True
        return bool(self.agents_of(resource.get("medicationCodeableConcept")))

    def agent_for(self, system: str, code: str) -> str | None:
        """The KB agent a drug coding names: an ingredient code the KB carries, or an RxNorm product
        code (clinical or branded drug) rolled up to its single ingredient with the shipped,
        source-confirmed map (`codes.yaml`, `rxnorm_products`). None for anything else."""
        system, code = self.tables.normalise(system, code)
        agent = self.drugs.get((system, code))
        if agent is None and system == RXNORM:
            agent = self.tables.rxnorm_products.get(code)
        return agent

    def agents_of(self, concept: Any) -> list[str]:
        """The KB agents a medication CodeableConcept names (sorted, each once)."""
        return sorted({a for s, c in _codings(concept) if (a := self.agent_for(s, c)) is not None})

    def resolve_medication(
        self, resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]] | None = None
    ) -> Mapping[str, Any] | None:
        """The medication CodeableConcept of a MedicationRequest, MedicationAdministration or
        MedicationStatement: its `medicationCodeableConcept`, or the `code` of the Medication its
        `medicationReference` points to, found among its contained resources (`#id`) or in
        `medications`, keyed by `Medication/<id>` or the entry's fullUrl (see `medication_index`).
        None when the reference cannot be resolved."""
        concept = resource.get("medicationCodeableConcept")
        if isinstance(concept, Mapping):
            return concept
        reference = resource.get("medicationReference")
        target = reference.get("reference") if isinstance(reference, Mapping) else None
        if not isinstance(target, str):
            return None
        medication: Any = None
        if target.startswith("#"):
            medication = next(
                (
                    c
                    for c in resource.get("contained") or []
                    if isinstance(c, Mapping) and c.get("resourceType") == "Medication" and c.get("id") == target[1:]
                ),
                None,
            )
        elif medications:
            medication = medications.get(target) or medications.get(_relative(target))
        code = medication.get("code") if isinstance(medication, Mapping) else None
        return code if isinstance(code, Mapping) else None

    @staticmethod
    def medication_index(resources: list[tuple[Mapping[str, Any], str | None]]) -> dict[str, Mapping[str, Any]]:
        """Medication resources by `Medication/<id>` and by fullUrl, for `resolve_medication`:
        pass (resource, fullUrl or None) pairs."""
        index: dict[str, Mapping[str, Any]] = {}
        for resource, full_url in resources:
            if resource.get("resourceType") != "Medication":
                continue
            if resource.get("id"):
                index[f"Medication/{resource['id']}"] = resource
            if full_url:
                index[full_url] = resource
        return index

    def from_bundle(self, bundle: Any, *, as_of: dt.date | None = None) -> ImportResult:
        """Read one patient's facts from a FHIR R4 Bundle (any type: collection, searchset,
        transaction, ...) or from a single resource."""
        if not isinstance(bundle, Mapping):
            raise FhirInputError([Problem("Bundle", "expected a JSON object")])
        kind = bundle.get("resourceType")
        if isinstance(kind, str) and kind and kind != "Bundle":
            return _import([("resource", dict(bundle), None)], as_of, self)
        if bundle.get("resourceType") != "Bundle":
            raise FhirInputError(
                [Problem("Bundle.resourceType", f"must be 'Bundle', got {bundle.get('resourceType')!r}")]
            )
        problems = _validate_bundle_shell(bundle)
        entries = bundle.get("entry") or []
        located: list[tuple[str, dict[str, Any], str | None]] = []
        if isinstance(entries, list):
            for i, entry in enumerate(entries):
                if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping):
                    located.append((f"Bundle.entry[{i}].resource", dict(entry["resource"]), entry.get("fullUrl")))
        if problems:
            raise FhirInputError(problems)
        return _import(located, as_of, self)

    def from_resources(
        self, resources: list[dict[str, Any]], *, as_of: dt.date | None = None, validated: bool = False
    ) -> ImportResult:
        """Read one patient's facts from loose resources (a CDS Hooks prefetch): Patient, Condition,
        Observation, MedicationRequest, MedicationAdministration, Procedure. A searchset Bundle in
        the list is unpacked, so prefetch answers can be passed as they come.

        `validated=True` skips the FHIR R4 validation of each resource, for a caller that has already
        passed every one of them through `validate_resource` (a Bulk Data import validates each line
        as it reads it; validating twice would double the cost of the import)."""
        located: list[tuple[str, dict[str, Any], str | None]] = []
        problems: list[Problem] = []
        for i, resource in enumerate(resources):
            where = f"resources[{i}]"
            if not isinstance(resource, Mapping):
                problems.append(Problem(where, "expected a FHIR resource (a JSON object)"))
            elif resource.get("resourceType") == "Bundle":
                problems.extend(
                    Problem(f"{where}.{p.field.removeprefix('Bundle.')}", p.problem)
                    for p in _validate_bundle_shell(resource)
                )
                for j, entry in enumerate(resource.get("entry") or []):
                    if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping):
                        located.append((f"{where}.entry[{j}].resource", dict(entry["resource"]), entry.get("fullUrl")))
            else:
                located.append((where, dict(resource), None))
        if problems:
            raise FhirInputError(problems)
        return _import(located, as_of, self, validate=not validated)


_default: Importer | None = None


def default_importer() -> Importer:
    """The Importer over the default knowledge base (the one `allpath.engine.default_engine` uses)."""
    global _default
    if _default is None:
        _default = Importer(default_engine().kb)
    return _default


def facts_from_bundle(bundle: Any, *, as_of: dt.date | None = None) -> ImportResult:
    """`Importer.from_bundle` over the default knowledge base; adapters pass their own Importer."""
    return default_importer().from_bundle(bundle, as_of=as_of)


def facts_from_resources(
    resources: list[dict[str, Any]], *, as_of: dt.date | None = None, validated: bool = False
) -> ImportResult:
    """`Importer.from_resources` over the default knowledge base; adapters pass their own Importer."""
    return default_importer().from_resources(resources, as_of=as_of, validated=validated)


def validate_resource(resource: Mapping[str, Any]) -> list[Problem]:
    """FHIR R4 (R4B models) problems of one resource, named from the resource: `Observation/o1.valueQuantity`."""
    kind, rid = resource.get("resourceType"), resource.get("id")
    return _validate_resource("", resource, label=f"{kind}/{rid}" if rid else str(kind))


# --- validation ------------------------------------------------------------------------------


def _validate_bundle_shell(bundle: Mapping[str, Any]) -> list[Problem]:
    """Validate the Bundle itself with each entry's resource set aside (resources are checked one by one)."""
    from fhir.resources.R4B.bundle import Bundle

    shell = dict(bundle)
    entries = shell.get("entry")
    if isinstance(entries, list):
        shell["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, Mapping) else e for e in entries
        ]
    return _model_problems(Bundle, shell, "Bundle")


def _model_problems(model: Any, data: Mapping[str, Any], where: str) -> list[Problem]:
    from pydantic import ValidationError

    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [
            Problem(field_path((p for p in e["loc"] if p not in _ROOT), where), _error_text(e))
            for e in exc.errors(include_url=False)
        ]
    except (TypeError, ValueError) as exc:  # fhir.resources raises plain errors for some shapes
        return [Problem(where, str(exc).splitlines()[0])]
    except KeyError:
        # fhir.resources looks a contained resource's type up in a table: an unknown one is a KeyError.
        return [Problem(where, "holds a nested resource (in contained) whose resourceType is not a FHIR R4 resource")]
    return []


def _error_text(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not an element of this resource in FHIR R4"
    if kind in ("json_invalid", "model_type", "dict_type", "model_attributes_type"):
        return "must be a JSON object"
    if kind in ("list_type", "tuple_type"):
        return "must be a JSON array"
    if kind == "string_type":
        return "must be a string"
    return str(err.get("msg", "is not valid")).splitlines()[0].rstrip(".")


def _label(where: str, resource: Mapping[str, Any]) -> str:
    rid = resource.get("id")
    kind = resource.get("resourceType", "?")
    return f"{where}({kind}/{rid})" if rid else f"{where}({kind})"


def _validate_resource(where: str, resource: Mapping[str, Any], *, label: str | None = None) -> list[Problem]:
    from fhir.resources.R4B import get_fhir_model_class

    kind = resource.get("resourceType")
    kind_field = f"{where}.resourceType" if where else "resourceType"
    if not isinstance(kind, str):
        return [Problem(kind_field, "is required")]
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError, AttributeError, ImportError):
        return [Problem(kind_field, f"{kind!r} is not a FHIR R4 resource type")]
    return _model_problems(model, resource, label or _label(where, resource))


# --- reading ---------------------------------------------------------------------------------


@dataclass
class _Reading:
    """One value for one fact, with where it came from and when it was true."""

    value: Any
    path: str
    when: str


@dataclass
class _State:
    definitions: Mapping[str, AlertDefinition]
    readings: dict[str, list[_Reading]] = field(default_factory=dict)
    all_conditions: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)  # when, path, means, cs
    lineage_codes: list[_Reading] = field(default_factory=list)
    # Dated disease states ("remission" or "active"), from mCODE disease status and explicit
    # remission/relapse diagnoses: the history that remissions and relapses are counted from.
    status_events: list[_Reading] = field(default_factory=list)
    mcode_status: list[_Reading] = field(default_factory=list)
    diagnosed_on: list[str] = field(default_factory=list)
    treatments: list[_Reading] = field(default_factory=list)  # value: KB agent id
    prior_therapies: dict[str, str] = field(default_factory=dict)  # value -> path
    genetics: list[_Reading] = field(default_factory=list)  # value: genetic subtype
    uncoded: list[tuple[str, str]] = field(default_factory=list)  # (path, reference)
    all_condition_refs: set[str] = field(default_factory=set)  # `Condition/<id>` of the ALL diagnoses
    focus: dict[str, list[str]] = field(default_factory=dict)  # disease-status path -> its `focus` references
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    no_all_diagnosis: bool = False

    def read(self, fact: str, value: Any, path: str, when: str) -> None:
        self.readings.setdefault(fact, []).append(_Reading(value, path, when))

    def alert(self, alert_id: str, **fields: Any) -> None:
        self.alerts.append(self.definitions[alert_id].alert(**fields))


def _codings(concept: Any) -> list[tuple[str, str]]:
    if not isinstance(concept, Mapping):
        return []
    return [
        (c.get("system", ""), str(c.get("code", ""))) for c in concept.get("coding") or [] if isinstance(c, Mapping)
    ]


def _when(resource: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = resource.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and isinstance(value.get("start"), str):
            return str(value["start"])
    return ""


def _day(when: str) -> dt.date | None:
    """The calendar day of a FHIR date or dateTime; None for a partial date (a year or a month)."""
    try:
        return dt.date.fromisoformat(when[:10])
    except ValueError:
        return None


def _ref(resource: Mapping[str, Any]) -> str:
    """A resource as alerts name it: `Condition/c1`, the same whichever way the record came in (a
    Bundle entry, a CDS prefetch, a Bulk Data line), so one record gives one plan on every path."""
    rid = resource.get("id")
    return f"{resource.get('resourceType')}/{rid}" if rid else f"a {resource.get('resourceType')} without an id"


def _ref_of_path(path: str) -> str:
    # `Bundle.entry[3].resource(Condition/c1)` -> `Condition/c1` (the label `_label` writes).
    match = re.search(r"\(([^()]*)\)$", path)
    return match.group(1) if match else path


def _relative(reference: str) -> str:
    # `https://ehr/fhir/Medication/7` and `Medication/7/_history/2` name Medication/7.
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:])


def _import(
    located: list[tuple[str, dict[str, Any], str | None]],
    as_of: dt.date | None,
    importer: Importer,
    *,
    validate: bool = True,
) -> ImportResult:
    problems: list[Problem] = []
    for where, resource, _ in located if validate else ():
        problems.extend(_validate_resource(where, resource))
    if problems:
        raise FhirInputError(problems)

    as_of = as_of or dt.date.today()
    state = _State(importer.alerts)
    patients = [(w, r, u) for w, r, u in located if r.get("resourceType") == "Patient"]
    if not patients:
        raise FhirInputError([Problem("Patient", "no Patient resource: age_years comes from Patient.birthDate")])
    distinct = {r.get("id") or w for w, r, _ in patients}
    if len(distinct) > 1:
        raise FhirInputError(
            [Problem(_label(patients[1][0], patients[1][1]), "a second patient: one patient per call")]
        )
    p_where, patient, p_url = patients[0]
    age = _age(_label(p_where, patient), patient, as_of)
    refs = {f"Patient/{patient['id']}"} if patient.get("id") else set()
    if p_url:
        refs.add(p_url)

    tables = importer.tables
    medications = Importer.medication_index([(r, u) for _, r, u in located])
    other_patient = 0
    for where, resource, _ in located:
        kind = resource["resourceType"]
        if kind in ("Patient", "Medication"):
            continue
        if kind not in INTERPRETED:
            state.ignored[kind] += 1
            continue
        if not _same_patient(resource, refs):
            other_patient += 1
            continue
        path = _label(where, resource)
        if kind == "Condition":
            _read_condition(state, path, resource, tables)
        elif kind == "Observation":
            _read_observation(state, path, resource, tables)
        elif kind == "Procedure":
            _read_procedure(state, path, resource, tables, as_of)
        else:
            _read_medication(state, path, resource, importer, medications, as_of)
    if other_patient:
        state.notes.append(f"{other_patient} resource(s) about another patient ignored")
    if state.ignored:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(state.ignored.items()))
        state.notes.append(f"resources without meaning for the facts ignored: {kinds}")
    if state.problems:
        raise FhirInputError(state.problems)
    data, provenance = _assemble(state, age, as_of)
    if state.no_all_diagnosis:
        raise NotAnAllPatientInputError(state.problems)
    if state.problems:
        raise FhirInputError(state.problems)
    try:
        facts = PatientFacts.parse(data)
    except FactsError as exc:
        raise FhirInputError(
            [Problem(provenance.get(p.field, "Bundle"), f"{p.field}: {p.problem}") for p in exc.problems]
        ) from None
    state.notes.insert(0, f"age_years from Patient.birthDate at {as_of.isoformat()}")
    return ImportResult(facts=facts, alerts=state.alerts, notes=state.notes)


def _same_patient(resource: Mapping[str, Any], refs: set[str]) -> bool:
    subject = resource.get("subject") or resource.get("patient")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    if not reference or not refs:
        return True
    if reference in refs:
        return True
    # `https://ehr/fhir/Patient/123` and `Patient/123/_history/2` name patient 123 too.
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return len(parts) >= 2 and "/".join(parts[-2:]) in refs


def _age(path: str, patient: Mapping[str, Any], as_of: dt.date) -> float:
    birth = patient.get("birthDate")
    if not birth:
        raise FhirInputError([Problem(f"{path}.birthDate", "is required: age_years is worked out from it")])
    try:
        born = dt.date.fromisoformat(birth)
    except ValueError:
        raise FhirInputError(
            [Problem(f"{path}.birthDate", "needs a full date (YYYY-MM-DD) to work out age_years without guessing")]
        ) from None
    if born > as_of:
        raise FhirInputError([Problem(f"{path}.birthDate", f"is after the as-of date {as_of.isoformat()}")])
    return age_in_years(born, as_of)


def _condition_skipped(resource: Mapping[str, Any]) -> bool:
    for system, code in _codings(resource.get("verificationStatus")):
        if system == CONDITION_VER_STATUS and code in ("refuted", "entered-in-error"):
            return True
    return False


def _read_condition(state: _State, path: str, resource: Mapping[str, Any], tables: CodeTables) -> None:
    codings = [tables.normalise(s, c) for s, c in _codings(resource.get("code"))]
    known = [tables.conditions[c] for c in codings if c in tables.conditions]
    for c in codings:
        if c in tables.known_wrong:
            state.notes.append(f"{path}.code: {c[1]} is a known-wrong code ({tables.known_wrong[c]}); not read")
    skipped = _condition_skipped(resource)
    if not known:
        text = resource.get("code", {}).get("text") if isinstance(resource.get("code"), Mapping) else None
        if not skipped and isinstance(text, str) and _ALL_TEXT.search(text):
            state.uncoded.append((path, _ref(resource)))
        state.ignored["Condition (not ALL)"] += 1
        return
    if skipped:
        state.notes.append(f"{path}: refuted or entered in error; not read")
        return
    if resource.get("id"):
        state.all_condition_refs.add(f"Condition/{resource['id']}")
    verification = next((c for s, c in _codings(resource.get("verificationStatus")) if s == CONDITION_VER_STATUS), "")
    if verification in _UNCONFIRMED:
        state.alert("fhir-unconfirmed-diagnosis", path=_ref(resource), status=verification)
    means: dict[str, Any] = {}
    disagreements: list[str] = []
    morphology = [
        tables.morphology[c] for c in [*codings, *_extension_codings(resource, tables)] if c in tables.morphology
    ]
    for k in [*known, *morphology]:
        for key, value in k.means.items():
            if key in means and means[key] != value:
                disagreements.append(f"{key} {means[key]} vs {value}")
                means[key] = "unknown"
            elif key not in means:
                means[key] = value
    # Codings that disagree (a SNOMED CT "in remission" beside an out-of-date ICD-10-CM "not in
    # remission") leave that part unknown, with a warning: the rest of the record decides.
    if disagreements:
        state.alert("fhir-conflicting-condition-codes", detail="; ".join(disagreements), paths=f"{_ref(resource)}.code")
    when = _when(resource, "recordedDate", "onsetDateTime", "onsetPeriod")
    onset = _when(resource, "onsetDateTime", "onsetPeriod", "recordedDate")
    if onset:
        state.diagnosed_on.append(onset)
    if means.get("lineage") in ("B", "T"):
        state.lineage_codes.append(_Reading(means["lineage"], f"{path}.code", when))
    clinical = next((c for s, c in _codings(resource.get("clinicalStatus")) if s == CONDITION_CLINICAL), "")
    state.all_conditions.append((when, path, means, clinical))


def _extension_codings(resource: Mapping[str, Any], tables: CodeTables) -> list[tuple[str, str]]:
    """Codings in the resource's extensions (mCODE carries the histology there)."""
    found: list[tuple[str, str]] = []
    for extension in resource.get("extension") or []:
        if isinstance(extension, Mapping):
            found.extend(tables.normalise(s, c) for s, c in _codings(extension.get("valueCodeableConcept")))
    return found


def _read_observation(state: _State, path: str, resource: Mapping[str, Any], tables: CodeTables) -> None:
    if resource.get("status") in _IGNORED_STATUSES:
        state.notes.append(f"{path}: status {resource['status']}; not read")
        return
    codings = [tables.normalise(s, c) for s, c in _codings(resource.get("code"))]
    when = _when(resource, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
    features = [code for system, code in codings if system == CASE_FEATURE_SYSTEM]
    if features:
        feature = features[0]
        if feature not in CASE_FEATURES:
            state.problems.append(
                Problem(f"{path}.code", f"{feature!r} is not an allpath case feature ({', '.join(CASE_FEATURES)})")
            )
            return
        value = _feature_value(state, path, feature, resource)
        if value is not None:
            state.read(feature, value, path, when)
        return
    if _P210_LOINC in codings:
        _read_p210(state, path, resource, when)
        return
    if any(c in tables.disease_status_codes for c in codings):
        _read_disease_status(state, path, resource, when, tables)
        return
    if tables.genomics.variant_code in codings:
        _read_variant(state, path, resource, when, tables)
        return
    known = [tables.observations[c] for c in codings if c in tables.observations]
    if known:
        state.notes.append(f"{path}: {known[0].display} (LOINC {known[0].code}) recorded; not mapped to a fact")
        return
    state.ignored["Observation (other)"] += 1


def _read_disease_status(state: _State, path: str, resource: Mapping[str, Any], when: str, tables: CodeTables) -> None:
    answers = [
        tables.disease_status_answers[c]
        for c in (tables.normalise(s, c) for s, c in _codings(resource.get("valueCodeableConcept")))
        if c in tables.disease_status_answers
    ]
    states = {a.means["state"] for a in answers} - {"none"}
    if len(states) != 1:
        shown = answers[0].display if answers else "no answer allpath reads"
        state.notes.append(f"{path}: cancer disease status ({shown}) says nothing about remission; not read")
        return
    (value,) = states
    if not when:
        state.notes.append(f"{path}: cancer disease status without a date; not read")
        return
    reading = _Reading(value, f"{path}.valueCodeableConcept", when)
    focus = [f.get("reference") for f in resource.get("focus") or [] if isinstance(f, Mapping)]
    state.focus[reading.path] = [_relative(f) for f in focus if isinstance(f, str)]
    state.mcode_status.append(reading)
    state.status_events.append(reading)


def _read_variant(state: _State, path: str, resource: Mapping[str, Any], when: str, tables: CodeTables) -> None:
    g = tables.genomics
    if g.present not in _codings(resource.get("valueCodeableConcept")):
        state.notes.append(f"{path}: genetic variant not reported as present; not read")
        return
    genes: set[str] = set()
    named: set[tuple[str, str]] = set()  # every gene named, known to allpath or not (a fusion partner)
    changes: list[str] = []
    for component in resource.get("component") or []:
        if not isinstance(component, Mapping):
            continue
        code = [tables.normalise(s, c) for s, c in _codings(component.get("code"))]
        concept = component.get("valueCodeableConcept")
        if g.gene_studied in code:
            studied = [tables.normalise(s, c) for s, c in _codings(concept)]
            named.update(studied)
            genes.update(g.genes[c] for c in studied if c in g.genes)
        elif g.amino_acid_change in code:
            changes.extend(c for _, c in _codings(concept))
            for text in (concept.get("text") if isinstance(concept, Mapping) else None, component.get("valueString")):
                if isinstance(text, str):
                    changes.append(text)
    found = [subtype for pair, subtype in g.fusions if pair <= genes]
    found += [subtype for gene, subtype in g.rearranged.items() if gene in genes and len(named) > 1]
    for gene, forms, subtype in g.protein_changes:
        # `NP_005148.2:p.Thr315Ile` and `p.T315I` both name the change.
        if gene in genes and any(c.split(":")[-1].strip() in forms for c in changes):
            found.append(subtype)
    if not found:
        state.ignored["Observation (genetic variant allpath does not read)"] += 1
        return
    for subtype in found:
        state.genetics.append(_Reading(subtype, path, when))
        if subtype == "bcr-abl1":
            state.read("ph_status", "positive", path, when)


def _feature_value(state: _State, path: str, feature: str, resource: Mapping[str, Any]) -> Any:
    if "dataAbsentReason" in resource and not any(k.startswith("value") for k in resource):
        state.notes.append(f"{path}: {feature} recorded as absent")
        return None
    if feature in _ENUM_FACTS:
        allowed = _ENUM_FACTS[feature]
        values = [c for s, c in _codings(resource.get("valueCodeableConcept")) if s == FACT_VALUE_SYSTEM]
        if not values or values[0] not in allowed:
            state.problems.append(
                Problem(
                    f"{path}.valueCodeableConcept",
                    f"{feature} needs a coding from {FACT_VALUE_SYSTEM} with a code in {list(allowed)}",
                )
            )
            return None
        return values[0]
    if feature in _BOOLEAN_FACTS:
        value = resource.get("valueBoolean")
        if not isinstance(value, bool):
            state.problems.append(Problem(f"{path}.valueBoolean", f"{feature} needs valueBoolean"))
            return None
        return value
    if feature in _INTEGER_FACTS:
        value = resource.get("valueInteger")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            state.problems.append(Problem(f"{path}.valueInteger", f"{feature} needs a valueInteger >= 0"))
            return None
        return value
    quantity = resource.get("valueQuantity")
    if not isinstance(quantity, Mapping) or not isinstance(quantity.get("value"), int | float):
        state.problems.append(Problem(f"{path}.valueQuantity", f"{feature} needs a valueQuantity in months"))
        return None
    unit = quantity.get("code")
    if quantity.get("system") != UCUM or unit not in _MONTHS_PER_UNIT:
        state.problems.append(
            Problem(f"{path}.valueQuantity.code", f"must be a UCUM duration code ({', '.join(_MONTHS_PER_UNIT)})")
        )
        return None
    if quantity["value"] < 0:
        state.problems.append(Problem(f"{path}.valueQuantity.value", "must be >= 0"))
        return None
    if unit == "mo":
        return float(quantity["value"])
    # Rounding only absorbs floating-point noise from the conversion; rounding to whole
    # hundredths could carry 17.996 months over the 18-month threshold.
    return round(float(quantity["value"]) * _MONTHS_PER_UNIT[unit], 6)


def _read_p210(state: _State, path: str, resource: Mapping[str, Any], when: str) -> None:
    quantity = resource.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, Mapping) else None
    if not isinstance(value, int | float):
        state.notes.append(f"{path}: BCR-ABL1 p210 result without a numeric valueQuantity; not read")
        return
    if value > 0:
        state.read("ph_status", "positive", f"{path}.valueQuantity", when)
    else:
        # p210 is one of two common BCR-ABL1 transcripts; in ALL the other (p190) is frequent,
        # so a p210 ratio of 0 does not make the leukemia Philadelphia-negative.
        state.notes.append(f"{path}: BCR-ABL1 p210 not detected; this does not exclude p190, so Ph status is not set")


def _read_procedure(state: _State, path: str, resource: Mapping[str, Any], tables: CodeTables, as_of: dt.date) -> None:
    if resource.get("status") in _IGNORED_STATUSES:
        return
    known = [tables.procedures[c] for c in _codings(resource.get("code")) if c in tables.procedures]
    if not known:
        state.ignored["Procedure (other)"] += 1
        return
    therapy = known[0].means.get("prior_therapy")
    when = _when(resource, "performedDateTime", "performedPeriod")
    day = _day(when) if when else None
    if therapy and resource.get("status") == "completed" and (day is None or day <= as_of):
        state.prior_therapies.setdefault(therapy, path)
        state.notes.append(f"{path}: {known[0].means['note']} (SNOMED CT {known[0].code}): prior therapy {therapy}")
    else:
        state.notes.append(f"{path}: {known[0].means['note']} (SNOMED CT {known[0].code}); not mapped to a fact")


def _read_medication(
    state: _State,
    path: str,
    resource: Mapping[str, Any],
    importer: Importer,
    medications: Mapping[str, Mapping[str, Any]],
    as_of: dt.date,
) -> None:
    kind = resource["resourceType"]
    if resource.get("status") in _IGNORED_STATUSES:
        return
    tables = importer.tables
    concept = importer.resolve_medication(resource, medications)
    if concept is None and "medicationReference" in resource:
        state.notes.append(f"{path}.medicationReference: the Medication it names is not in the record; not read")
        return
    for c in _codings(concept):
        if tables.normalise(*c) in tables.known_wrong:
            wrong = tables.known_wrong[tables.normalise(*c)]
            state.notes.append(f"{path}.medication: {c[1]} is a known-wrong code ({wrong}); not read")
    agents = importer.agents_of(concept)
    if not agents:
        state.ignored[f"{kind} (other)"] += 1
        return
    given = resource.get("status") in _GIVEN_STATUSES[kind]
    when = _when(resource, "effectiveDateTime", "effectivePeriod", "authoredOn", "dateAsserted")
    day = _day(when) if when else None
    if not given or (day is not None and day > as_of):
        what = "ordered" if kind == "MedicationRequest" else f"{resource.get('status')}, not given"
        state.notes.append(f"{path}: medication {', '.join(agents)} {what}; not read as received")
        return
    state.notes.append(f"{path}: medication {', '.join(agents)} given")
    for agent in agents:
        state.treatments.append(_Reading(agent, path, when))
        therapy = tables.prior_therapy_of_agent.get(agent)
        if therapy:
            state.prior_therapies.setdefault(therapy, path)


# --- from readings to facts ------------------------------------------------------------------


def _latest(state: _State, fact: str, readings: list[_Reading]) -> _Reading | None:
    """The most recent reading of a fact; equally recent readings that disagree leave it unknown."""
    if not readings:
        return None
    newest = max(r.when for r in readings)
    top = [r for r in readings if r.when == newest]
    if len({repr(r.value) for r in top}) > 1:
        paths = ", ".join(r.path for r in top)
        state.alert(f"fhir-conflicting-{_dashed(fact)}", fact=fact, paths=paths)
        return None
    return top[0]


@dataclass(frozen=True)
class _History:
    """Remissions and relapses counted from the dated disease states of the record."""

    events: int
    remissions: int
    relapses: int
    relapse_days: tuple[dt.date, ...]


def _history(events: list[_Reading]) -> _History:
    dated = sorted(((d, e.value) for e in events if (d := _day(e.when)) is not None), key=lambda x: x[0])
    remissions = relapses = 0
    relapse_days: list[dt.date] = []
    previous = None
    for day, value in dated:
        if value == "remission" and previous != "remission":
            remissions += 1
        elif value == "active" and previous == "remission":
            relapses += 1
            relapse_days.append(day)
        previous = value
    return _History(len(dated), remissions, relapses, tuple(relapse_days))


def _assemble(state: _State, age: float, as_of: dt.date) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {"age_years": age}
    provenance: dict[str, str] = {"age_years": "Patient.birthDate"}

    def take(fact: str, readings: list[_Reading]) -> Any:
        chosen = _latest(state, fact, readings)
        if chosen is None:
            return None
        provenance[fact] = chosen.path
        return chosen.value

    lineage_readings = state.lineage_codes + state.readings.get("lineage", [])
    if len({r.value for r in lineage_readings}) > 1:
        paths = ", ".join(r.path for r in lineage_readings)
        state.alert("fhir-conflicting-lineage", paths=paths)
        lineage = None
    else:
        lineage = take("lineage", lineage_readings)
    data["lineage"] = lineage or "unknown"

    for fact in ("ph_status", "mrd_status"):
        data[fact] = take(fact, state.readings.get(fact, [])) or "unknown"
    data["cns_involvement"] = take("cns_involvement", state.readings.get("cns_involvement", []))
    for fact in ("remission_duration_months", "expected_survival_months"):
        data[fact] = take(fact, state.readings.get(fact, []))
    counts = {f: take(f, state.readings.get(f, [])) for f in _INTEGER_FACTS}
    phase_readings = state.readings.get("completed_phase", [])
    done = {r.value for r in phase_readings}
    data["completed_phases"] = [p for p in PHASE_ORDER if p in done]
    if phase_readings:
        provenance["completed_phases"] = phase_readings[-1].path

    conditions = [
        (when, path, _condition_status(state, path, means, cs)) for when, path, means, cs in state.all_conditions
    ]
    newest = max((c[0] for c in conditions), default="")
    disputed = len({s for w, _, s in conditions if w == newest}) > 1
    for when, path, reading in conditions:
        # Equally recent diagnoses that disagree date nothing: neither is history.
        if reading in ("in_remission", "relapsed") and not (disputed and when == newest):
            state.status_events.append(_Reading("remission" if reading == "in_remission" else "active", path, when))
    # A disease status about another cancer (its `focus` names no ALL diagnosis) is not this history.
    other = {path for path, focus in state.focus.items() if focus and not set(focus) & state.all_condition_refs}
    for path in sorted(other):
        state.notes.append(f"{path}: about another condition (focus); not read")
    state.mcode_status = [r for r in state.mcode_status if r.path not in other]
    state.status_events = [r for r in state.status_events if r.path not in other]
    history = _history(state.status_events)
    status = _disease_status(state, counts, done, provenance, conditions, history)
    if status is None:
        return data, provenance
    data["disease_status"] = status
    _fill_counts(state, status, counts, data, history)
    _relapse_timing(state, data, history, provenance)
    _treatment(state, data, provenance)
    _missing_alerts(state, data)
    return data, provenance


def _disease_status(
    state: _State,
    counts: Mapping[str, int | None],
    done: set[str],
    provenance: dict[str, str],
    conditions: list[tuple[str, str, str]],
    history: _History,
) -> str | None:
    recorded = _latest(state, "disease_status", state.readings.get("disease_status", []))
    from_condition: str | None = None
    condition_path = ""
    condition_when = ""
    if conditions:
        condition_when = max(c[0] for c in conditions)
        top = sorted({(s, p) for w, p, s in conditions if w == condition_when})
        if len({s for s, _ in top}) > 1:
            # Equally recent diagnoses that disagree: a warning, and the rest of the record decides.
            detail = "equally recent diagnoses disagree (" + " vs ".join(s.replace("_", " ") for s, _ in top) + ")"
            condition_path = ", ".join(p for _, p in top)
            refs = ", ".join(_ref_of_path(p) for _, p in top)
            state.alert("fhir-conflicting-condition-codes", detail=detail, paths=refs)
            from_condition = "unknown"
        else:
            from_condition, condition_path = top[0]
    for _, ref in state.uncoded:
        if from_condition is not None or recorded is not None:
            state.alert("fhir-uncoded-diagnosis", path=ref)
    if from_condition is None and recorded is None:
        if state.uncoded:
            state.problems.extend(
                Problem(
                    f"{path}.code",
                    "names ALL in its text only: add a coded diagnosis (ICD-10-CM C91.0x, SNOMED CT or NCI "
                    "Thesaurus) so the record can be read without guessing",
                )
                for path, _ in state.uncoded
            )
            return None
        state.no_all_diagnosis = True
        state.problems.append(
            Problem(
                "Condition",
                "no Condition coded as ALL (ICD-10-CM C91.0/C91.0x, WHO ICD-10 C91.0, SNOMED CT "
                "91857003/91856007/277571004, NCIt C3167/C8644/C3183) and no allpath disease_status "
                "Observation: disease_status cannot be read",
            )
        )
        return None
    if recorded is not None:
        provenance["disease_status"] = recorded.path
        if from_condition in ("relapsed", "in_remission") and recorded.value != from_condition:
            state.problems.append(
                Problem(
                    recorded.path, f"disease_status {recorded.value} contradicts {condition_path} ({from_condition})"
                )
            )
            return None
        if from_condition == "not_in_remission" and recorded.value == "in_remission":
            state.problems.append(
                Problem(recorded.path, f"disease_status in_remission contradicts {condition_path} (not in remission)")
            )
            return None
        return str(recorded.value)
    status = from_condition
    provenance["disease_status"] = condition_path
    mcode = _latest(state, "disease_status", state.mcode_status)
    # A coded diagnosis without a remission state (or an out-of-date "not in remission") yields to
    # the dated disease status; a remission or relapse diagnosis newer than it decides.
    if mcode is not None and (status in ("not_in_remission", "unknown") or mcode.when >= condition_when):
        read = "in_remission" if mcode.value == "remission" else "relapsed" if history.relapses else "not_in_remission"
        if status in ("in_remission", "relapsed") and read != status:
            state.notes.append(f"{mcode.path}: disease status newer than {condition_path} ({status}) decides")
        status = read
        provenance["disease_status"] = mcode.path
    if status in ("in_remission", "relapsed"):
        return status
    # ALL that is not in remission (or whose remission state is unknown): new, refractory
    # (induction done, no remission) or relapsed.
    relapses = counts.get("relapse_count")
    if relapses is None:
        relapses = history.relapses
    if relapses >= 1:
        state.notes.append(f"{condition_path}: not in remission after a relapse: disease_status relapsed")
        return "relapsed"
    if "induction" in done or (counts.get("prior_regimen_count") or 0) >= 1:
        state.notes.append(f"{condition_path}: not in remission after induction: disease_status refractory")
        return "refractory"
    return "newly_diagnosed"


def _condition_status(state: _State, path: str, means: Mapping[str, Any], clinical: str) -> str:
    coded = means.get("remission")
    if clinical in ("relapse", "recurrence"):
        if coded == "in_remission":
            state.problems.append(Problem(f"{path}.clinicalStatus", f"{clinical} contradicts the code (in remission)"))
        return "relapsed"
    if clinical in ("remission", "inactive", "resolved"):
        if coded in ("relapsed", "not_in_remission"):
            state.problems.append(
                Problem(f"{path}.clinicalStatus", f"{clinical} contradicts the code ({coded.replace('_', ' ')})")
            )
        if clinical != "remission":
            state.notes.append(f"{path}: clinicalStatus {clinical} read as in remission")
        return "in_remission"
    return str(coded or "not_in_remission")


def _fill_counts(
    state: _State, status: str, counts: Mapping[str, int | None], data: dict[str, Any], history: _History
) -> None:
    """Counts the record leaves out are counted from its dated disease states, or get the least
    value the disease status implies, with an alert; the regimen count stays unknown."""
    # A disease not yet in remission has no remissions or relapses to count.
    counted = history.events > 0 and status != "newly_diagnosed"

    def fill(fact: str, least: int, from_history: int) -> int:
        value = counts.get(fact)
        if value is not None:
            return value
        if counted and from_history >= least:
            state.notes.append(f"{fact} {from_history}, counted from {history.events} dated disease states")
            return from_history
        if status != "newly_diagnosed" or least > 0:
            _lower_bound(state, fact, least)
        return least

    relapses = fill("relapse_count", 1 if status == "relapsed" else 0, history.relapses)
    remissions = fill("remission_count", relapses + 1 if status == "in_remission" else relapses, history.remissions)
    regimens = counts.get("prior_regimen_count")
    if regimens is None and status != "newly_diagnosed":
        # Regimens cannot be counted from drug records (one regimen gives many drugs over years):
        # unknown, so the plan names it among the facts that would sharpen it.
        state.alert("fhir-missing-prior-regimen-count", fact="prior_regimen_count", value=None)
    data["relapse_count"] = relapses
    data["remission_count"] = remissions
    data["prior_regimen_count"] = regimens


def _relapse_timing(state: _State, data: dict[str, Any], history: _History, provenance: dict[str, str]) -> None:
    days = [d for w in state.diagnosed_on if (d := _day(w)) is not None]
    if data["relapse_count"] < 1 or not history.relapse_days or not days:
        return
    diagnosed, relapsed = min(days), history.relapse_days[-1]
    if relapsed < diagnosed:
        return
    months = round(months_between(diagnosed, relapsed), 6)
    remission = data.get("remission_duration_months")
    if remission is not None and remission > months:
        state.notes.append("months_from_diagnosis_to_relapse not set: the recorded remission is longer")
        return
    data["months_from_diagnosis_to_relapse"] = months
    provenance["months_from_diagnosis_to_relapse"] = "Condition.onset[x]"
    state.notes.append(
        f"months_from_diagnosis_to_relapse from the first diagnosis date to the relapse on {relapsed.isoformat()}"
    )


def _treatment(state: _State, data: dict[str, Any], provenance: dict[str, str]) -> None:
    subtypes = {r.value for r in state.genetics}
    if "abl1-t315i" in subtypes and "bcr-abl1" not in subtypes:
        # T315I is read as the BCR::ABL1 kinase-domain mutation; without the fusion it says nothing here.
        subtypes.discard("abl1-t315i")
        state.notes.append("ABL1 p.T315I without a BCR::ABL1 fusion in the record; not read")
    data["genetic_subtypes"] = [s for s in GENETIC_SUBTYPES if s in subtypes]
    if state.genetics:
        provenance["genetic_subtypes"] = state.genetics[0].path
    data["prior_therapies"] = [t for t in PRIOR_THERAPIES if t in state.prior_therapies]
    if state.prior_therapies:
        provenance["prior_therapies"] = next(iter(state.prior_therapies.values()))
    evidence = [r for r in state.treatments if r.value not in _NOT_ALONE_TREATMENT]
    if evidence and data["disease_status"] == "newly_diagnosed":
        start = min((r.when for r in evidence if r.when), default="an unrecorded date")
        agents = ", ".join(sorted({r.value for r in evidence}))
        state.alert("fhir-treatment-without-response", start=start[:10], agents=agents)


def _lower_bound(state: _State, fact: str, value: int) -> None:
    state.alert(f"fhir-missing-{_dashed(fact)}", fact=fact, value=value)


def _missing_alerts(state: _State, data: Mapping[str, Any]) -> None:
    status = data["disease_status"]
    if data["lineage"] == "unknown":
        state.alert("fhir-missing-lineage")
    if data["ph_status"] == "unknown":
        state.alert("fhir-missing-ph-status")
    if data["cns_involvement"] is None:
        state.alert("fhir-missing-cns-involvement")
    if data["mrd_status"] == "unknown" and status != "newly_diagnosed":
        state.alert("fhir-missing-mrd-status")
    if status == "relapsed" and data["remission_duration_months"] is None:
        state.alert("fhir-missing-remission-duration")
    if status in ("in_remission", "refractory") and not data["completed_phases"]:
        state.alert("fhir-missing-completed-phases")
