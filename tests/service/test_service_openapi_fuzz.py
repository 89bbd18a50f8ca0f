"""schemathesis over the published OpenAPI spec: no 5xx, and every 4xx carries the JSON error body."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.service.conftest import new_patient, post_event


@pytest.fixture(scope="session")
def fuzz_context(
    app: FastAPI, client: TestClient, make_user: Callable[..., str], login: Callable[[str], dict[str, str]]
) -> dict[str, object]:
    headers = login(make_user("clinician"))
    patient_id = new_patient(client, headers)
    post_event(client, headers, patient_id, type="diagnosed", date="2025-01-10", lineage="B")
    return {"headers": headers, "patient_id": patient_id}


def _check(case, fuzz_context) -> None:  # type: ignore[no-untyped-def]
    if "patient_id" in (case.path_parameters or {}) and hash(str(case.body)) % 2 == 0:
        # A real record half of the time, so the fuzzing reaches past the 404.
        case.path_parameters["patient_id"] = fuzz_context["patient_id"]
    response = case.call(headers=dict(fuzz_context["headers"]))
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if 400 <= response.status_code < 500:
        content_type = response.headers.get("content-type") or [""]
        assert content_type[0].startswith("application/json"), f"{where}: {response.text}"
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"], f"{where}: {body}"
        assert isinstance(body.get("details"), list), f"{where}: {body}"
        for detail in body["details"]:
            assert set(detail) == {"field", "problem"}, f"{where}: {body}"


# Valid and invalid inputs in tests of their own, so that neither runs long.
@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_server_error_and_every_4xx_has_the_error_body(
    app: FastAPI, fuzz_context: dict[str, object], mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            _check(case, fuzz_context)

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid (no parameters, no body): the valid run covers it.
            assert mode is GenerationMode.NEGATIVE, operation.path
