"""The service with the real FHIR importer: prefetch in, cards out, no stand-ins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cdskit import bearer, draft_orders, full_prefetch, hook_request, medication_order, patient, searchset, token

from allpath.api.cds.validate import validate_cds_response

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def b_all(pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "dx",
        "subject": {"reference": f"Patient/{pid}"},
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": SNOMED, "code": "277571004", "display": "B-cell acute lymphoblastic leukemia"}]},
        "recordedDate": "2026-11-01",
    }


def p210_positive(pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "bcr-abl",
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": LOINC, "code": "69380-4"}]},
        "effectiveDateTime": "2026-11-02",
        "valueQuantity": {"value": 0.42, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


def hypertension(pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "htn",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": SNOMED, "code": "38341003", "display": "Hypertension"}]},
    }


def ph_positive_prefetch() -> dict[str, Any]:
    return full_prefetch("p1", conditions=(b_all(), hypertension()), observations=(p210_positive(),))


@pytest.fixture
def real(make_client: Any, rsa: Any) -> Any:
    client = make_client(importer=None)

    def post(service: str, body: dict[str, Any]) -> Any:
        endpoint = f"/cds-services/{service}"
        response = client.post(endpoint, json=body, headers=bearer(token(rsa, endpoint)))
        assert response.status_code == 200, response.text
        cards = response.json()["cards"]
        assert validate_cds_response(response.json()) == []
        return cards

    return post


def test_patient_view_reads_ph_positive_b_all_from_prefetch(real):
    cards = real("allpath-patient-view", hook_request(prefetch=ph_positive_prefetch()))
    (summary,) = [c for c in cards if c["source"]["topic"]["code"] == "plan-summary"]
    options = summary["detail"].split("**Not advised:**")[0]
    assert "tyrosine kinase inhibitor" in options.lower(), options
    # Rituximab's evidence (GRAALL-2005/R) is for Ph-negative ALL: not offered here.
    assert "Rituximab" not in options
    # CNS involvement is not in the record: the importer's note is shown, not guessed away.
    assert "brain or spinal fluid" in summary["detail"]


def test_patient_without_all_gets_no_cards(real):
    prefetch = full_prefetch("p1", conditions=(hypertension(),))
    assert real("allpath-patient-view", hook_request(prefetch=prefetch)) == []


def test_record_without_a_full_birth_date_gets_an_explaining_card(real):
    prefetch = ph_positive_prefetch()
    prefetch["patient"] = {**patient("p1"), "birthDate": "1980-05"}  # valid FHIR, but no age can be worked out
    (card,) = real("allpath-patient-view", hook_request(prefetch=prefetch))
    assert "birthDate" in card["detail"]


def test_order_sign_recognises_chemotherapy_by_rxnorm_code(real):
    orders = draft_orders(medication_order("m1", rxnorm="3639"))  # doxorubicin, coded only
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": orders})
    (card,) = real("allpath-order-sign", body)
    assert card["indicator"] == "warning"
    first = card["suggestions"][0]["actions"][0]["resource"]["medicationCodeableConcept"]
    assert first["coding"][0] == {"system": RXNORM, "code": "282388", "display": "imatinib"}


def test_order_sign_accepts_a_tki_given_by_rxnorm_code(real):
    orders = draft_orders(medication_order("m1", rxnorm="3639"), medication_order("m2", rxnorm="475342"))
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": orders})
    assert real("allpath-order-sign", body) == []


def test_active_tki_in_the_prefetched_medications_counts(real):
    active = medication_order("old", rxnorm="662281", status="active")  # nilotinib
    prefetch = ph_positive_prefetch()
    prefetch["medications"] = searchset(active)
    orders = draft_orders(medication_order("m1", name="cytarabine"))
    body = hook_request("order-sign", prefetch=prefetch, context={"draftOrders": orders})
    assert real("allpath-order-sign", body) == []


def test_suggested_tki_orders_are_valid_fhir_r4_medication_requests(real):
    from fhir.resources.R4B.medicationrequest import MedicationRequest

    orders = draft_orders(medication_order("m1", rxnorm="3639"))
    body = hook_request("order-sign", prefetch=ph_positive_prefetch(), context={"draftOrders": orders})
    (card,) = real("allpath-order-sign", body)
    for suggestion in card["suggestions"]:
        (action,) = suggestion["actions"]
        MedicationRequest.model_validate(action["resource"])


ROOT = Path(__file__).resolve().parents[2]
# The EHR-shaped test Bundles too, except those whose patient references are `urn:uuid:` or whose
# drugs are Medication resources outside the prefetch searches.
EXAMPLES = sorted((ROOT / "examples" / "fhir").glob("*.bundle.json")) + [
    p
    for p in sorted((ROOT / "tests" / "fhir" / "bundles").glob("*.bundle.json"))
    if not p.name.startswith(("synthea-", "blinatumomab-by-reference"))
]
KEY_OF = {
    "Patient": "patient",
    "Condition": "conditions",
    "Observation": "observations",
    "MedicationRequest": "medications",
    "MedicationAdministration": "administrations",
    "MedicationStatement": "statements",
    "Procedure": "procedures",
}


def as_prefetch(bundle: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split an example Bundle the way an EHR would answer the service's prefetch templates."""
    found: dict[str, list[dict[str, Any]]] = {k: [] for k in KEY_OF.values()}
    (the_patient,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        owner = (resource.get("subject") or resource.get("patient") or {}).get("reference")
        # A search `?patient=<id>` returns only that patient's resources.
        if resource["resourceType"] in KEY_OF and owner in (None, f"Patient/{the_patient['id']}"):
            found[KEY_OF[resource["resourceType"]]].append(resource)
    found.pop("patient")
    return the_patient["id"], {"patient": the_patient, **{k: searchset(*v) for k, v in found.items()}}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name.split(".")[0] for p in EXAMPLES])
def test_example_bundle_as_prefetch_gives_the_cards_of_its_plan(real, engine, path):
    from allpath.api.cds.cards import CardFactory
    from allpath.fhir.importer import facts_from_bundle

    bundle = json.loads(path.read_text(encoding="utf-8"))
    imported = facts_from_bundle(bundle)
    plan = engine.recommend(imported.facts, extra_alerts=imported.alerts)
    pid, prefetch = as_prefetch(bundle)
    body = hook_request(pid=pid, prefetch=prefetch)
    cards = real("allpath-patient-view", body)
    # The same plan as the Bundle gives through the importer, so the same cards.
    expected, _ = CardFactory(engine.kb, engine.kb.disclaimer).plan_cards(
        plan, body["hookInstance"], plan_link="https://cds.allpath.test/smart/launch"
    )
    assert cards == expected


def test_an_undotted_icd10cm_diagnosis_in_prefetch_reaches_the_importer(real):
    # Claims feeds send C91.00 as C9100: the conditions template keeps it, so the patient gets cards.
    dx = b_all()
    dx["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C9100"}]}
    cards = real("allpath-patient-view", hook_request(prefetch=full_prefetch("p1", conditions=(dx,))))
    assert cards
