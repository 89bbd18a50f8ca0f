"""The errors allpath raises on purpose: one base carrying `.problems`, one subclass per kind of failure.

A caller decides what happened by the type, never by the wording: the message is for people
and may change. Each adapter turns a type into its own answer (an HTTP status through the one
table in `allpath.httperrors`, a CLI exit code), so no error here knows about HTTP.
Standard library only: this sits under the core.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, named by its field (dotted path for nested input)."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


def field_path(loc: Iterable[Any], start: str = "") -> str:
    """A validation error's location as a problem's field: `("agents", 3, "codes")` -> `agents[3].codes`.

    `start` is a prefix the path continues (`Bundle.entry[3]` + `("meta",)` -> `Bundle.entry[3].meta`);
    with no prefix and no location the path is `$`, the input as a whole. The one formatter for every
    place that names a field from a pydantic location (facts, the knowledge loader, the FHIR importer).
    """
    out = start
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


class AllpathError(Exception):
    """Base of every deliberate error. `message` is the one-line summary an HTTP body's `error` shows;
    `problems` name each fault (field and problem), never just the first.

    Without a message the class's `title` is the summary and the problems are the exception text,
    which is what a CLI prints.
    """

    title: ClassVar[str] = "request failed"

    def __init__(self, message: str | None = None, problems: Iterable[Problem] = ()):
        self.problems = list(problems)
        self.message = message if message is not None else self.title
        text = message if message is not None else "; ".join(str(p) for p in self.problems)
        super().__init__(text or self.title)


# ValueError stays in the MRO of the input errors: code outside allpath catches them as such.
class BadInputError(AllpathError, ValueError):
    """The input cannot be used as it stands (a client error: 422 over HTTP)."""

    title = "invalid input"


class BadRequestError(BadInputError):
    """A protocol message that is malformed, where the protocol asks for 400 (CDS Hooks)."""

    title = "invalid request"


class NotAnAllPatientError(BadInputError):
    """The record holds no diagnosis of ALL: there is nothing for allpath to advise on.

    Its own type so a CDS service answers with no cards by type, not by matching a message.
    """

    title = "not an ALL patient"


class CourseConflictError(BadInputError):
    """An event the course so far cannot accept (a relapse before remission): bad input, not a stale write."""

    title = "event not possible now"


class UnsupportedLanguageError(BadInputError):
    """A language allpath has no patient-facing texts in (the knowledge base, the labels)."""

    title = "language not supported"


class RecordNotFoundError(AllpathError):
    """No such record, or not one this caller may see (the two are not told apart)."""

    title = "not found"


class NotAllowedError(AllpathError):
    """The caller is known but may not take this action."""

    title = "forbidden"


class UnauthenticatedError(AllpathError):
    """The caller is not known: no credentials, or credentials that do not verify."""

    title = "unauthorized"


class RecordConflictError(AllpathError):
    """The request clashes with the current state of a record."""

    title = "conflict"


class StaleWriteError(RecordConflictError):
    """A write based on a version of the record that is no longer current."""

    title = "stale version"


class TooManyRequestsError(AllpathError):
    """Too many attempts; `retry_after` seconds until the next may succeed."""

    title = "too many requests"

    def __init__(self, message: str | None = None, problems: Iterable[Problem] = (), *, retry_after: int = 1):
        super().__init__(message, problems)
        self.retry_after = retry_after


class UnavailableError(AllpathError):
    """Data this answer needs cannot be obtained now (an upstream server failed or refused)."""

    title = "data unavailable"


class ConfigurationError(AllpathError, ValueError):
    """The deployment is misconfigured (settings, knowledge packs): found at start-up, not per request."""

    title = "service misconfigured"


class KnowledgeBaseError(ConfigurationError):
    """The knowledge packs are malformed or do not fit together."""

    title = "knowledge base invalid"
