"""HTTP plumbing shared by the REST API (`allpath.api`) and the web pages (`allpath.web`).

Below both in the layers, above storage: the framework (FastAPI, Starlette) stops here, so
`allpath.store` holds storage only.

    allpath.http.deps       get_context(request), db_session (a DB session per request), SessionDep, ContextDep
    allpath.http.cookies    the cookie names and attributes (Secure over https or when configured)
    allpath.http.sessions   browser sessions: log in, log out, the user of a session cookie
    allpath.http.csrf       CSRF tokens for forms, `CSRFMiddleware`, `CSRFError` (a `NotAllowedError`: 403)
"""
