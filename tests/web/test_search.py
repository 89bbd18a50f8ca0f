"""The knowledge search: plain questions find the KB entry that answers them."""

from __future__ import annotations

import pytest

from allpath.web.search import SearchIndex, query_terms


@pytest.fixture(scope="module")
def index(kb):  # type: ignore[no-untyped-def]
    return SearchIndex(kb)


def top(index: SearchIndex, query: str) -> str:
    hits = index.search(query)
    assert hits, f"{query!r} found nothing"
    return hits[0].document.anchor


def test_index_holds_every_topic_phase_agent_and_rule(index, kb) -> None:
    assert len(index) == len(kb.topics) + len(kb.phases) + len(kb.agents) + len(kb.rules)


def test_what_is_maintenance_finds_the_maintenance_phase(index) -> None:
    assert top(index, "what is maintenance") == "phase-maintenance"


def test_hair_loss_finds_chemotherapy_side_effects(index) -> None:
    assert top(index, "hair loss") == "topic-side-effects-chemotherapy"


def test_spinal_tap_finds_cns_prophylaxis(index) -> None:
    anchors = [h.document.anchor for h in index.search("spinal tap")[:2]]
    assert anchors[0] == "phase-cns_prophylaxis"
    assert "rule-cns-prophylaxis" in anchors


def test_brand_name_finds_the_generic_medicine(index) -> None:
    assert top(index, "Gleevec") == "agent-imatinib"


def test_stemmed_words_match(index) -> None:
    # "transfusions" in the KB, "transfusion" typed
    assert top(index, "transfusion") == "topic-supportive-transfusions"


@pytest.mark.parametrize("query", ['"', "NEAR(", "a OR", "*", "title:x", "-- ;", "what is"])
def test_fts_syntax_in_a_query_is_never_an_error(index, query: str) -> None:
    index.search(query)  # must not raise sqlite3.OperationalError


def test_nonsense_finds_nothing(index) -> None:
    assert index.search("zzxqv") == []


def test_snippet_marks_the_matched_words_and_escapes_html(index) -> None:
    hit = index.search("hair loss")[0]
    html = hit.snippet_html()
    assert "<mark>" in html and "\x02" not in html


def test_query_terms_drop_question_words() -> None:
    assert query_terms("What is MAINTENANCE?") == ["maintenance"]
    assert query_terms("what is") == ["what", "is"]  # all stopwords: keep them rather than search nothing
