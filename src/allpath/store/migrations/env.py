"""Alembic environment. Migrations run programmatically (`allpath.store.migrate.upgrade`), on the
connection the caller hands over, so the same code serves SQLite, PostgreSQL and tests."""

from __future__ import annotations

from alembic import context

from allpath.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by running the alembic CLI directly
    raise RuntimeError("run migrations with `allpath db upgrade` (allpath.store.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
