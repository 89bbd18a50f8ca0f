"""The one table from error type to HTTP status, for every HTTP adapter: REST, the web pages, CDS Hooks.

The errors themselves (`allpath.errors`) know nothing of HTTP; the adapters look a status up
here by type, so a 404 in the API and a 404 page in the browser cannot drift apart. It sits
below `allpath.web` (which may not import `allpath.api`) and imports only `allpath.errors`.
"""

from __future__ import annotations

from allpath.errors import (
    AllpathError,
    BadInputError,
    BadRequestError,
    ConfigurationError,
    NotAllowedError,
    RecordConflictError,
    RecordNotFoundError,
    TooManyRequestsError,
    UnauthenticatedError,
    UnavailableError,
)

# Looked up along the MRO, so a subclass takes its nearest listed ancestor's status. `AllpathError`
# itself is deliberately absent: a new kind of error must be placed here, not default to something.
HTTP_STATUS: dict[type[AllpathError], int] = {
    BadInputError: 422,
    BadRequestError: 400,
    UnauthenticatedError: 401,
    NotAllowedError: 403,
    RecordNotFoundError: 404,
    RecordConflictError: 409,
    UnavailableError: 412,
    TooManyRequestsError: 429,
    # Found at start-up; if one ever surfaces in a request, the service is not in a state to answer.
    ConfigurationError: 503,
}


def http_status(error: AllpathError | type[AllpathError]) -> int:
    """The HTTP status for an error (or error class): that of its nearest ancestor in `HTTP_STATUS`."""
    cls = error if isinstance(error, type) else type(error)
    for klass in cls.__mro__:
        if klass in HTTP_STATUS:
            return HTTP_STATUS[klass]
    raise LookupError(f"{cls.__name__} has no HTTP status: add it (or an ancestor) to HTTP_STATUS")


def retry_headers(error: AllpathError) -> dict[str, str] | None:
    """`Retry-After` for a throttled request, nothing otherwise."""
    if isinstance(error, TooManyRequestsError):
        return {"Retry-After": str(error.retry_after)}
    return None
