"""Engines and sessions: built by factories, never at import time, so tests and servers pick their own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from allpath.settings import DEFAULT_DATABASE_URL
from allpath.store.writerqueue import WriterQueueConnection, connect_args, lock_path_for

BUSY_TIMEOUT_SECONDS = 30


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the only PostgreSQL driver the project installs)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str | None = None, *, sqlite_synchronous: str = "FULL", echo: bool = False) -> Engine:
    """An engine for `url` (default `sqlite:///./allpath.db`).

    SQLite: WAL journal (readers never block the writer), foreign keys on, a busy timeout
    instead of instant "database is locked" errors. Transactions that change patient data or
    accounts (opened with `durable_session`) commit with `synchronous=sqlite_synchronous`
    (FULL by default: the commit survives a power cut, not only a crash); other transactions
    (the audit row of a read) commit with NORMAL, which in WAL mode survives a crash of the
    process and becomes power-safe with the next durable commit. Transactions start with
    BEGIN IMMEDIATE: one that reads and then writes (every audited read does) takes the write
    lock up front, rather than failing when another writer got in between. Read-only work of one
    statement (token look-ups) runs with no BEGIN at all (`read_only_session`).
    """
    url = normalise_url(url or DEFAULT_DATABASE_URL)
    if is_sqlite(url):
        database = make_url(url).database
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS, **connect_args(database)},
        )
        _configure_sqlite(engine, sqlite_synchronous, lock_path_for(database))
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _configure_sqlite(engine: Engine, synchronous: str, lock_path: str | None) -> None:
    if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"sqlite synchronous: {synchronous!r} is not OFF, NORMAL, FULL or EXTRA")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event own transaction start (the driver's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        if isinstance(dbapi_connection, WriterQueueConnection):
            dbapi_connection.lock_path = lock_path
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        record.info[SYNCHRONOUS_KEY] = "NORMAL"
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(READ_ONLY):
            # No BEGIN at all: the connection is in autocommit mode, and the one SELECT a read-only
            # unit runs is a consistent snapshot by itself (two statements the cost of the SELECT).
            return
        level = synchronous if options.get(DURABLE) else "NORMAL"
        # The level outlives the transaction on the DBAPI connection: set it only when it changes
        # (one statement fewer on nearly every request).
        info = connection.connection.info
        if info.get(SYNCHRONOUS_KEY) != level:
            connection.exec_driver_sql(f"PRAGMA synchronous={level}")
            info[SYNCHRONOUS_KEY] = level
        # Writers take turns (`allpath.store.writerqueue`): a waiting one starts as soon as the last
        # one ends, instead of sleeping in SQLite's busy handler.
        raw = connection.connection.dbapi_connection
        queued = isinstance(raw, WriterQueueConnection) and raw.queue_for_write(BUSY_TIMEOUT_SECONDS)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if queued:
                raw.release_write()
            raise


def make_sessionmaker(engine: Engine, *, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions on `engine`; `info` is copied into each session's `Session.info` (the course cache)."""
    return sessionmaker(bind=engine, expire_on_commit=False, info=info or {})


DURABLE = "allpath_durable"
READ_ONLY = "allpath_read_only"
SYNCHRONOUS_KEY = "allpath_sqlite_synchronous"


def durable_session(session: Session) -> None:
    """Make the session's next transaction a durable one (call before it touches the database)."""
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={DURABLE: True})


def read_only_session(session: Session) -> None:
    """Make the session's next unit a single read: on SQLite no transaction is opened at all (no
    write lock, no BEGIN/COMMIT), so run exactly one statement in it, then commit."""
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={READ_ONLY: True})
