"""Log-in throttling, per account and per client address, kept in the database.

Each failed log-in adds one to the failure count of the account name tried (`user:<name>`, whether
or not such an account exists, so the answer says nothing about that) and of the client address
(`addr:<ip>`). Once a count reaches its limit (`AuthSettings.login_max_failures`, or
`login_address_max_failures`) the key is locked for `login_lock_seconds`, doubled with every
further failure up to `login_lock_max_seconds`. While a key is locked every attempt on it, right
password or not, is refused with 429 and `Retry-After`, without checking the password. A successful
log-in clears the account's count (not the address's: one valid account must not reset a spray).
Counts older than `login_window_seconds` start again from one.

The counters are rows (`login_throttle`), updated by one atomic upsert each, so several worker
processes count the same failures. Every refusal and every lock is audited.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from allpath.errors import TooManyRequestsError
from allpath.facts import Problem
from allpath.settings import AuthSettings
from allpath.store.db import read_only_session
from allpath.store.models import LoginThrottleRow
from allpath.store.service import audit, audit_now, utcnow


class ThrottledError(TooManyRequestsError):
    """Too many failed log-ins for this account or address: answered with `Retry-After` in seconds."""

    def __init__(self, retry_after: int):
        super().__init__(
            "too many failed log-ins; try again later",
            [Problem("username", f"log-in is locked for {retry_after} s after repeated failures")],
            retry_after=retry_after,
        )


@dataclass(frozen=True, slots=True)
class ThrottleKey:
    key: str
    limit: int
    kind: str  # account | address


# A name tried at log-in is any text; control characters (NUL, which PostgreSQL refuses in text) become '?'.
_CONTROL = dict.fromkeys([*range(32), 127], "?")


def keys_for(settings: AuthSettings, username: str, address: str | None) -> list[ThrottleKey]:
    name = username.strip().casefold().translate(_CONTROL)[:64]
    keys = [ThrottleKey("user:" + name, settings.login_max_failures, "account")]
    if address:
        keys.append(
            ThrottleKey("addr:" + address.translate(_CONTROL)[:64], settings.login_address_max_failures, "address")
        )
    return keys


def locked_for(session: Session, keys: list[ThrottleKey], now: dt.datetime | None = None) -> int | None:
    """Seconds until the longest lock among `keys` ends, or None when none is locked."""
    now = now or utcnow()
    read_only_session(session)
    until = session.scalars(
        select(LoginThrottleRow.locked_until).where(
            LoginThrottleRow.key.in_([k.key for k in keys]), LoginThrottleRow.locked_until > now
        )
    ).all()
    session.commit()
    latest = max((u for u in until if u is not None), default=None)
    return max(1, math.ceil((latest - now).total_seconds())) if latest else None


def refuse(session: Session, actor: str, keys: list[ThrottleKey], seconds: int) -> ThrottledError:
    """Audit a refused attempt (in its own transaction) and give the error to raise."""
    audit_now(session, actor, "auth.throttled", None, "denied", f"locked for {seconds} s")
    return ThrottledError(seconds)


def record_failure(session: Session, settings: AuthSettings, actor: str, keys: list[ThrottleKey]) -> None:
    """Count one failed log-in against every key; lock (and audit) those that reach their limit."""
    now = utcnow()
    window_start = now - dt.timedelta(seconds=settings.login_window_seconds)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for key in keys:
        statement = insert(LoginThrottleRow).values(key=key.key, failures=1, last_failure_at=now, locked_until=None)
        excluded = statement.excluded
        counted = session.execute(
            statement.on_conflict_do_update(
                index_elements=[LoginThrottleRow.key],
                set_={
                    # A count whose last failure is older than the window (and no longer locked) starts again.
                    "failures": case(
                        (
                            and_(
                                LoginThrottleRow.last_failure_at < window_start,
                                or_(LoginThrottleRow.locked_until.is_(None), LoginThrottleRow.locked_until <= now),
                            ),
                            1,
                        ),
                        else_=LoginThrottleRow.failures + 1,
                    ),
                    "last_failure_at": excluded.last_failure_at,
                },
            ).returning(LoginThrottleRow.failures)
        ).scalar_one()
        if counted >= key.limit:
            seconds = min(
                settings.login_lock_max_seconds, settings.login_lock_seconds * 2 ** min(counted - key.limit, 20)
            )
            session.execute(
                update(LoginThrottleRow)
                .where(LoginThrottleRow.key == key.key)
                .values(locked_until=now + dt.timedelta(seconds=seconds))
            )
            audit(
                session,
                actor,
                "auth.lock",
                None,
                "denied",
                f"{key.kind} locked for {seconds} s after {counted} failures",
            )
    # Forget counts nobody has added to for a long time (they would start again from one anyway).
    stale = now - dt.timedelta(seconds=settings.login_window_seconds + settings.login_lock_max_seconds)
    session.execute(delete(LoginThrottleRow).where(LoginThrottleRow.last_failure_at < stale))
    session.commit()


def clear(session: Session, key: ThrottleKey) -> None:
    session.execute(delete(LoginThrottleRow).where(LoginThrottleRow.key == key.key))
    session.commit()
