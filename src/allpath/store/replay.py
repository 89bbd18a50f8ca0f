"""The CDS Hooks replay cache in the service database (`cds_jti`), shared by every worker process.

`allpath.api.cds.auth.JwtVerifier` asks its replay store `check_and_add(issuer, jti, forget_after,
now)`: True the first time a pair is seen (or once its earlier use has expired), False for a
replay. Here that is one atomic upsert in its own transaction: a new pair is inserted, an expired
one taken over, a live one left alone, and whether a row comes back (RETURNING) says which. So a token accepted
by one worker is refused by every other, and after a restart. Rows are purged once they expire.
"""

from __future__ import annotations

import threading
import time
from typing import cast

from sqlalchemy import Engine, Table, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from allpath.store.models import CdsJtiRow

_TABLE = cast(Table, CdsJtiRow.__table__)
PURGE_EVERY_SECONDS = 60.0
# Longer values could not be a real CDS token (8 KB at most, checked before) but must not fail the insert.
MAX_FIELD = 512


class DatabaseReplayCache:
    def __init__(self, engine: Engine):
        self._engine = engine
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # Built once: a statement made on every call would be keyed and looked up in the compiled cache each time.
        statement = insert(_TABLE).values(
            issuer=bindparam("issuer"), jti=bindparam("jti"), forget_after=bindparam("forget_after")
        )
        self._upsert = statement.on_conflict_do_update(
            index_elements=[_TABLE.c.issuer, _TABLE.c.jti],
            set_={"forget_after": statement.excluded.forget_after},
            where=_TABLE.c.forget_after <= bindparam("now"),
        ).returning(_TABLE.c.jti)
        self._purge = delete(_TABLE).where(_TABLE.c.forget_after <= bindparam("now"))
        self._next_purge = 0.0
        self._lock = threading.Lock()

    def check_and_add(self, issuer: str, jti: str, forget_after: float, now: float) -> bool:
        """True if this is the first use; False if the pair was already seen and has not expired."""
        values = {"issuer": issuer[:MAX_FIELD], "jti": jti[:MAX_FIELD], "forget_after": forget_after, "now": now}
        with self._engine.begin() as connection:
            # A row comes back when it was inserted or taken over; none when a live one was left alone.
            first_use = connection.execute(self._upsert, values).first() is not None
            if self._purge_due(time.monotonic()):
                connection.execute(self._purge, {"now": now})
        return bool(first_use)

    def _purge_due(self, clock: float) -> bool:
        with self._lock:
            if clock < self._next_purge:
                return False
            self._next_purge = clock + PURGE_EVERY_SECONDS
            return True
