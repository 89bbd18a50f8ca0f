"""From the resources a hook call gathered to what the importer and the order checks read.

Two steps, in this order, because a silent answer is worse than a refusal:

1. `medicationReference` is resolved (a contained Medication, or a Medication sent in the prefetch
   or the draft-orders Bundle) and its code copied into `medicationCodeableConcept`, so one drug
   mapping (the importer's) reads every order however it names its drug.
2. Every resource that could matter to the facts or the checks is validated as FHIR R4 *before*
   anything is filtered away: a malformed ALL diagnosis is a 400 naming
   `prefetch.conditions.entry[i].resource...`, never a record that looks as if it held no ALL.

The validation (fhir.resources models) was the larger part of a call's CPU, and an EHR sends the
same resources every time a chart is opened: `ValidResources` remembers, per worker, the SHA-256
of each resource found valid, so a byte-for-byte identical resource is not validated again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from allpath.api.cds.hookrequest import HookRequestError
from allpath.api.cds.prefetch import InvalidPrefetchError
from allpath.facts import Problem
from allpath.http import jsonio
from allpath.store.cache import LruCache

MEDICATION_KINDS = frozenset({"MedicationRequest", "MedicationAdministration", "MedicationStatement"})
# About 16 resources per chart: the resources of some thousand recently opened charts, a few MB.
VALID_RESOURCES_SIZE = 16_384


def _key_of_url(url: str) -> str | None:
    # `https://ehr/fhir/Medication/7` and `Medication/7/_history/2` both name Medication/7.
    parts = url.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Medication":
        return f"Medication/{parts[-1]}"
    return None


class MedicationIndex:
    """The Medications a call carries, by every name a `medicationReference` may use for them."""

    def __init__(self, medications: Iterable[tuple[Mapping[str, Any], str | None, str | None]]):
        """`medications`: (Medication, its fullUrl, its path in the request), either of the last two may be None."""
        self._by_ref: dict[str, Mapping[str, Any]] = {}
        self._paths: dict[int, str] = {}
        for medication, full_url, path in medications:
            if isinstance(rid := medication.get("id"), str):
                self._by_ref[f"Medication/{rid}"] = medication
            if full_url:
                self._by_ref[full_url] = medication
            if path:
                self._paths.setdefault(id(medication), path)

    def path_of(self, resource: Mapping[str, Any]) -> str | None:
        """Where in the request the Medication a resource references was sent (None when contained,
        validated with its resource, or not found)."""
        medication = self.find(resource)
        return self._paths.get(id(medication)) if medication is not None else None

    def find(self, resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
        reference = resource.get("medicationReference")
        target = reference.get("reference") if isinstance(reference, Mapping) else None
        if not isinstance(target, str):
            return None
        if target.startswith("#"):
            contained_list = resource.get("contained")
            for contained in contained_list if isinstance(contained_list, list) else []:
                if isinstance(contained, Mapping) and contained.get("id") == target[1:]:
                    return contained if contained.get("resourceType") == "Medication" else None
            return None
        found = self._by_ref.get(target)
        if found is None and (key := _key_of_url(target)) is not None:
            found = self._by_ref.get(key)
        return found

    def resolve(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource with the code of the Medication it references as its `medicationCodeableConcept`
        (the reference's display kept as the concept's text); unchanged when nothing resolves."""
        if "medicationReference" not in resource or "medicationCodeableConcept" in resource:
            return resource
        medication = self.find(resource)
        code = medication.get("code") if medication is not None else None
        if not isinstance(code, Mapping):
            return resource
        concept = dict(code)
        display = resource["medicationReference"].get("display")
        if "text" not in concept and isinstance(display, str):
            concept["text"] = display
        resolved = {k: v for k, v in resource.items() if k != "medicationReference"}
        resolved["medicationCodeableConcept"] = concept
        return resolved


class ValidResources:
    """The SHA-256 digests of resources found valid FHIR R4, the most recent `size` of them.

    A digest is taken over the resource's canonical JSON (keys sorted, no spaces), so it changes with
    any change to any value; validation reads nothing but the resource, so a resource with a known
    digest would be found valid again. Invalid resources are never remembered: they are validated,
    and refused, every time. Thread-safe; one per router (so one per worker process).
    """

    def __init__(self, size: int = VALID_RESOURCES_SIZE):
        self._digests: LruCache[bool] = LruCache(size)

    @staticmethod
    def digest(resource: Mapping[str, Any]) -> bytes | None:
        return jsonio.digest(resource)  # None for content that is not plain JSON: never remembered

    def known(self, digest: bytes | None) -> bool:
        return digest is not None and self._digests.get(digest) is not None

    def remember(self, digest: bytes | None) -> None:
        if digest is not None:
            self._digests.put(digest, True)

    def __len__(self) -> int:
        return len(self._digests)


def validation_problems(
    located: Iterable[tuple[str, Mapping[str, Any]]], known: ValidResources | None = None
) -> list[Problem]:
    """FHIR R4 problems of each resource, each named by the resource's path in the request.

    With `known`, a resource identical to one found valid before is not validated again, and each
    resource found valid now is remembered."""
    from allpath.fhir.importer import validate_resource

    problems: list[Problem] = []
    for path, resource in located:
        digest = ValidResources.digest(resource) if known is not None else None
        if known is not None and known.known(digest):
            continue
        kind, rid = resource.get("resourceType"), resource.get("id")
        label = f"{kind}/{rid}" if rid else str(kind)
        try:
            found = validate_resource(resource)
        except KeyError:
            # fhir.resources raises a bare KeyError for a nested resource (`contained`) of an unknown
            # type; the importer's validation does not catch it yet (reported), so it is caught here.
            problems.append(Problem(path, "holds a nested resource whose resourceType is not a FHIR R4 type"))
            continue
        if not found and known is not None:
            known.remember(digest)
        for problem in found:
            rest = problem.field.removeprefix(label) if problem.field.startswith(label) else f".{problem.field}"
            problems.append(Problem(f"{path}{rest}", problem.problem))
    return problems


def refuse_invalid(located: Iterable[tuple[str, Mapping[str, Any]]], known: ValidResources | None = None) -> None:
    """Raise a 400 naming every FHIR fault in these resources: prefetch faults as `InvalidPrefetchError`,
    faults in the request's own context (draft orders) as `HookRequestError`. `known`: see
    `validation_problems`."""
    problems = validation_problems(located, known)
    if not problems:
        return
    if all(p.field.startswith("context.") for p in problems):
        raise HookRequestError(problems)
    raise InvalidPrefetchError("invalid prefetch: a resource that could matter is not valid FHIR R4", problems)
