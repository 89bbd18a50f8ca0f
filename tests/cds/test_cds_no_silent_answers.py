"""Issue 12, "Why": the CDS Hooks answers that were silent, wrong-patient or unreadable.

Each test here failed on main before this change: a malformed ALL Condition, a draft order naming
its drug through `medicationReference`, a draft order for another patient, a `urn:uuid:` subject,
summaries cut mid-word, sixteen cards for one patient, "Age 5.91". The real FHIR importer reads
every record (no stand-in), so what the EHR sends is what is tested.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cdskit import bearer, draft_orders, full_prefetch, hook_request, medication_order, patient, searchset, token

from allpath.api.cds.cards import MISSING_FACTS_KEY, MORE_ALERTS_KEY, SUMMARY_KEY, card_uuid
from allpath.api.cds.validate import validate_cds_response
from allpath.facts import PatientFacts
from allpath.plan import Alert, Citation

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CLINICAL = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}


def b_all(pid: str = "p1", **changes: Any) -> dict[str, Any]:
    condition = {
        "resourceType": "Condition",
        "id": "dx",
        "subject": {"reference": f"Patient/{pid}"},
        "clinicalStatus": CLINICAL,
        "code": {"coding": [{"system": SNOMED, "code": "277571004"}]},
        "recordedDate": "2026-11-01",
    }
    condition.update(changes)
    return condition


def ph_positive(pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "bcr-abl",
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": LOINC, "code": "69380-4"}]},
        "effectiveDateTime": "2026-11-02",
        "valueQuantity": {"value": 0.42, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


def ph_positive_prefetch(pid: str = "p1") -> dict[str, Any]:
    return full_prefetch(pid, conditions=(b_all(pid),), observations=(ph_positive(pid),))


@pytest.fixture
def post(make_client: Any, rsa: Any) -> Any:
    """A call to the service with the real importer; 200 answers are checked against the card rules."""
    client = make_client(importer=None)

    def send(service: str, body: dict[str, Any]) -> Any:
        endpoint = f"/cds-services/{service}"
        response = client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint)))
        assert response.status_code != 500, response.text
        if response.status_code == 200:
            assert validate_cds_response(response.json()) == []
        return response

    return send


def fields(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.text
    return {d["field"]: d["problem"] for d in response.json()["details"]}


# --- a malformed ALL Condition is a 400 naming it, never 200-with-no-cards -----------------------

MALFORMED = {
    "code-as-number": (
        {"code": {"coding": [{"system": SNOMED, "code": 91857003}]}},
        "prefetch.conditions.entry[0].resource.code.coding[0].code",
    ),
    "coding-as-object": (
        {"code": {"coding": {"system": SNOMED, "code": "91857003"}}},
        "prefetch.conditions.entry[0].resource.code.coding",
    ),
    "code-as-array": (
        {"code": [{"coding": [{"system": SNOMED, "code": "91857003"}]}]},
        "prefetch.conditions.entry[0].resource.code",
    ),
    "onset-not-a-date": ({"onsetDateTime": "last spring"}, "prefetch.conditions.entry[0].resource.onsetDateTime"),
}


@pytest.mark.parametrize("service", ["allpath-patient-view", "allpath-order-sign"])
@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_all_condition_in_prefetch_is_a_400_naming_its_entry(post, service, case):
    change, field = MALFORMED[case]
    prefetch = full_prefetch("p1", conditions=(b_all(**change),))
    context = {"draftOrders": draft_orders(medication_order("m1", name="vincristine"))}
    body = hook_request(service.removeprefix("allpath-"), prefetch=prefetch, context=context)
    if service == "allpath-patient-view":
        del body["context"]["draftOrders"]
    assert field in fields(post(service, body))


def test_malformed_unrelated_condition_the_templates_did_not_ask_for_is_dropped_not_refused(post):
    flu = {**b_all(), "id": "flu", "code": {"text": "Influenza"}, "onsetDateTime": "last winter"}
    prefetch = full_prefetch("p1", conditions=(b_all(), flu))
    assert post("allpath-patient-view", hook_request(prefetch=prefetch)).status_code == 200


# --- medicationReference resolved, product codes rolled up ----------------------------------------


def reference_order(rid: str, target: str, pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationReference": {"reference": target},
    }


def medication(mid: str, rxnorm: str) -> dict[str, Any]:
    return {"resourceType": "Medication", "id": mid, "code": {"coding": [{"system": RXNORM, "code": rxnorm}]}}


def tki_warnings(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [c for c in response.json()["cards"] if "tyrosine kinase inhibitor" in c["summary"]]


def test_draft_order_referencing_a_medication_in_the_draft_bundle_is_checked(post):
    orders = draft_orders(reference_order("m1", "Medication/doxo"), medication("doxo", "3639"))  # doxorubicin
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": orders})
    assert len(tki_warnings(post("allpath-order-sign", body))) == 1


def test_draft_order_referencing_a_prefetched_medication_by_full_url_is_checked(post):
    prefetch = ph_positive_prefetch()
    prefetch["medications"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": "https://ehr.example.org/fhir/Medication/doxo", "resource": medication("doxo", "3639")}],
    }
    orders = draft_orders(reference_order("m1", "https://ehr.example.org/fhir/Medication/doxo"))
    body = hook_request("order-sign", prefetch=prefetch, context={"draftOrders": orders})
    assert len(tki_warnings(post("allpath-order-sign", body))) == 1


def test_tki_draft_given_by_medication_reference_counts_as_a_tki(post):
    orders = draft_orders(
        medication_order("m1", rxnorm="3639"), reference_order("m2", "Medication/tki"), medication("tki", "475342")
    )
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": orders})
    assert tki_warnings(post("allpath-order-sign", body)) == []


def test_clofarabine_by_medication_reference_is_checked_with_the_age_in_years_and_months(post):
    prefetch = full_prefetch("p1", conditions=(b_all(),))
    born = dt.date.today() - dt.timedelta(days=int(22.5 * 365.25))
    prefetch["patient"] = patient("p1", birth_date=born.isoformat())
    orders = draft_orders(reference_order("m1", "#clo") | {"contained": [medication("clo", "44151")]})
    body = hook_request("order-sign", prefetch=prefetch, context={"draftOrders": orders})
    response = post("allpath-order-sign", body)
    (card,) = response.json()["cards"]
    assert "22 years 6 months old" in card["detail"] or "22 years 5 months old" in card["detail"], card["detail"]
    assert "22.4" not in card["detail"] and "22.5" not in card["detail"]


def test_product_level_rxnorm_code_is_rolled_up_to_its_ingredient(post):
    # 403879 is an imatinib 400 MG tablet product code in the importer's map (openFDA NDC directory).
    orders = draft_orders(medication_order("m1", rxnorm="3639"), medication_order("m2", rxnorm="403879"))
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": orders})
    assert tki_warnings(post("allpath-order-sign", body)) == []


# --- whose data: another patient's order is refused; a urn:uuid naming the patient is not ----------


def test_draft_order_for_another_patient_is_a_400(post):
    orders = draft_orders(medication_order("m1", name="vincristine", pid="someone-else"))
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": orders})
    problems = fields(post("allpath-order-sign", body))
    assert problems["context.draftOrders.entry[0].resource.subject.reference"] == (
        "names a patient other than context.patientId"
    )


def test_prefetch_subject_given_as_urn_uuid_of_the_context_patient_is_read(post):
    pid = "8c1d9a2e-3f4b-4c5d-9e6f-7a8b9c0d1e2f"  # Synthea gives patients their uuid as id
    condition = b_all(pid, subject={"reference": f"urn:uuid:{pid}"})
    body = hook_request(pid=pid, prefetch=full_prefetch(pid, conditions=(condition,)))
    cards = post("allpath-patient-view", body).json()["cards"]
    assert card_uuid(body["hookInstance"], SUMMARY_KEY) in [c["uuid"] for c in cards]


def test_prefetch_subject_given_as_urn_uuid_resolved_through_the_bundle_is_read(post):
    condition = b_all(subject={"reference": "urn:uuid:4e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a7b"})
    conditions = searchset(condition)
    the_patient = {"resource": patient("p1"), "search": {"mode": "include"}}
    conditions["entry"].append({"fullUrl": "urn:uuid:4e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a7b", **the_patient})
    prefetch = full_prefetch("p1")
    prefetch["conditions"] = conditions
    cards = post("allpath-patient-view", hook_request(prefetch=prefetch)).json()["cards"]
    assert any(c["source"]["topic"]["code"] == SUMMARY_KEY for c in cards)


def test_prefetch_subject_given_as_a_urn_uuid_of_someone_else_is_a_400(post):
    condition = b_all(subject={"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"})
    prefetch = full_prefetch("p1", conditions=(condition,))
    assert "prefetch.conditions.entry[0].resource.subject.reference" in fields(
        post("allpath-patient-view", hook_request(prefetch=prefetch))
    )


# --- patient-view: at most 5 cards, whole words, ages in years and months ------------------------


def test_patient_view_sends_at_most_five_cards_and_puts_the_overflow_warnings_on_one(call, engine, importer):
    def warning(n: int) -> Alert:
        citation = Citation(source_id="cancernet-all-2017", section="Chemotherapy")
        return Alert(id=f"extra-{n}", severity="warning", message=f"Record problem {n}. More.", citations=[citation])

    importer.alerts.extend(warning(n) for n in range(4))
    facts = importer.facts["teen-relapse"]
    plan = engine.recommend(facts, extra_alerts=importer.alerts)
    warnings = [a for a in plan.alerts if a.severity in ("critical", "warning")]
    assert len(warnings) >= 5 and plan.missing_facts
    body = hook_request(pid="teen-relapse", prefetch=full_prefetch("teen-relapse"))
    cards = call("allpath-patient-view", body).json()["cards"]
    assert len(cards) == 5
    keys = [w.id for w in warnings[:2]] + [MORE_ALERTS_KEY, SUMMARY_KEY, MISSING_FACTS_KEY]
    assert [c["uuid"] for c in cards] == [card_uuid(body["hookInstance"], k) for k in keys]
    more = cards[2]
    assert more["summary"].startswith(f"{len(warnings) - 2} more warnings: ")
    for alert in warnings[2:]:
        assert " ".join(alert.message.split()) in more["detail"]


def test_every_example_record_gets_at_most_five_cards_with_every_warning_shown(post, engine):
    import json
    from pathlib import Path

    from test_cds_fhir_end_to_end import EXAMPLES, as_prefetch

    from allpath.fhir.importer import facts_from_bundle

    assert EXAMPLES
    for path in EXAMPLES:
        bundle = json.loads(Path(path).read_text(encoding="utf-8"))
        pid, prefetch = as_prefetch(bundle)
        cards = post("allpath-patient-view", hook_request(pid=pid, prefetch=prefetch)).json()["cards"]
        assert 1 <= len(cards) <= 5, (path.name, len(cards))
        imported = facts_from_bundle(bundle)
        plan = engine.recommend(imported.facts, extra_alerts=imported.alerts)
        text = " ".join(c["summary"] + " " + c["detail"] for c in cards)
        for alert in plan.alerts:
            assert " ".join(alert.message.split()) in text, (path.name, alert.id)


def test_elspar_warning_summary_is_not_cut_after_the_e_of_e_coli(make_client, rsa, importer):
    # The elspar-discontinued alert (packs base + updates-2026; the practice pack folds it into the
    # agent) reads "Asparaginase sold as Elspar (from E. coli) has not been sold ...": a sentence
    # splitter that stopped at any ". " made its summary "... (from E."
    from allpath.engine import Engine
    from allpath.knowledge import load_kb

    client = make_client(engine=Engine(load_kb(["base", "updates-2026"])))
    endpoint = "/cds-services/allpath-patient-view"
    body = hook_request(pid="child", prefetch=full_prefetch("child"))
    response = client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint)))
    cards = response.json()["cards"]
    (elspar,) = [c for c in cards if "Elspar" in c["summary"]]
    assert elspar["summary"] == (
        "Asparaginase sold as Elspar (from E. coli) has not been sold in the United States since December 2012."
    )


def test_every_summary_is_cut_after_a_whole_word_within_140_characters(call, importer):
    importer.facts["long"] = PatientFacts.parse(
        {
            "age_years": 34,
            "lineage": "B",
            "ph_status": "positive",
            "disease_status": "relapsed",
            "remission_count": 1,
            "relapse_count": 1,
        }
    )
    cards = call("allpath-patient-view", hook_request(pid="long", prefetch=full_prefetch("long"))).json()["cards"]
    cut = [c["summary"] for c in cards if c["summary"].endswith("…")]
    assert cut, "expected at least one summary long enough to be cut"
    for card in cards:
        summary = card["summary"]
        assert len(summary) < 140
        assert not summary.rstrip("…").endswith((" E.", "(E.", " e.g.")), summary
    for summary in cut:
        kept = summary.removesuffix("…")
        assert kept[-1].isalnum() or kept[-1] in ")'\"", summary  # ends on a whole word, not on a space


def test_summary_card_gives_the_age_in_years_and_months(call, importer):
    importer.facts["five"] = PatientFacts.parse(
        {"age_years": 5.91, "lineage": "B", "ph_status": "negative", "disease_status": "newly_diagnosed"}
    )
    cards = call("allpath-patient-view", hook_request(pid="five", prefetch=full_prefetch("five"))).json()["cards"]
    (summary,) = [c for c in cards if c["source"]["topic"]["code"] == SUMMARY_KEY]
    assert summary["summary"].startswith("5 years 11 months, B-cell ALL, newly diagnosed: ")
    assert all("5.91" not in c["summary"] + c["detail"] for c in cards)


def test_summary_card_names_the_top_options_and_links_to_the_full_plan(call, engine, importer):
    cards = call("allpath-patient-view", hook_request(pid="child", prefetch=full_prefetch("child"))).json()["cards"]
    (summary,) = [c for c in cards if c["source"]["topic"]["code"] == SUMMARY_KEY]
    plan = engine.recommend(importer.facts["child"])
    standard = [r.title for r in plan.recommendations if r.strength == "standard"]
    assert standard[0] in summary["summary"]
    assert summary["links"][0] == {
        "label": "Open the full ALL plan in allpath",
        "url": "https://cds.allpath.test/smart/launch",
        "type": "smart",
    }


# --- damaged requests found by a seeded search: 400 naming the place, never a 500 ------------------


def test_damaged_draft_order_without_a_resource_type_string_is_a_400(post):
    order = medication_order("m1", name="vincristine") | {"resourceType": {"text": "MedicationRequest"}}
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": draft_orders(order)})
    assert "context.draftOrders.entry[0].resource" in fields(post("allpath-order-sign", body))


def test_damaged_contained_list_on_a_referencing_order_is_a_400(post):
    order = reference_order("m1", "#m") | {"contained": 5}
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": draft_orders(order)})
    assert "context.draftOrders.entry[0].resource.contained" in fields(post("allpath-order-sign", body))


def test_damaged_contained_resource_of_no_fhir_type_is_a_400(post):
    contained = medication("m", "3639") | {"resourceType": "urn:uuid:abc"}
    order = medication_order("m1", rxnorm="3639") | {"contained": [contained]}
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": draft_orders(order)})
    assert "context.draftOrders.entry[0].resource" in fields(post("allpath-order-sign", body))


def test_damaged_status_on_an_unrelated_medication_in_the_record_is_not_a_500(post):
    prefetch = ph_positive_prefetch()
    prefetch["medications"] = searchset(medication_order("old", name="amlodipine") | {"status": {"code": "active"}})
    orders = draft_orders(medication_order("m1", rxnorm="3639"))
    body = hook_request("order-sign", prefetch=prefetch, context={"draftOrders": orders})
    assert len(tki_warnings(post("allpath-order-sign", body))) == 1


def test_damaged_coding_system_on_a_prefetched_order_is_a_400(post):
    order = medication_order("old", rxnorm="282388", status="active")
    order["medicationCodeableConcept"]["coding"][0]["system"] = [RXNORM]
    prefetch = ph_positive_prefetch()
    prefetch["medications"] = searchset(order)
    problems = fields(post("allpath-patient-view", hook_request(prefetch=prefetch)))
    assert "prefetch.medications.entry[0].resource.medicationCodeableConcept.coding[0].system" in problems


def test_malformed_medication_an_order_references_is_a_400_naming_it(post):
    broken = {"resourceType": "Medication", "id": "doxo", "code": {"coding": {"system": RXNORM, "code": "3639"}}}
    orders = draft_orders(reference_order("m1", "Medication/doxo"), broken)
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": orders})
    assert "context.draftOrders.entry[1].resource.code.coding" in fields(post("allpath-order-sign", body))


def test_malformed_prefetched_medication_a_record_references_is_a_400_naming_it(post):
    prefetch = ph_positive_prefetch()
    broken = {"resourceType": "Medication", "id": "tki", "code": {"coding": [{"system": RXNORM, "code": 475342}]}}
    active = reference_order("old", "Medication/tki") | {"status": "active"}
    prefetch["medications"] = searchset(active, broken)
    problems = fields(post("allpath-patient-view", hook_request(prefetch=prefetch)))
    assert "prefetch.medications.entry[1].resource.code.coding[0].code" in problems


def test_problems_name_the_resource_by_its_place_in_the_request(post):
    prefetch = ph_positive_prefetch()
    prefetch["patient"] = patient("p1", birth_date="1980-05")  # valid FHIR, but no age can be worked out
    (card,) = post("allpath-patient-view", hook_request(prefetch=prefetch)).json()["cards"]
    assert "`prefetch.patient(Patient/p1).birthDate`" in card["detail"]
    assert "resources[" not in card["detail"]
