"""Prefetched FHIR data: the templates the service asks for, and how a call's data is gathered.

Each template's data comes from the request's `prefetch` when the EHR supplied it (a `null` value
means "nothing on record"); a key the EHR left out is fetched from its `fhirServer` with the bearer
token in `fhirAuthorization`. When neither works the service cannot decide safely and answers 412,
as the spec requires.

Every resource gathered keeps the JSON path it came from (`prefetch.conditions.entry[2].resource`),
so a problem found later (another patient's data, invalid FHIR) names the place to fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlparse

from allpath.api.cds.hookrequest import HookRequest, HookRequestError
from allpath.errors import BadRequestError, UnavailableError
from allpath.facts import Problem

MEDICATION = "Medication"
# The elements a template's filter or the order checks read a code from.
CODED_ELEMENTS = ("code", "medicationCodeableConcept", "medicationReference")


@dataclass(frozen=True)
class Template:
    key: str
    resource_type: str
    search: bool  # a search returns a Bundle; a read returns the resource itself
    codes: frozenset[tuple[str, str]] = frozenset()  # (system, code) tokens; empty: no code filter
    systems: frozenset[str] = frozenset()  # any code in these systems
    include_medication: bool = False  # `_include` the Medication a `medicationReference` names

    @property
    def query(self) -> str:
        if not self.search:
            return f"{self.resource_type}/{{{{context.patientId}}}}"
        query = f"{self.resource_type}?patient={{{{context.patientId}}}}"
        tokens = [f"{system}|{code}" for system, code in sorted(self.codes)] + [f"{s}|" for s in sorted(self.systems)]
        query += "&code=" + ",".join(tokens) if tokens else ""
        return query + (f"&_include={self.resource_type}:medication" if self.include_medication else "")

    def wants(self, resource: Mapping[str, Any]) -> bool:
        """Whether the template asked for this resource: its code filter, if any, read the way the
        importer reads codes (`_normalise`), and lenient with codings a server would not have
        matched but a person would (a code sent as a number). Whatever this lets through is
        validated before it is read, so a malformed diagnosis is refused with its fault named
        instead of silently left out."""
        if not self.codes and not self.systems:
            return True
        concept = resource.get("code")
        codings = concept.get("coding") if isinstance(concept, Mapping) else None
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, Mapping) and coding.get("system") is not None and coding.get("code") is not None:
                system, code = _normalise(str(coding["system"]).strip(), str(coding["code"]).strip())
                if system in self.systems or (system, code) in self.codes:
                    return True
        return False


def unreadable(resource: Mapping[str, Any]) -> bool:
    """Whether a coded element is malformed so that no filter can tell what the resource is about
    (`code` as a list, `coding` as an object, a code that is not a string). Such a resource may be
    the diagnosis itself, so it must be validated, not filtered away."""
    for element in CODED_ELEMENTS:
        if element not in resource:
            continue
        value = resource[element]
        if not isinstance(value, Mapping):
            return True
        if element == "medicationReference":
            if "reference" in value and not isinstance(value["reference"], str):
                return True
            continue
        codings = value.get("coding", [])
        if not isinstance(codings, list):
            return True
        for coding in codings:
            if not isinstance(coding, Mapping) or any(
                k in coding and not isinstance(coding[k], str) for k in ("system", "code")
            ):
                return True
    return False


@dataclass(frozen=True)
class Located:
    """A resource from the request (or fetched for it) and the JSON path it came from."""

    template: Template
    path: str
    resource: dict[str, Any]


@dataclass
class Gathered:
    """What the templates found: their resources, and the Medications that came along with them
    (`_include`d, or sent under a key of their own) so a `medicationReference` can be resolved."""

    resources: list[Located]
    medications: list[Located]
    full_urls: dict[str, Mapping[str, Any]]


def _normalise(system: str, code: str) -> tuple[str, str]:
    """A coding as the importer's code tables spell it (their `normalise`, where the tables have one:
    known aliases of a system, ICD-10 codes sent without their dot)."""
    from allpath.fhir.codes import code_tables

    normalise = getattr(code_tables(), "normalise", None)
    return normalise(system, code) if callable(normalise) else (system, code)


def observation_codes(tables: Any) -> frozenset[tuple[str, str]]:
    """Every Observation code the importer reads: its `observations` table and, where the tables
    hold them, the disease-status codes (mCODE CancerDiseaseStatus) and the genomic variant code."""
    codes = set(tables.observations)
    codes.update(getattr(tables, "disease_status_codes", ()))
    genomics = getattr(tables, "genomics", None)
    if genomics is not None:
        codes.add(genomics.variant_code)
    return frozenset(codes)


def _templates() -> tuple[Template, ...]:
    # Ask only for what the importer reads (its code tables), so a chart full of vitals and
    # unrelated problems is neither sent nor parsed. Medications stay unfiltered: the order
    # checks recognise drugs by name as well as by code.
    from allpath.fhir.codes import CASE_FEATURE_SYSTEM, code_tables

    tables = code_tables()
    return (
        Template("patient", "Patient", False),
        Template("conditions", "Condition", True, codes=frozenset(tables.conditions)),
        # BCR-ABL1, disease status, genomic variants and whatever else the importer's tables read,
        # so a new code there is asked for here too.
        Template(
            "observations",
            "Observation",
            True,
            codes=observation_codes(tables),
            systems=frozenset({CASE_FEATURE_SYSTEM}),
        ),
        # Treatment history and orders. Not filtered by code: drugs are also recognised by name, and
        # a product-level code or a referenced Medication would escape an ingredient-code filter.
        Template("medications", "MedicationRequest", True, include_medication=True),
        Template("administrations", "MedicationAdministration", True, include_medication=True),
        Template("statements", "MedicationStatement", True, include_medication=True),
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


def _reference_patient(resource: Mapping[str, Any]) -> tuple[str, str] | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, Mapping) and isinstance(reference := ref.get("reference"), str):
            return key, reference
    return None


def _belongs_to(reference: str, patient_id: str) -> bool:
    # `Patient/123`, `https://ehr/fhir/Patient/123` and `Patient/123/_history/2` all name patient 123.
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] == patient_id


def names_patient(reference: str, patient_id: str, full_urls: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a reference names the patient in context.

    A `urn:uuid:` reference names a Bundle entry by its `fullUrl`: it is the patient when that
    entry is the context Patient, or, with no such entry in the request, when the uuid is the
    patient's id (Synthea and servers that keep a transaction's uuids as ids do this).
    """
    if reference.startswith("urn:uuid:"):
        target = full_urls.get(reference)
        if target is not None:
            return target.get("resourceType") == "Patient" and target.get("id") == patient_id
        return reference.removeprefix("urn:uuid:") == patient_id
    target = full_urls.get(reference)
    if target is not None and target.get("resourceType") == "Patient":
        return target.get("id") == patient_id
    return _belongs_to(reference, patient_id)


def check_subject(
    resource: Mapping[str, Any], path: str, patient_id: str, full_urls: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The resource with its subject written as `Patient/<id>`, or `InvalidPrefetchError` when it is
    about someone else: advice about the wrong person is worse than none."""
    owner = _reference_patient(resource)
    if owner is None:
        return dict(resource)
    key, reference = owner
    if not names_patient(reference, patient_id, full_urls):
        problem = Problem(f"{path}.{key}.reference", "names a patient other than context.patientId")
        if path.startswith("context."):
            raise HookRequestError([problem])
        raise InvalidPrefetchError("invalid prefetch", [problem])
    if reference == f"Patient/{patient_id}":
        return dict(resource)
    # The importer reads `Patient/<id>`; a resolved uuid or absolute URL is the same patient.
    return {**resource, key: {**resource[key], "reference": f"Patient/{patient_id}"}}


def resources_of(
    template: Template, value: Any, patient_id: str, path: str
) -> tuple[list[tuple[str, dict[str, Any], str | None]], bool]:
    """The resources in one prefetch value, each with its path and `fullUrl`, and whether the value is
    complete (no further pages). Entries of the template's type and Medications are kept; the
    template's code filter is applied later, after validation."""
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
        return [(path, dict(value), None)], True
    if value["resourceType"] != "Bundle":
        raise InvalidPrefetchError(
            "invalid prefetch", [Problem(f"{path}.resourceType", "a search result must be a Bundle")]
        )
    entries = value.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidPrefetchError("invalid prefetch", [Problem(f"{path}.entry", "must be an array")])
    found: list[tuple[str, dict[str, Any], str | None]] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        where = f"{path}.entry[{index}].resource"
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            raise InvalidPrefetchError("invalid prefetch", [Problem(where, "must be a FHIR resource")])
        if resource["resourceType"] not in (template.resource_type, MEDICATION):
            continue  # OperationOutcome notes, other _include'd resources: not what this template asked for
        full_url = entry.get("fullUrl")
        found.append((where, dict(resource), full_url if isinstance(full_url, str) else None))
    complete = not any(
        isinstance(link, Mapping) and link.get("relation") == "next" for link in value.get("link", []) or []
    )
    return found, complete


def _entries_by_full_url(value: Any) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    if isinstance(value, Mapping) and value.get("resourceType") == "Bundle" and isinstance(value.get("entry"), list):
        for entry in value["entry"]:
            url = entry.get("fullUrl") if isinstance(entry, Mapping) else None
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if isinstance(url, str) and isinstance(resource, Mapping):
                found[url] = resource
    return found


def draft_entries(request: HookRequest) -> list[tuple[str, Mapping[str, Any], str | None]]:
    bundle = request.context.get("draftOrders")
    if not isinstance(bundle, Mapping):
        return []
    found = []
    for index, entry in enumerate(bundle.get("entry", []) or []):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        where = f"context.draftOrders.entry[{index}].resource"
        if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
            raise HookRequestError([Problem(where, "must be a FHIR resource (an object with a resourceType)")])
        url = entry.get("fullUrl")
        found.append((where, resource, url if isinstance(url, str) else None))
    return found


async def gather(
    request: HookRequest,
    *,
    transport: Any = None,
    timeout_seconds: float = 5.0,
    allow_http: bool = False,
) -> Gathered:
    """Every resource the templates ask for, from prefetch or the FHIR server, each checked to be
    about the context patient; raises `InvalidPrefetchError` or `PrefetchUnavailableError`."""
    patient_id = request.patient_id
    raw: list[tuple[Template, str, dict[str, Any], str | None]] = []
    missing: list[Template] = []
    for template in TEMPLATES:
        if template.key in request.prefetch:
            found, complete = resources_of(
                template, request.prefetch[template.key], patient_id, f"prefetch.{template.key}"
            )
            if complete:
                raw.extend((template, *item) for item in found)
                continue
        missing.append(template)
    if missing:
        raw.extend(await _fetch(request, missing, transport, timeout_seconds, allow_http))
    full_urls: dict[str, Mapping[str, Any]] = {url: r for _, _, r, url in raw if url}
    # Every entry of a prefetched Bundle may be what a `urn:uuid:` reference names (an `_include`d Patient).
    for value in request.prefetch.values():
        full_urls.update(_entries_by_full_url(value))
    full_urls.update((url, r) for _, r, url in draft_entries(request) if url)
    gathered = Gathered([], [], full_urls)
    for template, path, resource, _ in raw:
        if resource["resourceType"] == MEDICATION:
            gathered.medications.append(Located(template, path, resource))
        else:
            checked = check_subject(resource, path, patient_id, full_urls)
            gathered.resources.append(Located(template, path, checked))
    return gathered


async def _fetch(
    request: HookRequest, templates: list[Template], transport: Any, timeout_seconds: float, allow_http: bool
) -> list[tuple[Template, str, dict[str, Any], str | None]]:
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

    async def one(client: Any, template: Template) -> list[tuple[Template, str, dict[str, Any], str | None]]:
        found: list[tuple[Template, str, dict[str, Any], str | None]] = []
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
            page, complete = resources_of(template, body, patient_id, f"fetched.{template.key}[{pages - 1}]")
            found.extend((template, *item) for item in page)
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
