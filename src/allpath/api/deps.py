"""Dependencies, as `Annotated` aliases: routes say `session: SessionDep, user: CurrentUser`.

The session and context ones come from `allpath.http.deps` (shared with the web pages); the
bearer-token user and the records, KB and engine ones are the API's own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from allpath.engine import Engine
from allpath.http.deps import ContextDep, SessionDep
from allpath.knowledge import KnowledgeBase
from allpath.store.auth import resolve_token
from allpath.store.service import Actor, Records, audit_now

bearer_scheme = HTTPBearer(auto_error=False, description="A token from POST /auth/token.")

# `SessionDep` and `ContextDep` are `allpath.http.deps`'s, shared with the web pages.
__all__ = [
    "ContextDep",
    "CurrentUser",
    "KnowledgeDep",
    "RecommenderDep",
    "RecordsDep",
    "SessionDep",
    "bearer_scheme",
]


# The dependencies below are `async def` on purpose. FastAPI runs every plain `def` dependency in
# the thread pool, one hop each, and those hops cost more CPU than the work they wrap: a token
# look-up is one indexed read in a deferred (lock-free, never waiting) transaction. The route
# itself stays `def`, so the audited read and the engine run in a single thread-pool hop. Writes
# (the audit row of a denial) still go to the thread pool: they may wait for the write lock.


async def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Actor:
    user = resolve_token(session, credentials.credentials, "bearer") if credentials else None
    if user is None:
        patient_id = request.path_params.get("patient_id")
        # The denial's audit row is a write, which may wait for SQLite's write lock: not on the loop.
        action = f"{request.method} {request.url.path}"[:64]
        await run_in_threadpool(audit_now, session, "anonymous", action, patient_id, "denied", "no token")
        raise HTTPException(401, "not authenticated: send a bearer token", headers={"WWW-Authenticate": "Bearer"})
    return user.actor()


CurrentUser = Annotated[Actor, Depends(get_current_user)]


async def get_records(session: SessionDep, user: CurrentUser) -> Records:
    return Records(session, user)


RecordsDep = Annotated[Records, Depends(get_records)]


async def get_kb(context: ContextDep) -> KnowledgeBase:
    return context.kb


async def get_recommender(context: ContextDep) -> Engine:
    return context.recommender


KnowledgeDep = Annotated[KnowledgeBase, Depends(get_kb)]
RecommenderDep = Annotated[Engine, Depends(get_recommender)]
