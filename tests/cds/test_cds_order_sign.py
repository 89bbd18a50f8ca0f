"""The order-sign safety checks: missing TKI in Ph-positive ALL, autologous transplant, clofarabine misuse."""

from __future__ import annotations

from typing import Any

import pytest
from cdskit import draft_orders, full_prefetch, hook_request, medication_order, service_order

from allpath.api.cds.ordersign import AUTOLOGOUS

SERVICE = "allpath-order-sign"


def sign(call: Any, pid: str, *orders: dict[str, Any], medications: tuple[dict[str, Any], ...] = ()) -> list[dict]:
    body = hook_request(
        "order-sign",
        pid=pid,
        prefetch=full_prefetch(pid, medications=medications),
        context={"draftOrders": draft_orders(*orders)},
    )
    response = call(SERVICE, body)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


# --- Ph-positive without a TKI -------------------------------------------------------------


def test_ph_positive_chemotherapy_without_tki_warns_with_a_suggestion_per_tki(call):
    (card,) = sign(call, "p1", medication_order("m1", name="vincristine 2 MG injection", pid="p1"))
    assert card["indicator"] == "warning"
    assert "tyrosine kinase inhibitor" in card["summary"]
    assert card["selectionBehavior"] == "at-most-one"
    labels = [s["label"] for s in card["suggestions"]]
    assert labels == ["Add imatinib (Gleevec)", "Add dasatinib (Sprycel)", "Add nilotinib (Tasigna)"]
    action = card["suggestions"][0]["actions"][0]
    assert action["type"] == "create"
    resource = action["resource"]
    assert resource["resourceType"] == "MedicationRequest"
    assert resource["status"] == "draft"
    assert resource["subject"] == {"reference": "Patient/p1"}
    assert resource["medicationCodeableConcept"]["text"] == "imatinib"
    assert len({s["uuid"] for s in card["suggestions"]}) == 3


def test_draft_tki_alongside_chemotherapy_gives_no_warning(call):
    orders = (
        medication_order("m1", name="vincristine", pid="p1"),
        medication_order("m2", name="Sprycel 100 MG", pid="p1"),
    )
    assert sign(call, "p1", *orders) == []


def test_tki_already_active_in_the_record_gives_no_warning(call):
    active = medication_order("old", name="imatinib 400 MG Oral Tablet", status="active", pid="p1")
    assert sign(call, "p1", medication_order("m1", name="daunorubicin", pid="p1"), medications=(active,)) == []


def test_stopped_tki_in_the_record_does_not_count(call):
    stopped = medication_order("old", name="imatinib", status="stopped", pid="p1")
    cards = sign(call, "p1", medication_order("m1", name="daunorubicin", pid="p1"), medications=(stopped,))
    assert [c["indicator"] for c in cards] == ["warning"]


def test_ph_negative_patient_gets_no_tki_warning(call):
    assert sign(call, "child", medication_order("m1", name="vincristine", pid="child")) == []


def test_orders_without_chemotherapy_give_no_tki_warning(call):
    # A steroid or an unrelated order alone is not a chemotherapy regimen missing its TKI.
    assert sign(call, "p1", medication_order("m1", name="prednisone 20 MG", pid="p1")) == []
    assert sign(call, "p1", medication_order("m2", name="acetaminophen 500 MG", pid="p1")) == []


def test_drug_named_in_a_contained_medication_is_recognised(call):
    order = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "Cytarabine 100 MG/ML"}}],
        "medicationReference": {"reference": "#med"},
    }
    (card,) = sign(call, "p1", order)
    assert "tyrosine kinase inhibitor" in card["summary"]


# --- autologous transplant ----------------------------------------------------------------


def test_autologous_transplant_order_is_critical_with_a_removal_suggestion(call):
    (card,) = sign(call, "child", service_order("sr1", "Autologous hematopoietic stem cell transplant", pid="child"))
    assert card["indicator"] == "critical"
    assert "Autologous" in card["summary"]
    (suggestion,) = card["suggestions"]
    assert suggestion["actions"] == [
        {
            "type": "delete",
            "description": "Remove the draft order ServiceRequest/sr1",
            "resourceId": "ServiceRequest/sr1",
        }
    ]
    assert card["overrideReasons"][0]["display"]
    assert "donor (allogeneic)" in card["detail"]


def test_allogeneic_transplant_order_is_not_flagged(call):
    assert sign(call, "child", service_order("sr1", "Allogeneic bone marrow transplantation", pid="child")) == []


@pytest.mark.parametrize(
    "text",
    [
        "Autologous stem cell transplant",
        "auto-HSCT",
        "AUTOLOGOUS BONE MARROW TRANSPLANTATION",
        "autologous PBSCT",
        "Auto SCT",
    ],
)
def test_autologous_wording_is_recognised(text):
    assert AUTOLOGOUS.search(text)


@pytest.mark.parametrize(
    "text", ["Allogeneic HSCT", "autoimmune panel", "Automated blood count", "Autologous blood donation"]
)
def test_other_wording_is_not_taken_for_an_autologous_transplant(text):
    assert not AUTOLOGOUS.search(text)


# --- clofarabine ---------------------------------------------------------------------------


def test_clofarabine_for_an_adult_after_one_regimen_warns_on_age_and_history(call):
    (card,) = sign(call, "adult-relapse", medication_order("m1", name="clofarabine", pid="adult-relapse"))
    assert card["indicator"] == "warning"
    assert "age and history" in card["summary"]
    assert "34 years old" in card["detail"] and "1 earlier regimen" in card["detail"]
    assert card["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/m1"


def test_clofarabine_for_a_teen_after_three_regimens_is_not_flagged(call):
    assert sign(call, "teen-relapse", medication_order("m1", name="Clolar 20 MG/20ML", pid="teen-relapse")) == []


def test_clofarabine_before_two_regimens_warns_on_history(call):
    (card,) = sign(call, "child", medication_order("m1", name="clofarabine", pid="child"))
    assert "(check history)" in card["summary"]


def test_clofarabine_order_without_an_id_gets_no_removal_suggestion(call):
    order = medication_order("m1", name="clofarabine", pid="adult-relapse")
    del order["id"]
    (card,) = sign(call, "adult-relapse", order)
    assert "suggestions" not in card and "selectionBehavior" not in card


def test_several_problems_give_several_cards_most_urgent_first(call):
    cards = sign(
        call,
        "p1",
        medication_order("m1", name="clofarabine", pid="p1"),
        service_order("sr1", "autologous SCT", pid="p1"),
    )
    assert [c["indicator"] for c in cards] == ["critical", "warning", "warning"]


def test_order_sign_needs_draft_orders(call):
    body = hook_request("order-sign", prefetch=full_prefetch("p1"))
    response = call(SERVICE, body)
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "context.draftOrders"


def test_order_sign_rejects_a_patient_view_request(call):
    response = call(SERVICE, hook_request("patient-view", prefetch=full_prefetch("p1")))
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["details"]}
    assert {"hook", "context.draftOrders"} <= fields


def test_unusable_record_gives_one_explaining_card_not_silence(call):
    # The stand-in importer cannot read patient "unknown": the checks have no facts to work on, and
    # an empty answer would look exactly like "these orders are fine".
    (card,) = sign(call, "unknown", service_order("sr1", "autologous SCT", pid="unknown"))
    assert card["indicator"] == "info"
    assert "cannot give ALL treatment options" in card["summary"]
    assert "`Patient.birthDate`: is required" in card["detail"]
