"""FHIR R4 import: example Bundles map to the expected facts; bad input names the resource and element."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from allpath.facts import PatientFacts
from allpath.fhir import FhirInputError, facts_from_bundle, facts_from_resources, validate_resource
from allpath.fhir.codes import CASE_FEATURE_SYSTEM, FACT_VALUE_SYSTEM, LOINC, UCUM
from allpath.fhir.importer import age_in_years

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = ROOT / "examples" / "fhir"
AS_OF = dt.date(2026, 11, 26)
NAMES = sorted(p.name.removesuffix(".bundle.json") for p in BUNDLES.glob("*.bundle.json"))
# The noisy Bundle buries the Ph-positive adult among unrelated resources.
EXPECTED = {name: name for name in NAMES} | {"large-noisy-ph-positive-adult": "newly-diagnosed-adult-ph-positive-cns"}


def bundle(name: str) -> dict[str, Any]:
    return json.loads((BUNDLES / f"{name}.bundle.json").read_text(encoding="utf-8"))


def small() -> dict[str, Any]:
    return bundle("newly-diagnosed-child-b-cell")


def problems_of(data: dict[str, Any], **kw: Any) -> list[str]:
    with pytest.raises(FhirInputError) as info:
        facts_from_bundle(data, as_of=AS_OF, **kw)
    return [str(p) for p in info.value.problems]


def entry_index(data: dict[str, Any], kind: str, code: str | None = None) -> int:
    for i, entry in enumerate(data["entry"]):
        resource = entry["resource"]
        if resource["resourceType"] != kind:
            continue
        codes = [c["code"] for c in resource.get("code", {}).get("coding", [])]
        if code is None or code in codes:
            return i
    raise LookupError(kind)


def test_at_least_eight_example_bundles_cover_the_decision_points() -> None:
    assert len(NAMES) >= 9
    statuses = {facts_from_bundle(bundle(n), as_of=AS_OF).facts.disease_status for n in NAMES}
    assert statuses == {"newly_diagnosed", "in_remission", "refractory", "relapsed"}


@pytest.mark.parametrize("name", NAMES)
def test_example_bundle_maps_to_the_facts_of_the_same_example(name: str) -> None:
    expected = PatientFacts.parse(json.loads((ROOT / "examples" / f"{EXPECTED[name]}.json").read_text()))
    assert facts_from_bundle(bundle(name), as_of=AS_OF).facts == expected


def test_large_noisy_bundle_ignores_other_patients_withdrawn_results_and_refuted_diagnoses() -> None:
    result = facts_from_bundle(bundle("large-noisy-ph-positive-adult"), as_of=AS_OF)
    assert len(bundle("large-noisy-ph-positive-adult")["entry"]) > 400
    # Each trap would have changed a fact: Ph negative (other patient), MRD positive (entered
    # in error), lineage unknown (refuted T-ALL conflicting with B-ALL).
    assert (result.facts.ph_status, result.facts.mrd_status, result.facts.lineage) == ("positive", "unknown", "B")
    notes = " ".join(result.notes)
    assert "another patient" in notes
    assert "entered-in-error" in notes
    assert "refuted" in notes
    assert "52175 is a known-wrong code" in notes
    assert "Encounter x30" in notes


def test_missing_ph_status_is_unknown_with_an_alert_citing_the_kb(kb: Any) -> None:
    data = bundle("second-relapse-adult-t-cell")
    result = facts_from_bundle(data, as_of=AS_OF)
    assert result.facts.ph_status == "unknown"
    alert = next(a for a in result.alerts if a.id == "fhir-missing-ph-status")
    assert alert.severity == "warning"
    for citation in alert.citations:
        assert citation.section in kb.sources[citation.source_id].sections


def test_every_import_alert_cites_a_real_kb_section(kb: Any) -> None:
    for name in NAMES:
        for alert in facts_from_bundle(bundle(name), as_of=AS_OF).alerts:
            for c in alert.citations:
                assert c.section in kb.sources[c.source_id].sections, (name, alert.id)


def test_p210_not_detected_does_not_make_the_leukemia_ph_negative() -> None:
    data = bundle("newly-diagnosed-adult-ph-positive-cns")
    i = entry_index(data, "Observation", "69380-4")
    data["entry"][i]["resource"]["valueQuantity"]["value"] = 0
    result = facts_from_bundle(data, as_of=AS_OF)
    assert result.facts.ph_status == "unknown"
    assert any("p190" in n for n in result.notes)


def test_relapse_without_counts_uses_the_least_counts_and_says_so() -> None:
    data = bundle("first-relapse-after-long-remission-child")
    data["entry"] = [
        e
        for e in data["entry"]
        if not any(
            c["code"] in ("relapse_count", "remission_count") for c in e["resource"].get("code", {}).get("coding", [])
        )
    ]
    result = facts_from_bundle(data, as_of=AS_OF)
    assert (result.facts.relapse_count, result.facts.remission_count) == (1, 1)
    assert {"fhir-missing-relapse-count", "fhir-missing-remission-count"} <= {a.id for a in result.alerts}


def test_not_in_remission_after_induction_reads_as_refractory() -> None:
    assert facts_from_bundle(bundle("refractory-adult"), as_of=AS_OF).facts.disease_status == "refractory"


def test_the_most_recent_condition_decides_the_disease_status() -> None:
    data = bundle("remission-treatment-completed")
    assert facts_from_bundle(data, as_of=AS_OF).facts.disease_status == "in_remission"
    for entry in data["entry"]:
        if entry["resource"]["resourceType"] == "Condition" and entry["resource"]["recordedDate"].startswith("2023"):
            entry["resource"]["recordedDate"] = "2026-11-25"
    # The newest Condition now says "not having achieved remission" after all three phases.
    assert facts_from_bundle(data, as_of=AS_OF).facts.disease_status == "refractory"


def test_b_and_t_codes_on_one_condition_warn_and_leave_lineage_unknown() -> None:
    data = small()
    i = entry_index(data, "Condition")
    data["entry"][i]["resource"]["code"]["coding"].append(
        {"system": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl", "code": "C3183"}
    )
    result = facts_from_bundle(data, as_of=AS_OF)
    assert result.facts.lineage == "unknown"
    (alert,) = [a for a in result.alerts if a.id == "fhir-conflicting-condition-codes"]
    assert alert.severity == "warning"
    assert "lineage B vs T" in alert.message and "Condition/condition-2.code" in alert.message


def test_conflicting_lineage_across_resources_is_unknown_with_an_alert() -> None:
    data = small()
    data["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "id": "lin",
                "status": "final",
                "subject": {"reference": "Patient/nd-child"},
                "code": {"coding": [{"system": CASE_FEATURE_SYSTEM, "code": "lineage"}]},
                "valueCodeableConcept": {"coding": [{"system": FACT_VALUE_SYSTEM, "code": "T"}]},
            }
        }
    )
    result = facts_from_bundle(data, as_of=AS_OF)
    assert result.facts.lineage == "unknown"
    assert "fhir-conflicting-lineage" in {a.id for a in result.alerts}


def test_months_can_be_given_in_years() -> None:
    data = bundle("first-relapse-after-long-remission-child")
    for entry in data["entry"]:
        quantity = entry["resource"].get("valueQuantity")
        if quantity and quantity.get("code") == "mo":
            entry["resource"]["valueQuantity"] = {"value": 1.5, "unit": "a", "system": UCUM, "code": "a"}
    assert facts_from_bundle(data, as_of=AS_OF).facts.remission_duration_months == 18


# --- invalid input -------------------------------------------------------------------------


def test_wrong_value_type_names_the_entry_resource_and_element() -> None:
    data = small()
    i = entry_index(data, "Observation")
    data["entry"][i]["resource"]["valueCodeableConcept"] = "negative"
    rid = data["entry"][i]["resource"]["id"]
    assert problems_of(data) == [
        f"Bundle.entry[{i}].resource(Observation/{rid}).valueCodeableConcept: must be a JSON object"
    ]


def test_unknown_element_is_named() -> None:
    data = small()
    data["entry"][0]["resource"]["favouriteColour"] = "blue"
    assert problems_of(data) == [
        "Bundle.entry[0].resource(Patient/nd-child).favouriteColour: is not an element of this resource in FHIR R4"
    ]


def test_missing_required_element_is_named() -> None:
    data = small()
    i = entry_index(data, "Observation")
    del data["entry"][i]["resource"]["status"]
    (problem,) = problems_of(data)
    assert problem.startswith(f"Bundle.entry[{i}].resource(Observation/") and ").status:" in problem


def test_r5_only_resource_type_is_rejected() -> None:
    data = small()
    data["entry"].append({"resource": {"resourceType": "Transport", "id": "t"}})
    assert problems_of(data) == [
        f"Bundle.entry[{len(data['entry']) - 1}].resource.resourceType: 'Transport' is not a FHIR R4 resource type"
    ]


def test_a_bundle_without_a_type_is_rejected() -> None:
    (problem,) = problems_of({"resourceType": "Bundle"})
    assert problem.startswith("Bundle.type:")


def test_a_single_resource_is_read_as_the_whole_record() -> None:
    # A lone Patient is read (not refused as "not a Bundle"), and holds no diagnosis.
    assert problems_of({"resourceType": "Patient", "id": "p", "birthDate": "2015-01-01"}) == [
        "Condition: no Condition coded as ALL (ICD-10-CM C91.0/C91.0x, WHO ICD-10 C91.0, SNOMED CT "
        "91857003/91856007/277571004, NCIt C3167/C8644/C3183) and no allpath disease_status Observation: "
        "disease_status cannot be read"
    ]


def test_missing_birth_date_is_an_error_not_a_guess() -> None:
    data = small()
    del data["entry"][0]["resource"]["birthDate"]
    assert problems_of(data) == [
        "Bundle.entry[0].resource(Patient/nd-child).birthDate: is required: age_years is worked out from it"
    ]


def test_partial_birth_date_is_an_error_not_a_guess() -> None:
    data = small()
    data["entry"][0]["resource"]["birthDate"] = "2020"
    (problem,) = problems_of(data)
    assert problem.startswith("Bundle.entry[0].resource(Patient/nd-child).birthDate: needs a full date")


def test_bundle_without_an_all_diagnosis_is_rejected() -> None:
    data = small()
    data["entry"] = [e for e in data["entry"] if e["resource"]["resourceType"] != "Condition"]
    (problem,) = problems_of(data)
    assert problem.startswith("Condition: no Condition coded as ALL")


def test_remission_status_on_a_relapse_code_is_a_contradiction() -> None:
    data = bundle("first-relapse-after-long-remission-child")
    i = entry_index(data, "Condition")
    data["entry"][i]["resource"]["clinicalStatus"]["coding"][0]["code"] = "remission"
    (problem,) = problems_of(data)
    assert (
        problem.startswith(f"Bundle.entry[{i}].resource(Condition/")
        and ".clinicalStatus: remission contradicts" in problem
    )


def test_case_feature_with_a_value_outside_its_values_is_named() -> None:
    data = small()
    i = entry_index(data, "Observation", "ph_status")
    data["entry"][i]["resource"]["valueCodeableConcept"]["coding"][0]["code"] = "maybe"
    (problem,) = problems_of(data)
    assert (
        problem.startswith(f"Bundle.entry[{i}].resource(Observation/")
        and ".valueCodeableConcept: ph_status needs" in problem
    )


def test_contradictory_counts_name_the_observation_that_gave_them() -> None:
    data = bundle("first-relapse-after-long-remission-child")
    i = entry_index(data, "Observation", "relapse_count")
    data["entry"][i]["resource"]["valueInteger"] = 3
    (problem,) = problems_of(data)
    assert (
        problem.startswith(f"Bundle.entry[{i}].resource(Observation/")
        and "relapse_count: must be <= remission_count" in problem
    )


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = small()
    data["entry"][0]["resource"]["bogus"] = 1
    data["entry"][1]["resource"]["alsoBogus"] = 2
    assert len(problems_of(data)) == 2


# --- prefetch, age ------------------------------------------------------------------------


def test_facts_from_resources_reads_a_prefetch_with_searchset_bundles() -> None:
    data = bundle("newly-diagnosed-adult-ph-positive-cns")
    resources = [e["resource"] for e in data["entry"]]
    patient, rest = resources[0], resources[1:]
    searchset = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in rest]}
    from_prefetch = facts_from_resources([patient, searchset], as_of=AS_OF)
    assert from_prefetch.facts == facts_from_bundle(data, as_of=AS_OF).facts


def test_prefetch_problem_names_the_resource_position() -> None:
    resources = [e["resource"] for e in small()["entry"]]
    resources[1] = copy.deepcopy(resources[1])
    resources[1]["bogus"] = True
    with pytest.raises(FhirInputError) as info:
        facts_from_resources(resources, as_of=AS_OF)
    assert info.value.problems[0].field.startswith("resources[1](Condition/")


def test_validate_resource_names_the_problem_by_resource_type_id_and_element() -> None:
    observation = copy.deepcopy(small()["entry"][2]["resource"])
    assert validate_resource(observation) == []
    observation["valueQuantity"] = "lots"
    assert [str(p) for p in validate_resource(observation)] == [
        f"Observation/{observation['id']}.valueQuantity: must be a JSON object"
    ]
    assert [str(p) for p in validate_resource({"resourceType": "Nonsense"})] == [
        "resourceType: 'Nonsense' is not a FHIR R4 resource type"
    ]
    assert [str(p) for p in validate_resource({"id": "x"})] == ["resourceType: is required"]


@pytest.mark.parametrize("name", NAMES)
def test_already_validated_resources_map_to_the_same_result(name: str) -> None:
    resources = [e["resource"] for e in bundle(name)["entry"]]
    assert all(validate_resource(r) == [] for r in resources)
    assert facts_from_resources(resources, as_of=AS_OF, validated=True) == facts_from_resources(resources, as_of=AS_OF)


def test_validated_trusts_the_caller_and_runs_no_second_fhir_validation() -> None:
    resources = copy.deepcopy([e["resource"] for e in small()["entry"]])
    resources[1]["bogus"] = True  # invalid R4: caught only when the importer validates
    with pytest.raises(FhirInputError):
        facts_from_resources(resources, as_of=AS_OF)
    assert (
        facts_from_resources(resources, as_of=AS_OF, validated=True).facts
        == facts_from_bundle(small(), as_of=AS_OF).facts
    )


def test_validated_skips_only_the_validation_not_the_mapping_checks() -> None:
    resources = [e["resource"] for e in small()["entry"] if e["resource"]["resourceType"] != "Condition"]
    with pytest.raises(FhirInputError) as info:
        facts_from_resources(resources, as_of=AS_OF, validated=True)
    assert info.value.problems[0].field == "Condition"


def test_age_is_below_22_the_day_before_the_22nd_birthday_and_22_on_it() -> None:
    born = dt.date(2004, 11, 26)
    assert age_in_years(born, dt.date(2026, 11, 25)) < 22
    assert age_in_years(born, dt.date(2026, 11, 26)) == 22


def test_leap_day_birthday_is_reached_on_1_march_in_a_common_year() -> None:
    born = dt.date(2008, 2, 29)
    assert age_in_years(born, dt.date(2026, 2, 28)) < 18
    assert age_in_years(born, dt.date(2026, 3, 1)) == 18


def test_age_defaults_to_today() -> None:
    data = small()
    today = dt.date.today()
    expected = age_in_years(dt.date.fromisoformat(data["entry"][0]["resource"]["birthDate"]), today)
    assert facts_from_bundle(data).facts.age_years == expected


def test_birth_date_after_the_as_of_date_is_rejected() -> None:
    data = small()
    with pytest.raises(FhirInputError) as info:
        facts_from_bundle(data, as_of=dt.date(2019, 1, 1))
    assert info.value.problems[0].problem.startswith("is after the as-of date")


def test_notes_carry_no_birth_date() -> None:
    for name in NAMES:
        data = bundle(name)
        birth = data["entry"][0]["resource"]["birthDate"]
        assert birth not in " ".join(facts_from_bundle(data, as_of=AS_OF).notes)


def test_p210_positive_observation_sets_ph_positive() -> None:
    data = small()
    data["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "id": "p210",
                "status": "final",
                "subject": {"reference": "Patient/nd-child"},
                "effectiveDateTime": "2026-11-25",
                "code": {"coding": [{"system": LOINC, "code": "69380-4"}]},
                "valueQuantity": {"value": 0.4, "unit": "%", "system": UCUM, "code": "%"},
            }
        }
    )
    # The newer p210 result overrides the older recorded 'negative'.
    assert facts_from_bundle(data, as_of=AS_OF).facts.ph_status == "positive"


def test_a_duration_just_under_18_months_is_not_rounded_up_to_18() -> None:
    data = bundle("first-relapse-after-long-remission-child")
    for entry in data["entry"]:
        quantity = entry["resource"].get("valueQuantity")
        if quantity and quantity.get("code") == "mo":
            # 547.7 days is 17.994 months: still a short remission.
            entry["resource"]["valueQuantity"] = {"value": 547.7, "unit": "d", "system": UCUM, "code": "d"}
    months = facts_from_bundle(data, as_of=AS_OF).facts.remission_duration_months
    assert months is not None and 17.99 < months < 18


@pytest.mark.parametrize(
    "reference", ["Patient/nd-child", "https://ehr.example.org/fhir/Patient/nd-child", "Patient/nd-child/_history/3"]
)
def test_references_to_the_patient_in_any_form_are_read(reference: str) -> None:
    data = small()
    i = entry_index(data, "Observation", "ph_status")
    data["entry"][i]["resource"]["subject"] = {"reference": reference}
    assert facts_from_bundle(data, as_of=AS_OF).facts.ph_status == "negative"


def test_a_reference_to_another_patient_is_not_read() -> None:
    data = small()
    i = entry_index(data, "Observation", "ph_status")
    data["entry"][i]["resource"]["subject"] = {"reference": "https://ehr.example.org/fhir/Patient/nd-child-2"}
    assert facts_from_bundle(data, as_of=AS_OF).facts.ph_status == "unknown"
