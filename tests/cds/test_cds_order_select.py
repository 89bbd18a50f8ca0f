"""order-select: the order-sign checks, run on the orders just selected (one implementation, two hooks)."""

from __future__ import annotations

from typing import Any

from cdskit import draft_orders, full_prefetch, hook_request, medication_order, service_order

SELECT = "allpath-order-select"
SIGN = "allpath-order-sign"


def select(call: Any, pid: str, selections: list[str], *orders: dict[str, Any]) -> Any:
    body = hook_request(
        "order-select",
        pid=pid,
        prefetch=full_prefetch(pid),
        context={"draftOrders": draft_orders(*orders), "selections": selections},
    )
    return call(SELECT, body)


def test_order_select_gives_the_same_cards_as_order_sign_when_every_order_is_selected(call):
    orders = (
        medication_order("m1", name="cytarabine", pid="p1"),
        service_order("sr1", "Autologous stem cell transplant", pid="p1"),
        medication_order("m2", name="clofarabine", pid="p1"),
    )
    signed = hook_request("order-sign", prefetch=full_prefetch("p1"), context={"draftOrders": draft_orders(*orders)})
    selected = {
        **signed,
        "hook": "order-select",
        "context": {
            **signed["context"],
            "selections": ["MedicationRequest/m1", "ServiceRequest/sr1", "MedicationRequest/m2"],
        },
    }
    sign_cards = call(SIGN, signed).json()["cards"]
    select_cards = call(SELECT, selected).json()["cards"]
    assert [c["summary"] for c in sign_cards] == [
        "Autologous stem cell transplant ordered for ALL: not used to treat ALL",
        "Clofarabine ordered outside its use in ALL (check age and history)",
        "Ph-positive ALL: these orders include chemotherapy but no tyrosine kinase inhibitor",
    ]
    assert select_cards == sign_cards  # same hookInstance, same checks: the same cards, uuids included


def test_order_select_checks_only_the_selected_orders(call):
    orders = (
        service_order("sr1", "Autologous stem cell transplant", pid="p1"),
        medication_order("m1", name="imatinib 400 MG", pid="p1"),
    )
    response = select(call, "p1", ["MedicationRequest/m1"], *orders)
    assert response.status_code == 200
    assert response.json()["cards"] == []  # the transplant order was checked when it was selected


def test_order_select_warns_about_a_missing_tki_when_chemotherapy_is_selected(call):
    orders = (medication_order("m1", name="daunorubicin", pid="p1"),)
    (card,) = select(call, "p1", ["MedicationRequest/m1"], *orders).json()["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Ph-positive ALL")


def test_order_select_counts_a_tki_among_the_other_draft_orders(call):
    orders = (medication_order("m1", name="daunorubicin", pid="p1"), medication_order("m2", name="dasatinib", pid="p1"))
    assert select(call, "p1", ["MedicationRequest/m1"], *orders).json()["cards"] == []


def test_selection_that_is_not_a_draft_order_is_a_400(call):
    response = select(call, "p1", ["MedicationRequest/nope"], medication_order("m1", name="daunorubicin", pid="p1"))
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"field": "context.selections[0]", "problem": "is not an order in context.draftOrders"}
    ]


def test_order_select_requires_selections(call):
    body = hook_request(
        "order-select", prefetch=full_prefetch("p1"), context={"draftOrders": draft_orders(medication_order("m1"))}
    )
    response = call(SELECT, body)
    assert response.status_code == 400
    assert "context.selections" in [d["field"] for d in response.json()["details"]]
