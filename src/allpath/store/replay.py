"""The CDS Hooks replay cache in the service database (`cds_jti`), shared by every worker process.

`allpath.api.cds.auth.JwtVerifier` asks its replay store `check_and_add(issuer, jti, forget_after,
now)`: True the first time a pair is seen (or once its earlier use has expired), False for a
replay. Here that is one atomic upsert in its own transaction: a new pair is inserted, an expired
one taken over, a live one left alone, and the affected-row count says which. So a token accepted
by one worker is refused by every other, and after a restart. Rows are purged once they expire.
"""

from __future__ import annotations

import threading
import time
from typing import cast

from sqlalchemy import Engine, Table, delete
from sqlalchemy.dialects import postgresql, sqlite

from allpath.store.models import CdsJtiRow

_TABLE = cast(Table, CdsJtiRow.__table__)
PURGE_EVERY_SECONDS = 60.0
# Longer values could not be a real CDS token (8 KB at most, checked before) but must not fail the insert.
MAX_FIELD = 512


class DatabaseReplayCache:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._next_purge = 0.0
        self._lock = threading.Lock()

    def check_and_add(self, issuer: str, jti: str, forget_after: float, now: float) -> bool:
        """True if this is the first use; False if the pair was already seen and has not expired."""
        table = _TABLE
        statement = self._insert(table).values(
            issuer=issuer[:MAX_FIELD], jti=jti[:MAX_FIELD], forget_after=forget_after
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.issuer, table.c.jti],
            set_={"forget_after": statement.excluded.forget_after},
            where=table.c.forget_after <= now,
        )
        with self._engine.begin() as connection:
            first_use = connection.execute(statement).rowcount == 1
            if self._purge_due(time.monotonic()):
                connection.execute(delete(table).where(table.c.forget_after <= now))
        return bool(first_use)

    def _purge_due(self, clock: float) -> bool:
        with self._lock:
            if clock < self._next_purge:
                return False
            self._next_purge = clock + PURGE_EVERY_SECONDS
            return True
