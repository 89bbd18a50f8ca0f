"""Full-text search over the knowledge base: one SQLite FTS5 index, in memory, built once per KB.

Both the REST API (`GET /knowledge/search`) and the web knowledge browser (`/learn`) search
through this module; each asks for the kinds of entry it can show.

- Documents: every topic, phase, agent, rule and source, with columns title, aliases (phase
  aliases, brand names), keywords (topic keywords, drug class, phases an agent is used in,
  rule category, publisher) and body. The Porter stemmer lets "transfusion" find
  "transfusions"; aliases and keywords let "spinal tap" find CNS prophylaxis.
- Ranking: bm25 with title, aliases and keywords weighted above the body (`WEIGHTS`).
- Languages: each patient-facing entry is indexed once per language of the KB
  (`KnowledgeBase.for_language`), and a search looks only at the documents of the language it is
  asked in (`lang`, default English): "fiebre" asked in Spanish finds the fever guidance, and an
  English search never answers with a Spanish title. Rules and sources, clinician texts, are
  English in every language. unicode61 folds accents, so "medula" finds "médula"; the Porter
  stemmer is English, but query and text are stemmed alike, so Spanish words still match whole.
- Queries: `query_terms` keeps the words of the user's text (letters and digits only), drops
  `STOPWORDS` ("what is maintenance" searches "maintenance"; `STOPWORDS_ES` in Spanish), and `match_expression` quotes
  each one. User text is therefore never read as FTS5 syntax: quotes, `NEAR`, `AND`/`OR`,
  `*`, column filters and unbalanced parentheses are just characters, and a query with no
  words finds nothing instead of failing.

Uses the standard library's sqlite3 only, so it works the same whatever database the service
stores records in. One connection per index, shared by request threads under a lock.
"""

from __future__ import annotations

import html
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from allpath.errors import Problem, UnsupportedLanguageError
from allpath.knowledge import KnowledgeBase
from allpath.knowledge.schema import LANGUAGES, AlertRule, NotRecommendedRule

if TYPE_CHECKING:
    from allpath.store.context import AppContext

KINDS = ("topic", "phase", "agent", "rule", "source")
KIND_LABELS = {
    "topic": "Topic",
    "phase": "Treatment phase",
    "agent": "Medicine",
    "rule": "Treatment option",
    "source": "Source",
}
# Words that say nothing about which entry is meant ("what is maintenance"); dropping them keeps
# bm25 from rewarding documents that happen to say "is" often.
_STOPWORD_TEXT = """a an and are as at be by can do does for from how i in is it its me my of on or our
    should so that the their there this to us was what when where which who why will with you your"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_STOPWORD_TEXT_ES = """a al algo como con cual cuales cuando de del donde el ella en es esta este esto hay la
    las lo los me mi mis para pero por que qué quien se ser si sobre son su sus un una uno y ya yo"""
STOPWORDS_ES = frozenset(_STOPWORD_TEXT_ES.split())
_STOPWORDS_BY_LANGUAGE = {"en": STOPWORDS, "es": STOPWORDS_ES}
# bm25 column weights, in the column order of the table: title, aliases, keywords, body.
WEIGHTS = (10.0, 8.0, 5.0, 1.0)
# bm25 is multiplied by these: a source (a publication the KB cites) ranks below the entry it is
# about ("blinatumomab" finds the medicine before the FDA notice of its approval).
KIND_WEIGHTS = {"topic": 1.0, "phase": 1.0, "agent": 1.0, "rule": 1.0, "source": 0.5}
_KIND_WEIGHT_SQL = "CASE kind " + " ".join(f"WHEN '{k}' THEN {w!r}" for k, w in KIND_WEIGHTS.items()) + " END"
MAX_TERMS = 32  # the API and the page cap queries at 200 characters; this bounds direct callers too
SNIPPET_TOKENS = 16
MARK_START, MARK_END = "\x02", "\x03"  # around matched words in `Hit.snippet`
# A word: a run of letters and digits (any script). Everything else, FTS5 syntax included, separates words.
_WORD = re.compile(r"[^\W_]+")
_INDEX_KEY = "kb_index"  # in AppContext.extra
_INDEX_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Document:
    kind: str  # one of KINDS
    id: str
    title: str
    aliases: str
    keywords: str
    body: str

    @property
    def anchor(self) -> str:
        """The entry's element id on the knowledge page (`/learn#phase-maintenance`)."""
        return f"{self.kind}-{self.id}"

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass(frozen=True, slots=True)
class Hit:
    document: Document
    snippet: str  # body text around the match, matched words between MARK_START and MARK_END
    score: float  # bm25, negated: higher is better

    @property
    def kind(self) -> str:
        return self.document.kind

    @property
    def id(self) -> str:
        return self.document.id

    @property
    def title(self) -> str:
        return self.document.title

    def snippet_text(self) -> str:
        """The snippet as plain text."""
        return self.snippet.replace(MARK_START, "").replace(MARK_END, "")

    def snippet_html(self) -> str:
        """The snippet, HTML-escaped, with matched words in <mark>."""
        escaped = html.escape(self.snippet)
        return escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


def documents(kb: KnowledgeBase) -> list[Document]:
    """One document per topic, phase, agent, rule and source of the KB."""
    docs: list[Document] = []
    for t in kb.topics.values():
        docs.append(Document("topic", t.id, t.title, "", " ".join(t.keywords), " ".join([t.summary, *t.points])))
    for p in kb.phases.values():
        body = " ".join([p.timing, p.goal, p.setting, *p.facts])
        docs.append(Document("phase", p.id, p.name, " ".join(p.aliases), "", body))
    for a in kb.agents.values():
        aliases = " ".join([*a.brand_names, a.page_spelling or ""])
        keywords = " ".join([a.drug_class, *(phase.replace("_", " ") for phase in a.used_in)])
        body = " ".join([a.summary, " ".join(a.routes), a.note or ""])
        docs.append(Document("agent", a.id, a.name, aliases, keywords, body))
    for r in kb.rules:
        if isinstance(r, AlertRule):
            docs.append(Document("rule", r.id, r.message.split(".")[0], "", r.severity, r.message))
        elif isinstance(r, NotRecommendedRule):
            docs.append(Document("rule", r.id, r.title, "", "not recommended", r.reason))
        else:
            body = " ".join([r.summary, r.rationale, r.expected_outcome or ""])
            docs.append(Document("rule", r.id, r.title, "", r.category.replace("_", " "), body))
    for s in kb.sources.values():
        docs.append(Document("source", s.id, s.title, "", s.publisher, " ".join(s.sections)))
    return docs


def query_terms(text: str, lang: str = "en") -> list[str]:
    """The meaningful words of a user's query, lower-case, stopwords of `lang` dropped, order kept.

    A query of stopwords only ("what is") keeps them rather than search nothing.
    """
    stopwords = _STOPWORDS_BY_LANGUAGE.get(lang, STOPWORDS)
    words = [w.lower() for w in _WORD.findall(text)]
    terms = [w for w in words if w not in stopwords]
    return list(dict.fromkeys(terms or words))[:MAX_TERMS]


def match_expression(terms: list[str]) -> str:
    """The FTS5 query for `terms`: the whole phrase or any single word, every one quoted.

    Terms come from `query_terms` (letters and digits only), so quoting them makes each one a
    string to FTS5, never an operator. The phrase ranks documents that say the words together
    first; any single word still matches, so a partial question finds something.
    """
    quoted = [f'"{t}"' for t in terms]
    return " OR ".join([f'"{" ".join(terms)}"', *quoted]) if len(terms) > 1 else quoted[0]


class KnowledgeIndex:
    """An FTS5 index of one knowledge base. Thread-safe (one connection, one lock)."""

    def __init__(self, kb: KnowledgeBase):
        by_language = [(lang, d) for lang in LANGUAGES for d in documents(kb.for_language(lang))]
        self._docs = [d for _, d in by_language]
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE doc USING fts5(title, aliases, keywords, body, kind UNINDEXED, lang UNINDEXED, "
            "tokenize='porter unicode61')"
        )
        self._db.executemany(
            "INSERT INTO doc(rowid, title, aliases, keywords, body, kind, lang) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, d.title, d.aliases, d.keywords, d.body, d.kind, lang) for i, (lang, d) in enumerate(by_language)],
        )
        self._db.commit()

    def __len__(self) -> int:
        """Documents of one language (each language holds the same entries)."""
        return len(self._docs) // len(LANGUAGES)

    def search(self, text: str, limit: int = 20, kinds: Iterable[str] | None = None, lang: str = "en") -> list[Hit]:
        """The documents matching the words of `text`, best first; only `kinds` when given; the
        patient-facing entries in `lang` (`UnsupportedLanguageError` for a language the KB lacks).

        Never raises for any `text`: a query without words finds nothing.
        """
        if lang not in LANGUAGES:
            raise UnsupportedLanguageError(
                problems=[Problem("lang", f"{lang!r} is not supported; use one of {', '.join(LANGUAGES)}")]
            )
        wanted = KINDS if kinds is None else tuple(dict.fromkeys(kinds))
        unknown = set(wanted) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown document kinds {sorted(unknown)}; expected some of {KINDS}")
        terms = query_terms(text, lang)
        if not terms or not wanted:
            return []
        sql = (
            f"SELECT rowid, snippet(doc, 3, char(2), char(3), ' … ', {SNIPPET_TOKENS}), "
            f"bm25(doc, ?, ?, ?, ?) * {_KIND_WEIGHT_SQL} AS rank "
            f"FROM doc WHERE doc MATCH ? AND lang = ? AND kind IN ({', '.join('?' * len(wanted))}) "
            "ORDER BY rank LIMIT ?"
        )
        with self._lock:
            params = (*WEIGHTS, match_expression(terms), lang, *wanted, max(1, limit))
            rows = self._db.execute(sql, params).fetchall()
        return [Hit(self._docs[rowid], snippet, -rank) for rowid, snippet, rank in rows]


def knowledge_index(context: AppContext) -> KnowledgeIndex:
    """The index of the service's KB: built on first use (or at start-up by `allpath.web.install`),
    then shared by the API and the pages. Safe to call from several threads at once."""
    index = context.extra.get(_INDEX_KEY)
    if index is None:
        with _INDEX_LOCK:
            index = context.extra.get(_INDEX_KEY)
            if index is None:
                index = context.extra[_INDEX_KEY] = KnowledgeIndex(context.kb)
    assert isinstance(index, KnowledgeIndex)
    return index
