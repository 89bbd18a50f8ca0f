"""Server-rendered pages: clinician and family views, the knowledge browser, the timeline picture, and the
SMART on FHIR EHR launch (`allpath.web.smart`, mounted when `settings.smart` is complete).

`install(app)` (called by `allpath.api.create_app`) mounts the pages and builds the knowledge
search index at start-up; `create_web_router()` is the bare router.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_web_router", "install"]


def create_web_router() -> Any:
    from allpath.web.family_routes import create_family_router
    from allpath.web.routes import create_web_router as create

    router = create()
    router.include_router(create_family_router())
    return router


def install(app: Any) -> None:
    """Mount the pages on a `create_app` service and build the search index now, not on first use."""
    from allpath.store.kbsearch import knowledge_index
    from allpath.web.logfilter import install_filter
    from allpath.web.routes import error_page_for

    install_filter()  # calendar-link secrets never reach the access log
    app.include_router(create_web_router())
    # The API's error handlers answer a browser with this page instead of JSON (api/errors.py).
    app.state.html_error = error_page_for
    if app.state.allpath.settings.smart.enabled():
        from allpath.web.smart import create_smart_router

        app.include_router(create_smart_router())
    knowledge_index(app.state.allpath)
