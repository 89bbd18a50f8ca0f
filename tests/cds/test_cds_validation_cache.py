"""Issue 16, item 4: a chart opened again is not validated again, and nothing else changes.

The FHIR validation of the prefetched resources was most of a patient-view call's CPU. The service
now remembers, per worker, the SHA-256 of each resource it found valid (`ValidResources`); these
tests pin what that may and may not change: an unchanged chart answers the same without being
validated again, an invalid resource is refused every time it is sent, and a resource changed in
any value is validated again.
"""

from __future__ import annotations

from typing import Any

import pytest
from cdskit import bearer, full_prefetch, hook_request, token

import allpath.fhir.importer as importer_module
from allpath.api.cds.records import ValidResources
from allpath.api.cds.validate import validate_cds_response

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
PATIENT_VIEW = "/cds-services/allpath-patient-view"


def b_all(**changes: Any) -> dict[str, Any]:
    condition = {
        "resourceType": "Condition",
        "id": "dx",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SNOMED, "code": "277571004"}]},
        "recordedDate": "2026-11-01",
    }
    condition.update(changes)
    return condition


def ph_positive() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "bcr-abl",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": "69380-4"}]},
        "effectiveDateTime": "2026-11-02",
        "valueQuantity": {"value": 0.42, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resource ids the FHIR validation is run on, in order (the real validation still runs)."""
    seen: list[str] = []
    real = importer_module.validate_resource

    def counting(resource: Any) -> Any:
        seen.append(f"{resource.get('resourceType')}/{resource.get('id')}")
        return real(resource)

    monkeypatch.setattr(importer_module, "validate_resource", counting)
    return seen


@pytest.fixture
def post(make_client: Any, rsa: Any) -> Any:
    client = make_client(importer=None)  # the real FHIR importer: what the EHR sends is what is read

    def send(body: dict[str, Any]) -> Any:
        response = client.post(PATIENT_VIEW, json=body, headers=bearer(token(rsa, PATIENT_VIEW)))
        assert response.status_code != 500, response.text
        return response

    return send


def chart(**condition_changes: Any) -> dict[str, Any]:
    prefetch = full_prefetch("p1", conditions=(b_all(**condition_changes),), observations=(ph_positive(),))
    return hook_request("patient-view", prefetch=prefetch)


def test_a_chart_sent_again_unchanged_is_not_validated_again_and_gets_the_same_cards(post, validated):
    body = chart()
    first = post(body)
    assert first.status_code == 200, first.text
    assert {"Condition/dx", "Observation/bcr-abl", "Patient/p1"} <= set(validated)
    validated.clear()

    second = post(body)

    assert second.status_code == 200, second.text
    assert validated == []
    assert second.json() == first.json()
    assert validate_cds_response(second.json()) == []
    assert [c["indicator"] for c in second.json()["cards"]] != []


def test_an_invalid_condition_sent_twice_is_refused_twice_naming_its_entry(post, validated):
    body = chart(onsetDateTime="last spring")
    for _ in range(2):
        validated.clear()
        response = post(body)
        assert response.status_code == 400, response.text
        fields = {d["field"] for d in response.json()["details"]}
        assert "prefetch.conditions.entry[0].resource.onsetDateTime" in fields
        assert "Condition/dx" in validated


def test_a_condition_changed_after_it_was_validated_is_validated_again_and_refused(post, validated):
    assert post(chart()).status_code == 200
    validated.clear()

    response = post(chart(recordedDate="2026-13-45"))

    assert response.status_code == 400, response.text
    assert "prefetch.conditions.entry[0].resource.recordedDate" in {d["field"] for d in response.json()["details"]}
    # Only the changed resource is validated again: the others are byte-for-byte what was found valid.
    assert validated == ["Condition/dx"]


def test_valid_resources_forgets_the_least_recently_seen_beyond_its_size():
    known = ValidResources(size=2)
    digests = [ValidResources.digest({"resourceType": "Patient", "id": str(i)}) for i in range(3)]
    for digest in digests:
        known.remember(digest)

    assert len(known) == 2
    assert not known.known(digests[0])
    assert known.known(digests[1]) and known.known(digests[2])


def test_the_digest_changes_with_any_value_and_ignores_key_order():
    one = {"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 0.42, "unit": "%"}}
    reordered = {"valueQuantity": {"unit": "%", "value": 0.42}, "id": "o", "resourceType": "Observation"}
    changed = {"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 0.43, "unit": "%"}}

    assert ValidResources.digest(one) == ValidResources.digest(reordered)
    assert ValidResources.digest(one) != ValidResources.digest(changed)


def test_content_that_is_not_plain_json_has_no_digest_so_is_never_taken_for_a_resource_seen_before():
    assert ValidResources.digest({"resourceType": "Patient", "id": "p", "birthDate": object()}) is None
    assert ValidResources.digest({1: "a key that is not a string"}) is None
    known = ValidResources()
    known.remember(None)
    assert len(known) == 0 and not known.known(None)
