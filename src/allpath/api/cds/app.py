"""A standalone app serving only the CDS Hooks endpoints (`allpath serve --cds-only`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from allpath.api.cds.router import create_cds_router
from allpath.api.cds.settings import CdsSettings
from allpath.api.middleware import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    RequestLimitsMiddleware,
    SecurityHeadersMiddleware,
)
from allpath.engine import Engine, default_engine


def create_cds_app(engine: Engine | None = None, settings: CdsSettings | None = None, **router_options: Any) -> FastAPI:
    """The CDS Hooks service as an app; settings default to the environment (`CdsSettings.from_env`)."""
    engine = engine or default_engine()
    settings = settings or CdsSettings.from_env()
    app = FastAPI(
        title="allpath CDS Hooks service",
        version=engine.kb.version,
        description="CDS Hooks 2.0 services for acute lymphoblastic leukemia (ALL).",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(create_cds_router(engine, settings, **router_options))
    limits = _limits()
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=limits[0], max_header_bytes=limits[1])
    app.add_middleware(SecurityHeadersMiddleware)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in err.get("loc", ())) or "$", "problem": str(err.get("msg", "invalid"))}
            for err in exc.errors()
        ]
        return JSONResponse(status_code=400, content={"error": "invalid request", "details": details})

    return app


def _limits() -> tuple[int, int]:
    """`ALLPATH_MAX_BODY_BYTES` and `ALLPATH_MAX_HEADER_BYTES`, as the full service reads them."""
    import os

    def read(name: str, default: int) -> int:
        raw = os.environ.get(name, "").strip()
        try:
            return max(int(raw), 1024) if raw else default
        except ValueError:
            from allpath.api.cds.settings import CdsConfigError

            raise CdsConfigError(f"{name}: must be a whole number of bytes") from None

    return read("ALLPATH_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES), read(
        "ALLPATH_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES
    )
