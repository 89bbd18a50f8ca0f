"""Read-only views of the knowledge base, and search over it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from allpath.api.deps import KnowledgeDep
from allpath.api.errors import ERROR_RESPONSES
from allpath.api.models import SearchHitPublic
from allpath.http.deps import get_context
from allpath.knowledge.schema import Agent, Phase, Source, Topic
from allpath.store.kbsearch import knowledge_index

router = APIRouter(prefix="/knowledge", tags=["knowledge"], responses={404: ERROR_RESPONSES[404]})


@router.get("/agents", response_model=list[Agent])
def agents(kb: KnowledgeDep) -> list[Agent]:
    return list(kb.agents.values())


@router.get("/agents/{agent_id}", response_model=Agent)
def agent(agent_id: str, kb: KnowledgeDep) -> Agent:
    if agent_id not in kb.agents:
        raise HTTPException(404, f"no agent {agent_id!r}")
    return kb.agents[agent_id]


@router.get("/phases", response_model=list[Phase])
def phases(kb: KnowledgeDep) -> list[Phase]:
    return list(kb.phases.values())


@router.get("/topics", response_model=list[Topic])
def topics(kb: KnowledgeDep) -> list[Topic]:
    return list(kb.topics.values())


@router.get("/sources", response_model=list[Source])
def sources(kb: KnowledgeDep) -> list[Source]:
    return list(kb.sources.values())


# The kinds `SearchHitPublic.kind` names; rules are searched by the web pages only.
API_SEARCH_KINDS = ("agent", "phase", "topic", "source")


@router.get("/search", response_model=list[SearchHitPublic], responses={422: ERROR_RESPONSES[422]})
def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words to look for.")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    lang: Annotated[
        str, Query(max_length=16, description="Language of the words and of the entries found: en or es.")
    ] = "en",
) -> list[SearchHitPublic]:
    """Agents, phases, topics and sources matching the words, best first, in the language asked."""
    hits = knowledge_index(get_context(request)).search(q, limit, kinds=API_SEARCH_KINDS, lang=lang)
    return [SearchHitPublic(kind=h.kind, id=h.id, title=h.title, snippet=h.snippet_text(), score=h.score) for h in hits]
