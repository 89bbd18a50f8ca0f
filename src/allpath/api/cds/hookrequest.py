"""The body of a CDS Hooks 2.0 service call, checked field by field.

A bad request is a 400 whose details name each faulty field (`context.patientId: is required`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from allpath.errors import BadRequestError
from allpath.facts import Problem, ProblemsError
from allpath.http import jsonio

# FHIR R4 `id`: 1-64 of these characters. Checking it also keeps ids safe to put in a URL path.
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
REFERENCE = re.compile(r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


class HookRequestError(ProblemsError, BadRequestError):
    """A hook request that is not valid CDS Hooks 2.0 (answered with 400 and the problems)."""

    title = "invalid hook request"


@dataclass(frozen=True)
class FhirAuthorization:
    access_token: str
    token_type: str
    expires_in: int
    scope: str
    subject: str


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    prefetch: Mapping[str, Any]
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None

    @property
    def patient_id(self) -> str:
        return str(self.context["patientId"])


@dataclass(frozen=True)
class ContextField:
    name: str
    kind: str  # "id", "reference", "bundle", "references" (an array of Type/id)
    required: bool


PATIENT_VIEW_CONTEXT = (
    ContextField("userId", "reference", True),
    ContextField("patientId", "id", True),
    ContextField("encounterId", "id", False),
)
ORDER_SIGN_CONTEXT = (*PATIENT_VIEW_CONTEXT, ContextField("draftOrders", "bundle", True))
ORDER_SELECT_CONTEXT = (*ORDER_SIGN_CONTEXT, ContextField("selections", "references", True))


def parse_json_body(raw: bytes) -> Any:
    if not raw.strip():
        raise HookRequestError([Problem("$", "the request body is empty; expected a JSON object")])
    try:
        return jsonio.loads(raw)
    except jsonio.JSONDecodeError as exc:  # invalid UTF-8 too
        where = f" at line {exc.lineno} column {exc.colno}" if exc.lineno else ""
        raise HookRequestError([Problem("$", f"malformed JSON{where}")]) from None


def _string(body: Mapping[str, Any], key: str, path: str, out: list[Problem], *, required: bool) -> str | None:
    if key not in body:
        if required:
            out.append(Problem(path, "is required"))
        return None
    value = body[key]
    if not isinstance(value, str) or not value.strip():
        out.append(Problem(path, "must be a non-empty string"))
        return None
    return value


def parse_hook_request(data: Any, *, hook: str, context_fields: tuple[ContextField, ...]) -> HookRequest:
    """Validate a decoded request body for a service bound to `hook`; raise `HookRequestError`."""
    if not isinstance(data, Mapping):
        raise HookRequestError([Problem("$", "must be a JSON object")])
    out: list[Problem] = []
    got_hook = _string(data, "hook", "hook", out, required=True)
    if got_hook is not None and got_hook != hook:
        out.append(Problem("hook", f"this service answers the {hook} hook, not {got_hook}"))
    instance = _string(data, "hookInstance", "hookInstance", out, required=True)
    if instance is not None:
        try:
            uuid.UUID(instance.removeprefix("urn:uuid:"))
        except ValueError:
            out.append(Problem("hookInstance", "must be a UUID"))
    server = _string(data, "fhirServer", "fhirServer", out, required=False)
    if server is not None:
        parts = urlparse(server)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            out.append(Problem("fhirServer", "must be an absolute http(s) URL"))
            server = None
    auth = _fhir_authorization(data, out)
    if auth is not None and "fhirServer" not in data:
        out.append(Problem("fhirServer", "is required when fhirAuthorization is given"))
    context = data.get("context")
    if not isinstance(context, Mapping):
        out.append(Problem("context", "is required (an object)"))
        context = {}
    else:
        _check_context(context, context_fields, out)
    prefetch = data.get("prefetch", {})
    if not isinstance(prefetch, Mapping):
        out.append(Problem("prefetch", "must be an object of prefetch key -> FHIR resource (or null)"))
        prefetch = {}
    if out:
        raise HookRequestError(out)
    return HookRequest(
        hook=hook,
        hook_instance=str(instance),
        context=context,
        prefetch=prefetch,
        fhir_server=server.rstrip("/") if server else None,
        fhir_authorization=auth,
    )


def _fhir_authorization(data: Mapping[str, Any], out: list[Problem]) -> FhirAuthorization | None:
    if "fhirAuthorization" not in data:
        return None
    value = data["fhirAuthorization"]
    if not isinstance(value, Mapping):
        out.append(Problem("fhirAuthorization", "must be an object"))
        return None
    before = len(out)
    strings = {
        k: _string(value, k, f"fhirAuthorization.{k}", out, required=True)
        for k in ("access_token", "token_type", "scope", "subject")
    }
    if strings["token_type"] is not None and strings["token_type"].lower() != "bearer":
        out.append(Problem("fhirAuthorization.token_type", "must be Bearer"))
    expires = value.get("expires_in")
    if "expires_in" not in value:
        out.append(Problem("fhirAuthorization.expires_in", "is required"))
    elif isinstance(expires, bool) or not isinstance(expires, int) or expires < 0:
        out.append(Problem("fhirAuthorization.expires_in", "must be a whole number of seconds >= 0"))
    if len(out) > before:
        return None
    assert isinstance(expires, int)  # checked above: otherwise a problem was recorded
    return FhirAuthorization(
        access_token=str(strings["access_token"]),
        token_type="Bearer",
        expires_in=expires,
        scope=str(strings["scope"]),
        subject=str(strings["subject"]),
    )


def _check_context(context: Mapping[str, Any], fields: tuple[ContextField, ...], out: list[Problem]) -> None:
    for spec in fields:
        path = f"context.{spec.name}"
        if spec.name not in context:
            if spec.required:
                out.append(Problem(path, "is required"))
            continue
        value = context[spec.name]
        if spec.kind == "references":
            if not isinstance(value, list) or not value:
                out.append(Problem(path, "must be a non-empty array of references such as MedicationRequest/123"))
                continue
            for index, item in enumerate(value):
                if not isinstance(item, str) or not REFERENCE.match(item):
                    out.append(Problem(f"{path}[{index}]", "must be a reference of the form Type/id"))
            continue
        if spec.kind == "bundle":
            if not isinstance(value, Mapping) or value.get("resourceType") != "Bundle":
                out.append(Problem(path, "must be a FHIR Bundle"))
            elif not isinstance(value.get("entry", []), list):
                out.append(Problem(f"{path}.entry", "must be an array"))
            continue
        if not isinstance(value, str):
            out.append(Problem(path, "must be a string"))
        elif spec.kind == "id" and not FHIR_ID.match(value):
            out.append(Problem(path, "must be a FHIR id (1-64 letters, digits, '-' or '.')"))
        elif spec.kind == "reference" and not REFERENCE.match(value):
            out.append(Problem(path, "must be a reference of the form Type/id, e.g. Practitioner/123"))
