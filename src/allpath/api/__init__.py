"""HTTP interfaces of allpath: the REST API (`create_app`), and mounts for the web pages and CDS Hooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from allpath.api.importcache import CachingImporter
from allpath.api.middleware import RequestLimitsMiddleware, SecurityHeadersMiddleware
from allpath.engine import Engine
from allpath.http.csrf import CSRFMiddleware
from allpath.knowledge import KnowledgeBase, load_kb
from allpath.settings import Settings
from allpath.store.context import AppContext

log = logging.getLogger("allpath.api")
__all__ = ["create_app"]

DESCRIPTION = (
    "Cited treatment options for acute lymphoblastic leukemia (ALL), a treatment-course record per patient, "
    "and the plan that record leads to. Decision support and education, not a substitute for the care team. "
    "Authenticate with a bearer token from `POST /auth/token`. Every error is "
    '`{"error": "...", "details": [{"field": "...", "problem": "..."}]}`.'
)


def create_app(
    kb: KnowledgeBase | None = None,
    *,
    database_url: str | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The service: REST API, plus the web pages and CDS Hooks when those packages are present.

    Every setting comes in through `settings` (default: `Settings()`, the embedded defaults;
    the environment is read once at the edge, `Settings.from_env()` in `allpath serve`), the
    CDS Hooks and knowledge ones included. `database_url` overrides the URL. The schema is
    migrated to the latest revision on start unless `settings.database.migrate_on_start` is off.
    """
    from allpath import __version__
    from allpath.api.errors import install_error_handlers
    from allpath.api.routes import admin, auth, fhir, knowledge, patients, recommend
    from allpath.store.migrate import upgrade

    settings = settings or Settings()
    if database_url is not None:
        settings = settings.with_database_url(database_url)
    if settings.auth.insecure_test_password_hash:
        from allpath.store.auth import use_insecure_test_password_hash

        log.warning("ALLPATH_INSECURE_TEST_PASSWORD_HASH is on: passwords hashed at argon2's lowest cost (tests only)")
        use_insecure_test_password_hash()
    context = AppContext.build(settings, kb if kb is not None else load_kb(parameters=settings.knowledge.parameters()))
    if settings.database.migrate_on_start:
        upgrade(context.db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    # FastAPI's own Swagger UI and ReDoc load their scripts from a CDN: off. `/docs` is ours
    # (api/docs.py), with every asset served locally; the document itself is /openapi.json.
    app = FastAPI(
        title="allpath",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.allpath = context
    # Starlette runs the last one added first: limits before CSRF reads a form, headers on every answer.
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        max_header_bytes=settings.http.max_header_bytes,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    install_error_handlers(app)
    # CDS Hooks first: Starlette tries routes in order, and an EHR calls patient-view on every chart
    # opened (trying the API's routes first was some 6% of that call's CPU). No other path starts
    # with /cds-services, so no request is answered by another route than before.
    _mount_cds(app, context)
    for module in (auth, patients, recommend, knowledge, admin, fhir):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "knowledge": context.kb.version}

    from allpath.api.docs import create_docs_router

    if (docs := create_docs_router()) is not None:
        app.include_router(docs)
    _mount_web(app, context)
    return app


def _mount_cds(app: FastAPI, context: AppContext) -> None:
    from allpath.api.cds import CdsConfigError, CdsSettings, create_cds_router
    from allpath.api.cds.auth import JwtVerifier
    from allpath.store.replay import DatabaseReplayCache

    try:
        settings = CdsSettings.from_section(context.settings.cds)
        verifier = None
        if not settings.insecure_dev and not settings.replay_db and settings.jwks is not None:
            # Used tokens are kept in the service database (unless ALLPATH_CDS_REPLAY_DB names a file
            # of their own), so every worker process refuses a token another one accepted.
            verifier = JwtVerifier(
                settings.jwks,
                settings.allowed_issuers,
                leeway_seconds=settings.leeway_seconds,
                replay_cache=DatabaseReplayCache(context.db),
            )
        router = create_cds_router(
            context.recommender, settings, verifier=verifier, importer=cds_importer(context.recommender)
        )
    except CdsConfigError as exc:
        log.warning("CDS Hooks not mounted: %s", exc)
        return
    app.include_router(router)


def cds_importer(engine: Engine) -> CachingImporter:
    """The CDS service's FHIR importer for `engine`'s knowledge base, remembering recent charts."""
    from allpath.fhir import Importer

    return CachingImporter(Importer(engine.kb))


def _mount_web(app: FastAPI, context: AppContext) -> None:
    import allpath.web as web

    web.install(app)
