"""Stateless recommendation: facts in, plan out. Nothing is stored."""

from __future__ import annotations

from fastapi import APIRouter, Response

from allpath.api.deps import RecommenderDep
from allpath.api.errors import ERROR_RESPONSES
from allpath.facts import PatientFacts
from allpath.plan import Plan

router = APIRouter(tags=["recommend"], responses={422: ERROR_RESPONSES[422]})


@router.post("/recommend", response_model=Plan)
async def recommend(facts: PatientFacts, recommender: RecommenderDep) -> Response:
    """Cited treatment options for one set of `PatientFacts`."""
    # No I/O, microseconds of work: run on the event loop, and serialise once (the plan is
    # already valid; FastAPI's response_model pass would validate and copy it again).
    return Response(recommender.recommend(facts).model_dump_json(), media_type="application/json")
