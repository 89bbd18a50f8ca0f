"""The knowledge search (`allpath.store.kbsearch`): one FTS5 index behind the API's
`GET /knowledge/search` and the web page `/learn`. Plain questions find the KB entry that
answers them, every kind of entry can be found, and no text a user types is ever an error."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from allpath.api import create_app
from allpath.api.routes.knowledge import API_SEARCH_KINDS
from allpath.knowledge import load_kb
from allpath.store.kbsearch import KINDS, KnowledgeIndex, documents, knowledge_index, query_terms
from allpath.web.routes import WEB_SEARCH_KINDS

# The examples: the question, and the entry (kind, id) that answers it.
EXAMPLES = [
    ("what is maintenance", ("phase", "maintenance")),
    ("hair loss", ("topic", "side-effects-chemotherapy")),
    ("spinal tap", ("phase", "cns_prophylaxis")),
]
# FTS5 syntax, broken and whole, that must be read as plain text.
HOSTILE = [
    '"',
    '"hair',
    "hair loss'",
    "NEAR(",
    "NEAR(hair loss, 2)",
    "hair AND",
    "OR",
    "a OR",
    "NOT maintenance",
    "*",
    "hair*",
    "^hair",
    "title:x",
    "{title body}: hair",
    "((spinal tap",
    "spinal tap))",
    "-- ;",
    "'; DROP TABLE doc; --",
    "what is",
    "\x00",
    "☃ 💊",
    "naïve café",
]


@pytest.fixture(scope="module")
def index(kb) -> KnowledgeIndex:  # type: ignore[no-untyped-def]
    return KnowledgeIndex(kb)


def top(index: KnowledgeIndex, query: str) -> str:
    hits = index.search(query)
    assert hits, f"{query!r} found nothing"
    return hits[0].document.anchor


# --- the index ---------------------------------------------------------------------------------


def test_index_holds_every_topic_phase_agent_rule_and_source(index, kb) -> None:
    # len() counts one language; each language holds the same entries.
    assert len(index) == len(kb.topics) + len(kb.phases) + len(kb.agents) + len(kb.rules) + len(kb.sources)


@pytest.mark.parametrize("kind", KINDS)
def test_every_document_of_every_kind_is_found_by_its_title(index, kb, kind: str) -> None:
    docs = [d for d in documents(kb) if d.kind == kind]
    assert docs, f"the KB has no {kind}"
    for doc in docs:
        found = [h.document for h in index.search(doc.title, limit=100, kinds=[kind])]
        assert doc in found, f"{kind} {doc.id!r} not found by its title {doc.title!r}"


@pytest.mark.parametrize(
    ("query", "anchor"),
    [
        ("hair loss", "topic-side-effects-chemotherapy"),
        ("what is maintenance", "phase-maintenance"),
        ("Gleevec", "agent-imatinib"),
        ("not recommended", "rule-"),  # any rule: it is the keyword of every not-recommended rule
        ("PETHEMA study group", "source-oriol-2010"),
    ],
)
def test_each_kind_has_a_query_it_answers_first(index, query: str, anchor: str) -> None:
    assert top(index, query).startswith(anchor)


@pytest.mark.parametrize(("query", "entry"), EXAMPLES)
def test_example_question_finds_its_entry_first(index, query: str, entry: tuple[str, str]) -> None:
    assert top(index, query) == "-".join(entry)


def test_spinal_tap_finds_the_cns_prophylaxis_phase_then_its_rule(index) -> None:
    anchors = [h.document.anchor for h in index.search("spinal tap")[:2]]
    assert anchors == ["phase-cns_prophylaxis", "rule-cns-prophylaxis"]


def test_medicine_name_finds_the_medicine_before_the_sources_about_it(index) -> None:
    assert top(index, "blinatumomab") == "agent-blinatumomab"
    assert top(index, "ponatinib") != "source-fda-ponatinib-2024"


def test_stemmed_words_match(index) -> None:
    # "transfusions" in the KB, "transfusion" typed
    assert top(index, "transfusion") == "topic-supportive-transfusions"


def test_words_in_any_script_are_words(index) -> None:
    # Split on letters A-Z only, "Gökbuget" would be searched as "g" and "kbuget".
    assert top(index, "Gökbuget").startswith("source-gokbuget")


def test_titles_aliases_and_keywords_weigh_more_than_body_text(index) -> None:
    hits = index.search("maintenance", limit=100)
    scores = {h.document.anchor: h.score for h in hits}
    assert hits[0].score == max(scores.values())
    assert scores["phase-maintenance"] > scores["topic-hospital-stays"]  # title vs body


def test_kinds_limits_the_results_to_those_kinds(index) -> None:
    assert {h.kind for h in index.search("spinal tap", kinds=["rule"])} == {"rule"}
    assert index.search("spinal tap", kinds=[]) == []
    with pytest.raises(ValueError, match="unknown document kinds"):
        index.search("spinal tap", kinds=["patient"])


def test_limit_is_respected(index) -> None:
    assert len(index.search("chemotherapy", limit=3)) == 3


@pytest.mark.parametrize("query", HOSTILE)
def test_fts5_syntax_in_a_query_is_never_an_error(index, query: str) -> None:
    hits = index.search(query)  # must not raise sqlite3.OperationalError
    assert isinstance(hits, list)


# Text made mostly of FTS5's syntax characters and operator words, plus any other character.
_SYNTAX = st.sampled_from(['"', "'", "(", ")", "*", "^", ":", "{", "}", "+", "-", " ", "NEAR", "AND", "OR", "NOT"])
_QUERY = st.lists(st.one_of(_SYNTAX, st.text(max_size=3)), max_size=20).map("".join)


@settings(max_examples=300, deadline=None)
@given(query=_QUERY)
def test_any_text_gives_results_or_an_empty_list(index, query: str) -> None:
    assert isinstance(index.search(query), list)


def test_fts5_operators_are_searched_as_words_or_dropped(index) -> None:
    assert top(index, 'NEAR("hair loss")') == top(index, "hair loss")
    assert index.search("*") == [] and index.search("((") == []


def test_nonsense_finds_nothing(index) -> None:
    assert index.search("zzxqv") == []


def test_snippet_marks_the_matched_words_and_escapes_html(index) -> None:
    hit = index.search("hair loss")[0]
    html = hit.snippet_html()
    assert "<mark>" in html and "\x02" not in html and "\x03" not in html
    assert "\x02" not in hit.snippet_text() and "hair loss" in hit.snippet_text().lower()


def test_query_terms_drop_question_words() -> None:
    assert query_terms("What is MAINTENANCE?") == ["maintenance"]
    assert query_terms("what is") == ["what", "is"]  # all stopwords: keep them rather than search nothing
    assert query_terms('"hair" NEAR(loss*)') == ["hair", "near", "loss"]


def test_concurrent_searches_share_one_index_safely(index) -> None:
    expected = [h.document.anchor for h in index.search("spinal tap")]
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(50):
                results.append([h.document.anchor for h in index.search("spinal tap")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 200 and all(r == expected for r in results)


# --- through the service: the API and the page use the same index --------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(database_url=f"sqlite:///{tmp_path_factory.mktemp('search') / 't.db'}")
    with TestClient(app) as client:
        yield client
    app.state.allpath.close()


def page_anchors(client: TestClient, query: str) -> list[str]:
    response = client.get("/learn", params={"q": query})
    assert response.status_code == 200, response.text[:300]
    results = response.text.split('<ol class="results">', 1)
    if len(results) == 1:
        assert "Nothing matched" in response.text
        return []
    items = results[1].split("</ol>", 1)[0]
    return [part.split('"', 1)[0] for part in items.split('<li><a href="#')[1:]]


def test_api_and_page_search_one_index_built_once(service: TestClient) -> None:
    context = service.app.state.allpath  # type: ignore[attr-defined]
    built = knowledge_index(context)
    service.get("/knowledge/search", params={"q": "hair loss"})
    service.get("/learn", params={"q": "hair loss"})
    assert knowledge_index(context) is built


def test_each_caller_asks_for_the_kinds_it_can_show() -> None:
    assert set(API_SEARCH_KINDS) == {"agent", "phase", "topic", "source"}  # SearchHitPublic.kind
    assert set(WEB_SEARCH_KINDS) == {"topic", "phase", "agent", "rule"}  # the page's sections


@pytest.mark.parametrize(("query", "entry"), EXAMPLES)
def test_example_question_finds_its_entry_through_the_api(
    service: TestClient, query: str, entry: tuple[str, str]
) -> None:
    response = service.get("/knowledge/search", params={"q": query})
    assert response.status_code == 200
    hits = response.json()
    assert (hits[0]["kind"], hits[0]["id"]) == entry
    assert set(hits[0]) == {"kind", "id", "title", "snippet", "score"}
    assert "\x02" not in hits[0]["snippet"] and hits[0]["score"] > 0


@pytest.mark.parametrize(("query", "entry"), EXAMPLES)
def test_example_question_finds_its_entry_on_the_learn_page(
    service: TestClient, query: str, entry: tuple[str, str]
) -> None:
    anchors = page_anchors(service, query)
    assert anchors[0] == "-".join(entry)
    page = service.get("/learn", params={"q": query}).text
    assert all(f'id="{a}"' in page for a in anchors), "every result links to an entry on the page"


@pytest.mark.parametrize("query", HOSTILE)
def test_fts5_syntax_through_the_api_gives_results_or_an_empty_list(service: TestClient, query: str) -> None:
    response = service.get("/knowledge/search", params={"q": query})
    assert response.status_code == 200, response.text[:300]
    assert isinstance(response.json(), list)


@pytest.mark.parametrize("query", HOSTILE)
def test_fts5_syntax_on_the_learn_page_gives_results_or_nothing_matched(service: TestClient, query: str) -> None:
    page_anchors(service, query)  # 200, and a list of results or "Nothing matched"


# --- in Spanish ------------------------------------------------------------------------------------

KB_ES = load_kb().for_language("es")
SPANISH_EXAMPLES = [
    ("fiebre", ("topic", "supportive-antibiotics")),
    ("¿Qué es el mantenimiento?", ("phase", "maintenance")),
    ("caída del pelo", ("topic", "side-effects-chemotherapy")),
    ("punción lumbar", ("phase", "cns_prophylaxis")),
    ("medula osea", ("topic", "modality-stem-cell-transplant")),
]


@pytest.mark.parametrize(("query", "expected"), SPANISH_EXAMPLES, ids=[q for q, _ in SPANISH_EXAMPLES])
def test_spanish_words_find_the_entry_when_asked_in_spanish(
    index: KnowledgeIndex, query: str, expected: tuple[str, str]
) -> None:
    hits = index.search(query, lang="es")
    assert hits, f"{query!r} found nothing"
    assert (hits[0].kind, hits[0].id) == expected
    # The entry comes back in Spanish: the title is the Spanish one.
    spanish = KB_ES.topics[expected[1]].title if expected[0] == "topic" else KB_ES.phases[expected[1]].name
    assert hits[0].title == spanish


def test_an_english_search_never_answers_in_spanish(index: KnowledgeIndex) -> None:
    assert index.search("fiebre") == []
    titles = {h.title for h in index.search("fever") + index.search("maintenance")}
    assert "Antibiotics" in titles and not any("ó" in t or "é" in t for t in titles)


def test_searching_in_an_unsupported_language_is_a_typed_error(index: KnowledgeIndex) -> None:
    from allpath.errors import UnsupportedLanguageError

    with pytest.raises(UnsupportedLanguageError):
        index.search("fever", lang="fr")


def test_api_searches_in_spanish_and_refuses_an_unknown_language(service: TestClient) -> None:
    response = service.get("/knowledge/search", params={"q": "fiebre", "lang": "es"})
    assert response.status_code == 200
    assert response.json()[0]["id"] == "supportive-antibiotics"
    assert response.json()[0]["title"] == "Antibióticos"
    refused = service.get("/knowledge/search", params={"q": "fiebre", "lang": "fr"})
    assert refused.status_code == 422
    assert [p["field"] for p in refused.json()["details"]] == ["lang"]
