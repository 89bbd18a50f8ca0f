"""Stateless recommendation: facts in, plan out. Nothing is stored."""

from __future__ import annotations

from fastapi import APIRouter

from allpath.api.deps import RecommenderDep
from allpath.api.errors import ERROR_RESPONSES
from allpath.facts import PatientFacts
from allpath.plan import Plan

router = APIRouter(tags=["recommend"], responses={422: ERROR_RESPONSES[422]})


@router.post("/recommend", response_model=Plan)
def recommend(facts: PatientFacts, recommender: RecommenderDep) -> Plan:
    """Cited treatment options for one set of `PatientFacts`."""
    return recommender.recommend(facts)
