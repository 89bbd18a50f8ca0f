"""The CDS service's FHIR import, remembered by content: the same chart read twice is validated once.

An EHR sends the same resources again every time the same chart is opened, so `CachingImporter`
keeps the import result of recent calls keyed by a SHA-256 of the resources' canonical JSON, whether
they were validated already, and the date (ages are counted to today). Only successful imports are kept: a record
that cannot be read is read, and refused, every time. Each worker keeps its own: the result is a
function of the resources, the date and the knowledge base, so every worker computes the same one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from allpath.http import jsonio
from allpath.store.cache import LruCache

IMPORT_CACHE_SIZE = 2048


class CachingImporter:
    """Wraps an importer (`allpath.fhir.Importer`): `wants` as it is, `from_resources` remembered."""

    def __init__(self, inner: Any, size: int = IMPORT_CACHE_SIZE, today: Callable[[], dt.date] = dt.date.today):
        self._inner = inner
        self._results: LruCache[Any] = LruCache(size)
        self._today = today

    @property
    def drugs(self) -> Any:
        return self._inner.drugs

    def wants(self, resource: dict[str, Any]) -> bool:
        return bool(self._inner.wants(resource))

    def from_resources(self, resources: list[dict[str, Any]], *, validated: bool = False) -> Any:
        digest = jsonio.digest(resources)
        if digest is None:  # not plain JSON: read every time, never taken for a chart seen before
            return self._inner.from_resources(resources, validated=validated)
        key = (self._today(), validated, digest)
        result = self._results.get(key)
        if result is None:
            result = self._inner.from_resources(resources, validated=validated)
            self._results.put(key, result)
        return result
