"""The `PlanDefinition/$apply` operation: a Parameters resource in, a CarePlan out, OperationOutcome on error.

The input is the R4 operation's: `subject` (the patient, `Patient/<id>` as a string or a
Reference) and, as the CPG-on-FHIR IG adds, `data` (a Bundle holding that Patient and their
record). The Bundle is read by the same `Importer` as the CLI, REST and CDS Hooks, and the plan
made by the same `Engine`, so one Bundle gives one plan on every path. Errors name the parameter:
`subject`, `data`, `data.entry[3].resource(Observation/o1).valueQuantity`.

No web framework here: the HTTP route (`allpath.api.routes.fhir`) turns the errors into
`OperationOutcome` bodies with `operation_outcome`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from allpath.engine import Engine
from allpath.errors import BadRequestError, Problem
from allpath.fhir.export import care_plan, plan_definition
from allpath.fhir.importer import FhirInputError, Importer

PLAN_DEFINITION_ID = "allpath-all-treatment-options"
_KNOWN_PARAMETERS = ("subject", "data")


class ApplyRequestError(BadRequestError):
    """The operation's Parameters are malformed or miss what `$apply` needs (400); `.problems` name each."""

    title = "invalid $apply parameters"

    def __init__(self, problems: Iterable[Problem]):
        super().__init__(None, problems)


def _parameters(body: Any) -> dict[str, list[Mapping[str, Any]]]:
    from fhir.resources.R4B.parameters import Parameters
    from pydantic import ValidationError

    if not isinstance(body, Mapping):
        raise ApplyRequestError([Problem("Parameters", "the body must be a FHIR Parameters resource (a JSON object)")])
    if body.get("resourceType") != "Parameters":
        raise ApplyRequestError(
            [Problem("Parameters.resourceType", f"must be 'Parameters', got {body.get('resourceType')!r}")]
        )
    shell = dict(body)
    # The Bundle is validated entry by entry by the importer, with paths named from `data`.
    listed = shell.get("parameter")
    if isinstance(listed, list):
        shell["parameter"] = [
            {k: v for k, v in p.items() if k != "resource"} if isinstance(p, Mapping) else p for p in listed
        ]
    try:
        Parameters.model_validate(shell)
    except ValidationError as exc:
        raise ApplyRequestError(
            [
                Problem(
                    "Parameters." + ".".join(str(x) for x in e["loc"] if x not in ("__root__", "root")),
                    str(e["msg"]).splitlines()[0],
                )
                for e in exc.errors(include_url=False)
            ]
        ) from None
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for p in listed or []:
        by_name.setdefault(str(p.get("name")), []).append(p)
    return by_name


def _subject(by_name: Mapping[str, list[Mapping[str, Any]]]) -> str:
    given = by_name.get("subject", [])
    if len(given) != 1:
        raise ApplyRequestError(
            [Problem("subject", "exactly one subject is required (Patient/<id>)" if not given else "give one subject")]
        )
    (p,) = given
    value = p.get("valueString")
    if value is None and isinstance(p.get("valueReference"), Mapping):
        value = p["valueReference"].get("reference")
    if not isinstance(value, str) or not value.strip():
        raise ApplyRequestError([Problem("subject", "needs valueString or valueReference.reference (Patient/<id>)")])
    return value.strip()


def _data(by_name: Mapping[str, list[Mapping[str, Any]]]) -> Mapping[str, Any]:
    given = by_name.get("data", [])
    if len(given) != 1:
        raise ApplyRequestError(
            [
                Problem(
                    "data",
                    "exactly one data Bundle is required (the patient and their record)"
                    if not given
                    else "give one data Bundle",
                )
            ]
        )
    bundle = given[0].get("resource")
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise ApplyRequestError([Problem("data", "must carry a Bundle in `resource`")])
    return bundle


def _patient_names(bundle: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and resource.get("resourceType") == "Patient":
            if resource.get("id"):
                names.add(f"Patient/{resource['id']}")
            if isinstance(entry.get("fullUrl"), str):
                names.add(entry["fullUrl"])
    return names


def apply(
    engine: Engine,
    importer: Importer,
    plan_definition_id: str,
    body: Any,
    *,
    as_of: dt.date | None = None,
) -> dict[str, Any]:
    """Run `$apply` of the exported PlanDefinition on the operation's Parameters; the CarePlan as JSON."""
    if plan_definition_id != PLAN_DEFINITION_ID:
        from allpath.errors import RecordNotFoundError

        raise RecordNotFoundError(
            f"no PlanDefinition {plan_definition_id!r}",
            [Problem("id", f"the only PlanDefinition is {PLAN_DEFINITION_ID!r}")],
        )
    by_name = _parameters(body)
    unknown = sorted(set(by_name) - set(_KNOWN_PARAMETERS))
    problems = [Problem(name, "is not a parameter of $apply here (subject, data)") for name in unknown]
    if problems:
        raise ApplyRequestError(problems)
    subject = _subject(by_name)
    bundle = _data(by_name)
    names = _patient_names(bundle)
    if names and subject not in names:
        raise ApplyRequestError(
            [Problem("subject", f"{subject!r} is not the Patient in data ({', '.join(sorted(names))})")]
        )
    try:
        imported = importer.from_bundle(bundle, as_of=as_of)
    except FhirInputError as exc:
        exc.problems = [Problem(_in_data(p.field), p.problem) for p in exc.problems]
        raise
    return care_plan(engine, imported.facts, imported=imported, subject={"reference": subject})


def _in_data(field: str) -> str:
    """An importer path (`Bundle.entry[3]...`, or a bare resource name) named from the `data` parameter."""
    if field.startswith("Bundle"):
        return "data" + field.removeprefix("Bundle")
    return f"data.{field}"


def operation_outcome(status: int, message: str, problems: Iterable[Problem]) -> dict[str, Any]:
    """An OperationOutcome with one issue per problem, each naming its parameter in `expression`."""
    code = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 413: "too-long", 422: "processing"}
    issues = [
        {
            "severity": "error",
            "code": code.get(status, "exception" if status >= 500 else "invalid"),
            "diagnostics": f"{p.field}: {p.problem}",
            "expression": [p.field],
        }
        for p in problems
    ]
    if not issues:
        issues = [{"severity": "error", "code": code.get(status, "invalid"), "diagnostics": message}]
    return {"resourceType": "OperationOutcome", "issue": issues}


__all__ = ["PLAN_DEFINITION_ID", "ApplyRequestError", "apply", "operation_outcome", "plan_definition"]
