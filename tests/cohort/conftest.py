"""Shared helpers for the cohort tests: one SparkSession per test session, Python-engine answers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """Local Spark, started once (tests that use it share an xdist group, hence one worker)."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: Spark needs a JVM")
    from allpath.cohort.evaluate import spark_session

    session = spark_session()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
