"""What a running service holds: settings, the database engine, the knowledge base and the
recommendation engine. Built once by `create_app` and kept at `app.state.allpath`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine as SqlEngine
from sqlalchemy.orm import Session, sessionmaker

from allpath.engine import Engine
from allpath.knowledge import KnowledgeBase
from allpath.settings import Settings
from allpath.store.cache import COURSE_CACHE, LruCache
from allpath.store.db import make_engine, make_sessionmaker

# Courses kept per process (each a few kB): every open chart's latest version, many times over.
COURSE_CACHE_SIZE = 4096
PLAN_CACHE_SIZE = 4096


@dataclass
class AppContext:
    settings: Settings
    db: SqlEngine
    sessions: sessionmaker[Session]
    kb: KnowledgeBase
    recommender: Engine
    extra: dict[str, Any]
    # Keyed by (patient id, record version, as_of): see `allpath.store.cache`.
    courses: LruCache[Any]
    plans: LruCache[bytes]

    @classmethod
    def build(cls, settings: Settings, kb: KnowledgeBase, recommender: Engine | None = None) -> AppContext:
        db = make_engine(settings.database.url, sqlite_synchronous=settings.database.sqlite_synchronous)
        courses: LruCache[Any] = LruCache(COURSE_CACHE_SIZE)
        return cls(
            settings=settings,
            db=db,
            sessions=make_sessionmaker(db, info={COURSE_CACHE: courses}),
            kb=kb,
            recommender=recommender or Engine(kb),
            extra={},
            courses=courses,
            plans=LruCache(PLAN_CACHE_SIZE),
        )

    def close(self) -> None:
        self.db.dispose()
