"""The card-rule checker used on every response: it must catch each rule it claims to enforce."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from allpath.api.cds.validate import validate_cds_response, validate_discovery

GOOD: dict[str, Any] = {
    "uuid": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
    "summary": "Example card",
    "indicator": "warning",
    "detail": "**Markdown** detail",
    "source": {
        "label": "allpath",
        "url": "https://example.org/source",
        "topic": {"system": "urn:x", "code": "c", "display": "d"},
    },
    "suggestions": [
        {
            "label": "Do it",
            "uuid": "e56e1945-20b3-4393-8503-a1a20fd73152",
            "isRecommended": True,
            "actions": [{"type": "create", "description": "make", "resource": {"resourceType": "MedicationRequest"}}],
        }
    ],
    "selectionBehavior": "at-most-one",
    "overrideReasons": [{"system": "urn:x", "code": "r", "display": "Reason"}],
    "links": [{"label": "More", "url": "https://example.org/more", "type": "absolute"}],
}


def fields_of(card: dict[str, Any]) -> set[str]:
    return {p.field for p in validate_cds_response({"cards": [card]})}


def test_a_conformant_card_passes():
    assert validate_cds_response({"cards": [GOOD]}) == []
    assert validate_cds_response({"cards": []}) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c.update(summary="x" * 140), "cards[0].summary"),
        (lambda c: c.pop("summary"), "cards[0].summary"),
        (lambda c: c.update(indicator="hard-stop"), "cards[0].indicator"),
        (lambda c: c.pop("source"), "cards[0].source"),
        (lambda c: c["source"].pop("label"), "cards[0].source.label"),
        (lambda c: c["source"].update(url="/relative"), "cards[0].source.url"),
        (lambda c: c["source"]["topic"].pop("system"), "cards[0].source.topic.system"),
        (lambda c: c.pop("selectionBehavior"), "cards[0].selectionBehavior"),
        (lambda c: c.update(selectionBehavior="all"), "cards[0].selectionBehavior"),
        (lambda c: c["suggestions"][0].update(uuid="nope"), "cards[0].suggestions[0].uuid"),
        (lambda c: c["suggestions"][0].pop("label"), "cards[0].suggestions[0].label"),
        (
            lambda c: c["suggestions"].append({**c["suggestions"][0], "uuid": "c56e1945-20b3-4393-8503-a1a20fd73152"}),
            "cards[0].suggestions",
        ),
        (lambda c: c["suggestions"][0]["actions"][0].update(type="upsert"), "cards[0].suggestions[0].actions[0].type"),
        (lambda c: c["suggestions"][0]["actions"][0].pop("resource"), "cards[0].suggestions[0].actions[0].resource"),
        (lambda c: c["overrideReasons"][0].pop("display"), "cards[0].overrideReasons[0].display"),
        (lambda c: c["links"][0].update(type="relative"), "cards[0].links[0].type"),
        (lambda c: c["links"][0].update(appContext="x"), "cards[0].links[0].appContext"),
        (lambda c: c.update(uuid="123"), "cards[0].uuid"),
        (lambda c: c.update(detail=None), "cards[0].detail"),
        (lambda c: c.update(links=[]), "cards[0].links"),
        (lambda c: c["source"].update(icon=""), "cards[0].source.icon"),
        (lambda c: (c.pop("suggestions"), c), "cards[0].selectionBehavior"),
    ],
)
def test_each_card_rule_is_enforced(change, field):
    card = copy.deepcopy(GOOD)
    change(card)
    assert field in fields_of(card)


def test_duplicate_card_uuids_are_caught():
    problems = validate_cds_response({"cards": [GOOD, GOOD]})
    assert "cards[1].uuid" in {p.field for p in problems}


def test_response_without_cards_is_caught():
    assert validate_cds_response({})[0].field == "cards"


def test_discovery_rules():
    good = {
        "services": [
            {"hook": "patient-view", "id": "a", "description": "d", "prefetch": {"p": "Patient/{{context.patientId}}"}}
        ]
    }
    assert validate_discovery(good) == []
    bad = copy.deepcopy(good)
    del bad["services"][0]["description"]
    bad["services"].append(copy.deepcopy(good["services"][0]))
    fields = {p.field for p in validate_discovery(bad)}
    assert {"services[0].description", "services[1].id"} <= fields
