"""Full-text search over the knowledge base: an SQLite FTS5 index built in memory at start-up.

Every topic, phase, agent and rule becomes one document. Titles, aliases and keywords weigh
more than body text, so "spinal tap" finds the phase whose alias it is before a rule that
merely mentions it. Queries are plain words; FTS5 syntax typed by a user is never passed
through (a stray quote or `NEAR` must not become a 500).
"""

from __future__ import annotations

import html
import re
import sqlite3
import threading
from dataclasses import dataclass

from allpath.knowledge.loader import KnowledgeBase
from allpath.knowledge.schema import AlertRule, NotRecommendedRule

# Words that carry no meaning in a question ("what is maintenance"); dropping them keeps
# bm25 from rewarding documents that happen to say "is" often.
_STOPWORD_TEXT = """a an and are as at be by can do does for from how i in is it its me my of on or so that the
    this to was what when where which who why will with you your"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
KIND_LABELS = {"topic": "Topic", "phase": "Treatment phase", "agent": "Medicine", "rule": "Treatment option"}
# bm25 column weights, in the column order of the table below: title, aliases, keywords, body.
WEIGHTS = (10.0, 8.0, 5.0, 1.0)
_TOKEN = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True, slots=True)
class Document:
    kind: str  # topic | phase | agent | rule
    id: str
    title: str
    aliases: str
    keywords: str
    body: str

    @property
    def anchor(self) -> str:
        return f"{self.kind}-{self.id}"

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass(frozen=True, slots=True)
class Hit:
    document: Document
    snippet: str  # matched words wrapped in \x02 ... \x03; see `snippet_html`
    score: float

    def snippet_html(self) -> str:
        """The snippet, HTML-escaped, with matched words in <mark>."""
        escaped = html.escape(self.snippet)
        return escaped.replace("\x02", "<mark>").replace("\x03", "</mark>")


def documents(kb: KnowledgeBase) -> list[Document]:
    docs: list[Document] = []
    for t in kb.topics.values():
        docs.append(Document("topic", t.id, t.title, "", " ".join(t.keywords), " ".join([t.summary, *t.points])))
    for p in kb.phases.values():
        body = " ".join([p.timing, p.goal, p.setting, *p.facts])
        docs.append(Document("phase", p.id, p.name, " ".join(p.aliases), "", body))
    for a in kb.agents.values():
        aliases = " ".join([*a.brand_names, a.page_spelling or ""])
        body = " ".join([a.summary, a.drug_class, " ".join(a.routes), a.note or ""])
        docs.append(Document("agent", a.id, a.name, aliases, a.drug_class, body))
    for r in kb.rules:
        if isinstance(r, AlertRule):
            docs.append(Document("rule", r.id, r.message.split(".")[0], "", r.severity, r.message))
        elif isinstance(r, NotRecommendedRule):
            docs.append(Document("rule", r.id, r.title, "", "not recommended", r.reason))
        else:
            body = " ".join([r.summary, r.rationale, r.expected_outcome or ""])
            docs.append(Document("rule", r.id, r.title, "", r.category.replace("_", " "), body))
    return docs


def query_terms(text: str) -> list[str]:
    """The meaningful words of a user's query, lower-case, stopwords dropped, order kept."""
    words = [w.lower() for w in _TOKEN.findall(text)]
    terms = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(terms or words))


class SearchIndex:
    """An in-memory FTS5 index; one connection shared by request threads under a lock."""

    def __init__(self, kb: KnowledgeBase):
        self._docs = documents(kb)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE doc USING fts5(title, aliases, keywords, body, tokenize='porter unicode61')"
        )
        self._db.executemany(
            "INSERT INTO doc(rowid, title, aliases, keywords, body) VALUES (?, ?, ?, ?, ?)",
            [(i, d.title, d.aliases, d.keywords, d.body) for i, d in enumerate(self._docs)],
        )

    def __len__(self) -> int:
        return len(self._docs)

    def search(self, text: str, limit: int = 10) -> list[Hit]:
        terms = query_terms(text)
        if not terms:
            return []
        # Each term quoted (so it is never read as FTS5 syntax). The whole phrase ranks first
        # when present; any single term still matches so a partial question finds something.
        quoted = [f'"{t}"' for t in terms]
        match = " OR ".join([f'"{" ".join(terms)}"', *quoted]) if len(terms) > 1 else quoted[0]
        sql = (
            "SELECT rowid, snippet(doc, 3, char(2), char(3), ' … ', 12), bm25(doc, ?, ?, ?, ?) AS score "
            "FROM doc WHERE doc MATCH ? ORDER BY score LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*WEIGHTS, match, limit)).fetchall()
        return [Hit(self._docs[rowid], snippet, score) for rowid, snippet, score in rows]
