"""`allpath.http`: the HTTP plumbing below the API and the web pages."""

from __future__ import annotations

from allpath.errors import NotAllowedError
from allpath.http.csrf import CSRF_FIELD, CSRFError
from allpath.httperrors import http_status


def test_a_csrf_error_is_a_403_not_allowed_error_with_the_middlewares_wording() -> None:
    error = CSRFError()
    assert isinstance(error, NotAllowedError)
    assert http_status(error) == 403
    assert error.message == "CSRF token is missing or does not match"
    assert [p.as_dict() for p in error.problems] == [{"field": CSRF_FIELD, "problem": "is missing or does not match"}]
