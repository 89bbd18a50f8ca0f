"""Storage: SQLAlchemy 2 tables, Alembic migrations, and the service API over them.

    make_engine(url) -> Engine               (SQLite in WAL mode, or PostgreSQL via psycopg 3)
    upgrade(engine)                           (migrations shipped in the package)
    Records(session, actor)                   (patients and events, access-checked and audited)
    create_user / authenticate / issue_token / resolve_token
    AppContext (allpath.store.context)        (settings, database engine, KB and engine of a running service)

No module-level engine: every engine comes from `make_engine`. Storage only: no web framework
here (an import-linter contract says so); cookies, CSRF and the per-request session dependency
are `allpath.http`'s.
"""

from allpath.settings import Settings
from allpath.store.db import make_engine, make_sessionmaker
from allpath.store.migrate import upgrade
from allpath.store.service import (
    Actor,
    ConflictError,
    Course,
    EventRecord,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PatientRecord,
    Records,
    StoreError,
)

__all__ = [
    "Actor",
    "ConflictError",
    "Course",
    "EventRecord",
    "ForbiddenError",
    "InvalidInputError",
    "NotFoundError",
    "PatientRecord",
    "Records",
    "Settings",
    "StoreError",
    "make_engine",
    "make_sessionmaker",
    "upgrade",
]
