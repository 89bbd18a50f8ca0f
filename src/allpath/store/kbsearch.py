"""Full-text search over the knowledge base (SQLite FTS5, in memory, built once per KB).

Agents, phases, topics and sources become documents; the Porter stemmer lets "losing hair"
find "hair loss", aliases and keywords let "spinal tap" find CNS prophylaxis. Ranking is
BM25 with the title weighted above the body. Uses the standard library's sqlite3 only, so
it works the same whatever database the service stores records in.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass

from allpath.knowledge import KnowledgeBase

# Words that say nothing about which entry is meant ("what is maintenance").
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "should",
        "the",
        "their",
        "there",
        "this",
        "to",
        "us",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: str  # agent | phase | topic | source
    id: str
    title: str
    snippet: str
    score: float


class KnowledgeIndex:
    """An FTS5 index of one knowledge base. Thread-safe (one connection, one lock)."""

    def __init__(self, kb: KnowledgeBase):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5(kind UNINDEXED, id UNINDEXED, title, keywords, body, "
            "tokenize='porter unicode61')"
        )
        self._db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?)", list(_documents(kb)))
        self._db.commit()

    def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        words = [w.lower() for w in _WORD.findall(query)]
        terms = [w for w in words if w not in STOPWORDS] or words
        if not terms:
            return []
        # Quoted terms: user text can never be read as FTS5 syntax.
        match = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, id, title, snippet(docs, 4, '', '', ' … ', 16), bm25(docs, 0, 0, 10.0, 5.0, 1.0) AS rank "
                "FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?",
                (match, max(1, min(limit, 100))),
            ).fetchall()
        return [SearchHit(kind, id_, title, snippet, -score) for kind, id_, title, snippet, score in rows]


def _documents(kb: KnowledgeBase) -> list[tuple[str, str, str, str, str]]:
    docs: list[tuple[str, str, str, str, str]] = []
    for a in kb.agents.values():
        keywords = " ".join([a.name, *a.brand_names, a.drug_class, *a.used_in])
        docs.append(("agent", a.id, a.name, keywords, " ".join(filter(None, [a.summary, a.note]))))
    for p in kb.phases.values():
        docs.append(("phase", p.id, p.name, " ".join(p.aliases), " ".join([p.timing, p.goal, p.setting, *p.facts])))
    for t in kb.topics.values():
        docs.append(("topic", t.id, t.title, " ".join(t.keywords), " ".join([t.summary, *t.points])))
    for s in kb.sources.values():
        docs.append(("source", s.id, s.title, s.publisher, " ".join(s.sections)))
    return docs
