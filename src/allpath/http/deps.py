"""The service's context and a database session per request, as FastAPI dependencies.

Routes say `session: SessionDep` and `context: ContextDep`; both the API and the web pages use
these, so each is defined once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from allpath.fhir.importer import Importer
from allpath.store.context import AppContext


def get_context(request: Request) -> AppContext:
    return request.app.state.allpath  # type: ignore[no-any-return]


async def db_session(request: Request) -> AsyncIterator[Session]:
    """A session per request (a FastAPI dependency); closed (and any open transaction rolled back) after.

    `async` so that FastAPI spends no thread-pool hops on it (it does two for a sync generator):
    opening a session touches no database, and closing one returns its connection to the pool and
    rolls back a transaction left open, which on SQLite never waits for a lock.
    """
    session = get_context(request).sessions()
    try:
        yield session
    finally:
        session.close()


async def _context(request: Request) -> AppContext:
    # async: a plain lookup, not worth a trip to the thread pool (FastAPI runs sync deps there)
    return get_context(request)


SessionDep = Annotated[Session, Depends(db_session)]
ContextDep = Annotated[AppContext, Depends(_context)]


def fhir_importer(context: AppContext) -> Importer:
    """The service's one FHIR Importer, over its knowledge base (built on first use: construction checks the
    import alerts against the KB). `$apply` and the SMART launch read records with it."""
    importer = context.extra.get("fhir_importer")
    if importer is None:
        importer = context.extra["fhir_importer"] = Importer(context.kb)
    return importer
