"""The feedback endpoint: accepted and overridden outcomes are validated and stored."""

from __future__ import annotations

from typing import Any

import pytest
from cdskit import bearer, draft_orders, full_prefetch, hook_request, medication_order, token

from allpath.api.cds.feedback import SqliteFeedbackStore

FEEDBACK = "/cds-services/allpath-order-sign/feedback"


def post_feedback(client: Any, key: Any, body: Any, endpoint: str = FEEDBACK) -> Any:
    return client.post(endpoint, json=body, headers=bearer(token(key, endpoint)))


def tki_card(call: Any) -> dict[str, Any]:
    body = hook_request(
        "order-sign",
        prefetch=full_prefetch("p1"),
        context={"draftOrders": draft_orders(medication_order("m1", name="vincristine"))},
    )
    (card,) = call("allpath-order-sign", body).json()["cards"]
    return card


def test_accepted_suggestion_is_stored_with_the_rule_behind_the_card(client, call, rsa, feedback_store):
    card = tki_card(call)
    chosen = card["suggestions"][1]["uuid"]
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": chosen}],
                "outcomeTimestamp": "2026-11-26T10:00:00Z",
            }
        ]
    }
    response = post_feedback(client, rsa, body)
    assert response.status_code == 200, response.text
    (record,) = feedback_store.list("allpath-order-sign")
    assert record.outcome == "accepted"
    assert record.accepted_suggestions == (chosen,)
    assert record.rule_id == "tki-ph-positive"


def test_overridden_card_with_reason_and_comment_is_stored(client, call, rsa, feedback_store):
    card = tki_card(call)
    reason = card["overrideReasons"][0]
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": reason, "userComment": "TKI started at the outside hospital"},
                "outcomeTimestamp": "2026-11-26T10:00:00Z",
            }
        ]
    }
    assert post_feedback(client, rsa, body).status_code == 200
    (record,) = feedback_store.list()
    assert (record.outcome, record.override_code, record.override_display) == (
        "overridden",
        reason["code"],
        reason["display"],
    )
    assert record.user_comment == "TKI started at the outside hospital"


def test_feedback_token_may_name_the_service_url(client, rsa, feedback_store):
    body = {
        "feedback": [
            {
                "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-26T10:00:00Z",
            }
        ]
    }
    response = client.post(FEEDBACK, json=body, headers=bearer(token(rsa, "/cds-services/allpath-order-sign")))
    assert response.status_code == 200
    assert feedback_store.list()[0].rule_id is None  # a card this process did not issue


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"outcome": "accepted", "outcomeTimestamp": "2026-11-26T10:00:00Z"}, "feedback[0].card"),
        (
            {"card": "not-a-uuid", "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z"},
            "feedback[0].card",
        ),
        (
            {"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "ignored", "outcomeTimestamp": "2026-11-26"},
            "feedback[0].outcome",
        ),
        (
            {
                "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-26T10:00:00Z",
            },
            "feedback[0].acceptedSuggestions",
        ),
        ({"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "overridden"}, "feedback[0].outcomeTimestamp"),
        (
            {"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "overridden", "outcomeTimestamp": "yesterday"},
            "feedback[0].outcomeTimestamp",
        ),
    ],
)
def test_invalid_feedback_is_400_naming_the_field(client, rsa, feedback_store, item, field):
    response = post_feedback(client, rsa, {"feedback": [item]})
    assert response.status_code == 400
    assert field in {d["field"] for d in response.json()["details"]}
    assert feedback_store.list() == []


def test_empty_feedback_is_400(client, rsa):
    response = post_feedback(client, rsa, {"feedback": []})
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "feedback"


def test_feedback_for_an_unknown_service_is_404(client, rsa):
    endpoint = "/cds-services/nope/feedback"
    assert post_feedback(client, rsa, {"feedback": []}, endpoint).status_code == 404


def test_sqlite_store_keeps_feedback_across_connections(tmp_path, make_client, rsa):
    path = str(tmp_path / "feedback.sqlite")
    client = make_client(feedback_store=SqliteFeedbackStore(path))
    body = {
        "feedback": [
            {
                "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
                "outcomeTimestamp": "2026-11-26T10:00:00Z",
            }
        ]
    }
    assert post_feedback(client, rsa, body).status_code == 200
    reopened = SqliteFeedbackStore(path)
    (record,) = reopened.list("allpath-order-sign")
    assert record.accepted_suggestions == ("e56e1945-20b3-4393-8503-a1a20fd73152",)
    reopened.close()
