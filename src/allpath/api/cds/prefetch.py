"""Prefetched FHIR data: the templates the service asks for, and how a call's data is gathered.

Each template's data comes from the request's `prefetch` when the EHR supplied it (a `null` value
means "nothing on record"); a key the EHR left out is fetched from its `fhirServer` with the bearer
token in `fhirAuthorization`. When neither works the service cannot decide safely and answers 412,
as the spec requires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlparse

from allpath.api.cds.hookrequest import HookRequest
from allpath.errors import BadRequestError, UnavailableError
from allpath.facts import Problem


@dataclass(frozen=True)
class Template:
    key: str
    resource_type: str
    search: bool  # a search returns a Bundle; a read returns the resource itself
    codes: frozenset[tuple[str, str]] = frozenset()  # (system, code) tokens; empty: no code filter
    systems: frozenset[str] = frozenset()  # any code in these systems

    @property
    def query(self) -> str:
        if not self.search:
            return f"{self.resource_type}/{{{{context.patientId}}}}"
        query = f"{self.resource_type}?patient={{{{context.patientId}}}}"
        tokens = [f"{system}|{code}" for system, code in sorted(self.codes)] + [f"{s}|" for s in sorted(self.systems)]
        return query + ("&code=" + ",".join(tokens) if tokens else "")

    def wants(self, resource: Mapping[str, Any]) -> bool:
        """Whether the template's query would have returned this resource (its code filter, if any)."""
        if not self.codes and not self.systems:
            return True
        concept = resource.get("code")
        codings = concept.get("coding") if isinstance(concept, Mapping) else None
        from allpath.fhir.codes import code_tables

        normalise = code_tables().normalise
        for coding in codings or []:
            if isinstance(coding, Mapping):
                system, code = coding.get("system"), coding.get("code")
                if system in self.systems:
                    return True
                # `C9100` is C91.00 and mCODE's NCIt system is NCIt, as the importer reads them.
                if isinstance(system, str) and isinstance(code, str) and normalise(system, code) in self.codes:
                    return True
        return False


def _templates() -> tuple[Template, ...]:
    # Ask only for what the importer reads (its code tables), so a chart full of vitals and
    # unrelated problems is neither sent nor parsed. Medications stay unfiltered: the order
    # checks recognise drugs by name as well as by code.
    from allpath.fhir.codes import CASE_FEATURE_SYSTEM, code_tables

    tables = code_tables()
    return (
        Template("patient", "Patient", False),
        Template("conditions", "Condition", True, codes=frozenset(tables.conditions)),
        Template(
            "observations",
            "Observation",
            True,
            codes=frozenset(tables.observations),
            systems=frozenset({CASE_FEATURE_SYSTEM}),
        ),
        Template("medications", "MedicationRequest", True),
        # Drugs given and taken: the treatment history the importer reads (issue 12).
        Template("administrations", "MedicationAdministration", True),
        Template("statements", "MedicationStatement", True),
        Template("procedures", "Procedure", True, codes=frozenset(tables.procedures)),
    )


TEMPLATES: tuple[Template, ...] = _templates()
PREFETCH: dict[str, str] = {t.key: t.query for t in TEMPLATES}
MAX_PAGES = 20  # a search that needs more pages than this is not answered within the hook's time budget


class InvalidPrefetchError(BadRequestError):
    """The EHR sent prefetch data that is wrong (another patient's, not FHIR): a 400 under CDS Hooks."""


class PrefetchUnavailableError(UnavailableError):
    """The data cannot be got (the FHIR server failed or refused): a 412 under CDS Hooks."""


def fill(query: str, context: Mapping[str, Any]) -> str:
    # Only the context fields the hooks define as prefetch tokens are substituted (ids, checked upstream).
    for name in ("patientId", "userId", "encounterId"):
        if name in context:
            query = query.replace("{{context." + name + "}}", str(context[name]))
    return query


def _reference_patient(resource: Mapping[str, Any]) -> str | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, Mapping) and isinstance(reference := ref.get("reference"), str):
            return reference
    return None


def _belongs_to(reference: str, patient_id: str) -> bool:
    # `Patient/123`, `https://ehr/fhir/Patient/123` and `Patient/123/_history/2` all name patient 123.
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] == patient_id


def resources_of(template: Template, value: Any, patient_id: str, path: str) -> tuple[list[dict[str, Any]], bool]:
    """The resources in one prefetch value, and whether the value is complete (no further pages)."""
    if value is None:
        return [], True
    if not isinstance(value, Mapping) or not isinstance(value.get("resourceType"), str):
        raise InvalidPrefetchError("invalid prefetch", [Problem(path, "must be a FHIR resource or null")])
    if not template.search:
        if value["resourceType"] != template.resource_type:
            raise InvalidPrefetchError(
                "invalid prefetch", [Problem(f"{path}.resourceType", f"must be {template.resource_type}")]
            )
        if value.get("id") != patient_id:
            raise InvalidPrefetchError(
                "invalid prefetch", [Problem(f"{path}.id", "is not the patient named by context.patientId")]
            )
        return [dict(value)], True
    if value["resourceType"] != "Bundle":
        raise InvalidPrefetchError(
            "invalid prefetch", [Problem(f"{path}.resourceType", "a search result must be a Bundle")]
        )
    entries = value.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidPrefetchError("invalid prefetch", [Problem(f"{path}.entry", "must be an array")])
    found: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            raise InvalidPrefetchError(
                "invalid prefetch", [Problem(f"{path}.entry[{index}].resource", "must be a FHIR resource")]
            )
        if resource["resourceType"] != template.resource_type:
            continue  # OperationOutcome notes, _include'd resources: not what this template asked for
        owner = _reference_patient(resource)
        if owner is not None and not _belongs_to(owner, patient_id):
            # Another patient's data would yield advice about the wrong person: refuse outright.
            raise InvalidPrefetchError(
                "invalid prefetch",
                [Problem(f"{path}.entry[{index}].resource", "belongs to a patient other than context.patientId")],
            )
        if template.wants(resource):
            found.append(dict(resource))
    complete = not any(
        isinstance(link, Mapping) and link.get("relation") == "next" for link in value.get("link", []) or []
    )
    return found, complete


async def gather(
    request: HookRequest,
    *,
    transport: Any = None,
    timeout_seconds: float = 5.0,
    allow_http: bool = False,
) -> list[dict[str, Any]]:
    """Every resource the templates ask for, from prefetch or the FHIR server; raises `InvalidPrefetchError`
    or `PrefetchUnavailableError`."""
    patient_id = request.patient_id
    resources: list[dict[str, Any]] = []
    missing: list[Template] = []
    for template in TEMPLATES:
        if template.key in request.prefetch:
            found, complete = resources_of(
                template, request.prefetch[template.key], patient_id, f"prefetch.{template.key}"
            )
            if complete:
                resources.extend(found)
                continue
        missing.append(template)
    if missing:
        resources.extend(await _fetch(request, missing, transport, timeout_seconds, allow_http))
    return resources


async def _fetch(
    request: HookRequest, templates: list[Template], transport: Any, timeout_seconds: float, allow_http: bool
) -> list[dict[str, Any]]:
    keys = ", ".join(t.key for t in templates)
    if request.fhir_server is None or request.fhir_authorization is None:
        raise PrefetchUnavailableError(
            "precondition failed: required FHIR data was not prefetched and cannot be fetched",
            [
                Problem(f"prefetch.{t.key}", "not supplied, and no fhirServer with fhirAuthorization to fetch it")
                for t in templates
            ],
        )
    base = request.fhir_server
    if urlparse(base).scheme != "https" and not allow_http:
        raise PrefetchUnavailableError(
            "precondition failed: the FHIR server must be reached over https",
            [Problem("fhirServer", f"is not https; cannot fetch {keys}")],
        )
    import httpx  # only this path talks to the network

    headers = {
        "Authorization": f"Bearer {request.fhir_authorization.access_token}",
        "Accept": "application/fhir+json",
    }
    patient_id = request.patient_id

    async def one(client: Any, template: Template) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        url: str | None = f"{base}/{fill(template.query, request.context)}"
        pages = 0
        while url is not None:
            pages += 1
            if pages > MAX_PAGES:
                raise _unavailable(template, f"more than {MAX_PAGES} pages of results")
            response = await client.get(url)
            if response.status_code != 200:
                raise _unavailable(template, f"the FHIR server answered HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                raise _unavailable(template, "the FHIR server sent something that is not JSON") from None
            page, complete = resources_of(template, body, patient_id, f"fetched {template.key}")
            found.extend(page)
            url = None if complete else _next_link(body, base)
        return found

    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=timeout_seconds, headers=headers, follow_redirects=False
        ) as client:
            # The searches are independent: run them together so the wait is the slowest, not the sum.
            tasks = [asyncio.ensure_future(one(client, t)) for t in templates]
            try:
                results = await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
    except httpx.HTTPError as exc:
        raise PrefetchUnavailableError(
            "precondition failed: the FHIR server could not be reached",
            [Problem("fhirServer", f"request failed ({type(exc).__name__}); cannot fetch {keys}")],
        ) from None
    return [resource for found in results for resource in found]


def _next_link(bundle: Mapping[str, Any], base: str) -> str:
    for link in bundle.get("link", []) or []:
        if (
            isinstance(link, Mapping)
            and link.get("relation") == "next"
            and isinstance(next_url := link.get("url"), str)
        ):
            url = urljoin(base + "/", next_url)
            # The bearer token must only ever go to the EHR's own server.
            if urlparse(url).netloc != urlparse(base).netloc:
                break
            return url
    raise PrefetchUnavailableError(
        "precondition failed: a search result could not be completed",
        [Problem("fhirServer", "a next-page link is missing or points to another server")],
    )


def _unavailable(template: Template, why: str) -> PrefetchUnavailableError:
    return PrefetchUnavailableError(
        "precondition failed: required FHIR data could not be fetched",
        [Problem(f"prefetch.{template.key}", f"{why} for {fill(template.query, {})}")],
    )
