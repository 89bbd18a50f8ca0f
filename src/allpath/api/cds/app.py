"""A standalone app serving only the CDS Hooks endpoints (`allpath serve --cds-only`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from allpath.api.cds.router import create_cds_router
from allpath.api.cds.settings import CdsSettings
from allpath.api.errors import install_error_handlers
from allpath.api.middleware import RequestLimitsMiddleware, SecurityHeadersMiddleware
from allpath.engine import Engine, default_engine
from allpath.settings import HttpSettings


def create_cds_app(
    engine: Engine | None = None,
    settings: CdsSettings | None = None,
    *,
    http: HttpSettings | None = None,
    **router_options: Any,
) -> FastAPI:
    """The CDS Hooks service as an app. Nothing is read from the environment here: without
    `settings` authentication is unconfigured, so this refuses (`CdsConfigError`)."""
    engine = engine or default_engine()
    settings = settings or CdsSettings()
    http = http or HttpSettings()
    app = FastAPI(
        title="allpath CDS Hooks service",
        version=engine.kb.version,
        description="CDS Hooks 2.0 services for acute lymphoblastic leukemia (ALL).",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(create_cds_router(engine, settings, **router_options))
    app.add_middleware(
        RequestLimitsMiddleware, max_body_bytes=http.max_body_bytes, max_header_bytes=http.max_header_bytes
    )
    app.add_middleware(SecurityHeadersMiddleware)
    # The same handlers as the full API, where this router is mounted too, so a CDS endpoint answers
    # alike on both. The router reads each body itself and answers a malformed one with 400
    # (BadRequestError); its routes declare no parameter FastAPI could reject, so the shared 422
    # for a RequestValidationError is never reached here.
    install_error_handlers(app)
    return app
