"""A small bounded LRU map shared by the request threads of one process.

What the service caches here is keyed by a patient record's `version` (which every change to the
record bumps), so an entry can never be stale: a changed record has a new key, and the old entry
just ages out. Nothing needs to be shared between worker processes: each derives the same value
from the same stored version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

COURSE_CACHE = "allpath_course_cache"


class LruCache(Generic[V]):
    """At most `size` entries; the least recently used goes first. Thread-safe."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
