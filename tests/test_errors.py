"""Every deliberate error has an HTTP status by its type, and the table holds no 500s."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import allpath
from allpath.errors import AllpathError, BadInputError, NotAnAllPatientError, RecordNotFoundError
from allpath.httperrors import HTTP_STATUS, http_status


def _all_error_classes() -> list[type[AllpathError]]:
    # Importing every module registers every subclass, wherever it is defined.
    for module in pkgutil.walk_packages(allpath.__path__, "allpath."):
        if ".migrations" in module.name:  # alembic scripts run only under alembic
            continue
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError:  # an optional extra (pyspark, playwright) not installed here
            continue
    found, todo = [], [AllpathError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("allpath."):  # not the throwaway classes of the tests below
                found.append(sub)
            todo.append(sub)
    return found


def test_every_error_class_has_a_status_and_none_is_a_500() -> None:
    classes = _all_error_classes()
    assert len(classes) > 20  # the store, CDS, FHIR and course errors are all found
    statuses = {cls.__qualname__: http_status(cls) for cls in classes}
    assert all(400 <= s < 500 or s == 503 for s in statuses.values()), statuses
    assert 500 not in HTTP_STATUS.values()


def test_an_error_outside_the_table_is_refused_rather_than_guessed() -> None:
    class UnplacedError(AllpathError):
        pass

    with pytest.raises(LookupError, match="UnplacedError"):
        http_status(UnplacedError)


def test_a_subclass_takes_the_status_of_its_nearest_listed_ancestor() -> None:
    class MissingError(RecordNotFoundError, BadInputError):
        pass

    assert http_status(MissingError) == 404
    assert http_status(NotAnAllPatientError) == 422
