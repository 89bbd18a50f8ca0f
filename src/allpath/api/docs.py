"""Interactive API docs at `/docs`: Swagger UI, every asset served by the service itself.

The Swagger UI files come from the `fastapi-offline` package (it tracks Swagger UI releases);
the page is ours, because FastAPI's own docs page starts Swagger UI with an inline script, which
the service's Content-Security-Policy (rightly) refuses.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

# Scripts and styles from this service only; Swagger UI fetches /openapi.json (connect-src).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_ASSETS = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css"}
_OWN_ASSETS = {"docs-init.js": "application/javascript", "docs.css": "text/css"}
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>allpath API</title>
  <link rel="stylesheet" href="/docs-assets/swagger-ui.css">
  <link rel="stylesheet" href="/docs-assets/docs.css">
</head>
<body>
  <main id="swagger-ui"></main>
  <script src="/docs-assets/swagger-ui-bundle.js"></script>
  <script src="/docs-assets/docs-init.js"></script>
</body>
</html>
"""


def _swagger_dir() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:
        return None
    return Path(fastapi_offline.__file__).parent / "static"


def create_docs_router() -> APIRouter | None:
    """The `/docs` page and its assets, or None when the Swagger UI files are not installed."""
    swagger = _swagger_dir()
    if swagger is None or not all((swagger / name).is_file() for name in _ASSETS):
        return None
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE, headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})

    @router.get("/docs-assets/{name}")
    def asset(name: str) -> Response:
        if name in _OWN_ASSETS:
            text = (resources.files("allpath.api") / "static" / name).read_text(encoding="utf-8")
            return Response(text, media_type=_OWN_ASSETS[name])
        if name not in _ASSETS:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(
            swagger / name, media_type=_ASSETS[name], headers={"Cache-Control": "public, max-age=86400"}
        )

    return router
