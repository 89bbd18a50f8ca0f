"""Feedback from the EHR: which cards were accepted or overridden, and why.

Parsing follows the CDS Hooks 2.0 feedback body; storage sits behind `FeedbackStore`, with an
in-memory store (default) and a SQLite one (`ALLPATH_CDS_FEEDBACK_DB`). Only card and suggestion
ids, outcomes, reasons and times are kept: the body carries no patient identifiers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from allpath.api.cds.validate import is_uuid
from allpath.errors import BadRequestError
from allpath.facts import Problem, ProblemsError

OUTCOMES = frozenset({"accepted", "overridden"})


class FeedbackError(ProblemsError, BadRequestError):
    """A feedback request the service cannot store (each problem names its element)."""


@dataclass(frozen=True)
class FeedbackRecord:
    service_id: str
    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...] = ()
    override_system: str | None = None
    override_code: str | None = None
    override_display: str | None = None
    user_comment: str | None = None
    rule_id: str | None = None
    received_at: str = ""


class FeedbackStore(Protocol):
    def add(self, records: list[FeedbackRecord]) -> None: ...

    def list(self, service_id: str | None = None) -> list[FeedbackRecord]: ...


class InMemoryFeedbackStore:
    def __init__(self) -> None:
        self._records: list[FeedbackRecord] = []
        self._lock = threading.Lock()

    def add(self, records: list[FeedbackRecord]) -> None:
        with self._lock:
            self._records.extend(records)

    def list(self, service_id: str | None = None) -> list[FeedbackRecord]:
        with self._lock:
            return [r for r in self._records if service_id is None or r.service_id == service_id]


_COLUMNS = (
    "service_id",
    "card",
    "outcome",
    "outcome_timestamp",
    "accepted_suggestions",
    "override_system",
    "override_code",
    "override_display",
    "user_comment",
    "rule_id",
    "received_at",
)


class SqliteFeedbackStore:
    """Feedback kept in one SQLite table; safe to share between threads of one process."""

    def __init__(self, path: str):
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS cds_feedback ("
                "id INTEGER PRIMARY KEY AUTOINCREMENT, service_id TEXT NOT NULL, card TEXT NOT NULL, "
                "outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')), "
                "outcome_timestamp TEXT NOT NULL, accepted_suggestions TEXT NOT NULL, override_system TEXT, "
                "override_code TEXT, override_display TEXT, user_comment TEXT, rule_id TEXT, received_at TEXT NOT NULL)"
            )

    def add(self, records: list[FeedbackRecord]) -> None:
        rows = [
            (
                r.service_id,
                r.card,
                r.outcome,
                r.outcome_timestamp,
                " ".join(r.accepted_suggestions),
                r.override_system,
                r.override_code,
                r.override_display,
                r.user_comment,
                r.rule_id,
                r.received_at,
            )
            for r in records
        ]
        with self._lock, self._conn:
            self._conn.executemany(
                f"INSERT INTO cds_feedback ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})", rows
            )

    def list(self, service_id: str | None = None) -> list[FeedbackRecord]:
        query = f"SELECT {', '.join(_COLUMNS)} FROM cds_feedback"
        params: tuple[str, ...] = ()
        if service_id is not None:
            query += " WHERE service_id = ?"
            params = (service_id,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", params).fetchall()
        out = []
        for row in rows:
            values = dict(zip(_COLUMNS, row, strict=True))
            values["accepted_suggestions"] = tuple(values["accepted_suggestions"].split())
            out.append(FeedbackRecord(**values))
        return out

    def close(self) -> None:
        self._conn.close()


def _timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def parse_feedback(data: Any, service_id: str, rule_of: Mapping[str, str] | None = None) -> list[FeedbackRecord]:
    """Validate a feedback body; raise `FeedbackError` naming every faulty field."""
    if not isinstance(data, Mapping) or not isinstance(data.get("feedback"), list) or not data["feedback"]:
        raise FeedbackError([Problem("feedback", "is required (a non-empty array)")])
    rule_of = rule_of or {}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    out: list[Problem] = []
    records: list[FeedbackRecord] = []
    for index, item in enumerate(data["feedback"]):
        path = f"feedback[{index}]"
        if not isinstance(item, Mapping):
            out.append(Problem(path, "must be an object"))
            continue
        before = len(out)
        card = item.get("card")
        if not is_uuid(card):
            out.append(Problem(f"{path}.card", "is required (the card's uuid)"))
        outcome = item.get("outcome")
        if outcome not in OUTCOMES:
            out.append(Problem(f"{path}.outcome", "must be accepted or overridden"))
        if not _timestamp(item.get("outcomeTimestamp")):
            out.append(Problem(f"{path}.outcomeTimestamp", "is required (an ISO 8601 timestamp)"))
        accepted: list[str] = []
        suggestions = item.get("acceptedSuggestions")
        if outcome == "accepted" and not suggestions:
            out.append(Problem(f"{path}.acceptedSuggestions", "is required when the outcome is accepted"))
        if suggestions is not None:
            if not isinstance(suggestions, list):
                out.append(Problem(f"{path}.acceptedSuggestions", "must be an array"))
            else:
                for sindex, suggestion in enumerate(suggestions):
                    sid = suggestion.get("id") if isinstance(suggestion, Mapping) else None
                    if not is_uuid(sid):
                        out.append(Problem(f"{path}.acceptedSuggestions[{sindex}].id", "must be a suggestion uuid"))
                    else:
                        accepted.append(str(sid))
        reason = item.get("overrideReason")
        system = code = display = comment = None
        if reason is not None:
            if outcome != "overridden":
                out.append(Problem(f"{path}.overrideReason", "is only allowed when the outcome is overridden"))
            if not isinstance(reason, Mapping):
                out.append(Problem(f"{path}.overrideReason", "must be an object"))
            else:
                coding = reason.get("reason")
                if coding is not None:
                    if not isinstance(coding, Mapping) or not isinstance(coding.get("code"), str):
                        out.append(Problem(f"{path}.overrideReason.reason", "must be a Coding with a code"))
                    else:
                        system, code = coding.get("system"), coding["code"]
                        display = coding.get("display") if isinstance(coding.get("display"), str) else None
                if "userComment" in reason:
                    if not isinstance(reason["userComment"], str):
                        out.append(Problem(f"{path}.overrideReason.userComment", "must be a string"))
                    else:
                        comment = reason["userComment"]
        if len(out) > before:
            continue
        records.append(
            FeedbackRecord(
                service_id=service_id,
                card=str(card),
                outcome=str(outcome),
                outcome_timestamp=str(item["outcomeTimestamp"]),
                accepted_suggestions=tuple(accepted),
                override_system=system if isinstance(system, str) else None,
                override_code=code,
                override_display=display,
                user_comment=comment,
                rule_id=rule_of.get(str(card)),
                received_at=now,
            )
        )
    if out:
        raise FeedbackError(out)
    return records
