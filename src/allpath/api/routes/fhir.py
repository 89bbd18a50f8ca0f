"""FHIR operations over HTTP: the exported PlanDefinition, and `PlanDefinition/{id}/$apply`.

Every answer is FHIR JSON (`application/fhir+json`); every error, an `OperationOutcome` naming
the parameter, with a 4xx status (401 without a bearer token, as on every patient-data route:
`$apply` reads a patient's record). The plan comes from the service's own engine and importer,
the ones the REST API and CDS Hooks use.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from allpath.api.deps import bearer_scheme, get_current_user
from allpath.errors import AllpathError, Problem
from allpath.fhir.apply import PLAN_DEFINITION_ID, apply, operation_outcome
from allpath.fhir.export import plan_definition
from allpath.http.deps import ContextDep, SessionDep, fhir_importer
from allpath.httperrors import http_status

FHIR_JSON = "application/fhir+json"
# Not in the OpenAPI document: FHIR is its own protocol (its errors are OperationOutcome, not the REST
# API's error body), described in docs/cpg.md, like CDS Hooks in docs/cds-hooks.md.
router = APIRouter(prefix="/fhir", tags=["fhir"], include_in_schema=False)


def _fhir(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def _outcome(status: int, message: str, problems: list[Problem], headers: dict[str, str] | None = None) -> JSONResponse:
    return _fhir(operation_outcome(status, message, problems), status, headers)


@router.get("/PlanDefinition/{plan_id}")
def read_plan_definition(plan_id: str, context: ContextDep) -> JSONResponse:
    """The knowledge base as a PlanDefinition, with its Library of FHIRPath fact expressions (no patient data)."""
    if plan_id != PLAN_DEFINITION_ID:
        return _outcome(404, "not found", [Problem("id", f"the only PlanDefinition is {PLAN_DEFINITION_ID!r}")])
    cached = context.extra.get("plan_definition")
    if cached is None:
        cached = context.extra["plan_definition"] = plan_definition(context.kb)
    return _fhir(cached)


@router.post("/PlanDefinition/{plan_id}/$apply")
async def apply_plan_definition(
    plan_id: str,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> JSONResponse:
    """`$apply`: Parameters (`subject`, `data` Bundle) in, a CarePlan with a RequestGroup of proposals out."""
    try:
        await get_current_user(request, session, credentials)
    except HTTPException as exc:
        headers = dict(exc.headers) if exc.headers else None
        return _outcome(exc.status_code, str(exc.detail), [Problem("Authorization", str(exc.detail))], headers)
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _outcome(400, "invalid request", [Problem("Parameters", "the body is not valid JSON")])
    except RecursionError:
        return _outcome(400, "invalid request", [Problem("Parameters", "the body is nested too deeply")])
    try:
        care = await run_in_threadpool(
            apply, context.recommender, fhir_importer(context), plan_id, body, as_of=dt.date.today()
        )
    except AllpathError as exc:
        status = http_status(exc)
        return _outcome(status, exc.message, exc.problems)
    except RecursionError:
        # A resource nested deeper than the validators can walk: bad input, not a server fault.
        return _outcome(400, "invalid request", [Problem("data", "a resource is nested too deeply")])
    return _fhir(care)
