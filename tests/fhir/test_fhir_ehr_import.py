"""Real EHR data in: mCODE disease status and genomics, treatment history, and diagnoses coded the
way real systems code them. The Bundles are in tests/fhir/bundles (README.md gives their origins)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from allpath.cli import app
from allpath.engine import Engine
from allpath.explain import render_text
from allpath.fhir import FhirInputError, Importer, facts_from_bundle
from allpath.fhir.codes import ICD10, ICD10CM, LOINC, NCIT, RXNORM, SNOMED, code_tables

BUNDLES = Path(__file__).parent / "bundles"
AS_OF = dt.date(2026, 11, 26)
runner = CliRunner()


def bundle(name: str) -> dict[str, Any]:
    return json.loads((BUNDLES / f"{name}.bundle.json").read_text(encoding="utf-8"))


def read(data: dict[str, Any]) -> Any:
    return facts_from_bundle(data, as_of=AS_OF)


def resource(data: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(e["resource"] for e in data["entry"] if e["resource"].get("id") == rid)


def alert_ids(result: Any) -> set[str]:
    return {a.id for a in result.alerts}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(FhirInputError) as info:
        read(data)
    return [str(p) for p in info.value.problems]


# --- the cases of issue 12, "Why" ----------------------------------------------------------------


def test_child_treated_since_january_2024_is_read_as_under_treatment_not_untreated(engine: Engine) -> None:
    # The mCODE pediatric example: induction drugs given 2024-01-09, later status only "improved".
    result = read(bundle("mcode-pediatric-brian-l"))
    assert result.facts.phase_in_progress != "none"
    (alert,) = [a for a in result.alerts if a.id == "fhir-treatment-without-response"]
    assert "since 2024-01-09" in alert.message and "vincristine" in alert.message
    text = render_text(engine.recommend(result.facts, extra_alerts=result.alerts))
    assert "has not started" not in text.lower() and "before treatment starts" not in text.lower()


def test_mcode_97509_4_full_remission_is_read_as_in_remission() -> None:
    result = read(bundle("mcode-pediatric-brian-l-remission"))
    assert result.facts.disease_status == "in_remission"
    assert (result.facts.remission_count, result.facts.relapse_count) == (1, 0)
    assert "fhir-treatment-without-response" not in alert_ids(result)


@pytest.mark.parametrize(
    ("code", "answer"),
    [
        ("88040-1", (SNOMED, "260415000")),  # mCODE STU1: code and "not detected"
        ("97509-4", ("http://hl7.org/fhir/us/mcode/CodeSystem/snomed-requested-cs", "USCRS-352236")),  # STU2
        ("97509-4", (SNOMED, "103338009")),  # STU3: "in full remission" qualifier
    ],
)
def test_every_mcode_release_spelling_of_complete_remission_is_read(code: str, answer: tuple[str, str]) -> None:
    data = bundle("mcode-pediatric-brian-l-remission")
    status = resource(data, "cancer-disease-status-remission-brian-l")
    status["code"] = {"coding": [{"system": LOINC, "code": code}]}
    status["valueCodeableConcept"] = {"coding": [{"system": answer[0], "code": answer[1]}]}
    assert read(data).facts.disease_status == "in_remission"


def test_improved_disease_status_is_not_read_as_remission() -> None:
    result = read(bundle("mcode-pediatric-brian-l"))
    assert result.facts.disease_status == "newly_diagnosed"
    assert any("improved" in n and "says nothing about remission" in n for n in result.notes)


def test_bcr_abl1_variant_reads_as_ph_positive_with_a_tki_option(engine: Engine) -> None:
    result = read(bundle("synthea-ph-positive-adult"))
    assert result.facts.ph_status == "positive"
    assert result.facts.genetic_subtypes == ("bcr-abl1",)
    plan = engine.recommend(result.facts, extra_alerts=result.alerts)
    agents = {a.id for r in plan.recommendations for a in r.agents}
    assert agents & {"imatinib", "dasatinib", "ponatinib"}


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (ICD10CM, "C9100"),  # ICD-10-CM without the dot, as claims feeds send it
        (ICD10CM, "C91.0"),  # the ICD-10-CM header
        (ICD10, "C91.0"),  # WHO ICD-10
        (ICD10, "C910"),
        (SNOMED, "277571004"),  # a SNOMED CT descendant of ALL (the shipped subset)
        (NCIT, "C3167"),
        ("http://ncithesaurus-stage.nci.nih.gov", "C3167"),  # mCODE's spelling of the NCIt system
    ],
)
def test_common_diagnosis_codings_are_read_as_all(system: str, code: str) -> None:
    data = bundle("synthea-ph-positive-adult")
    resource(data, "c-all")["code"] = {"coding": [{"system": system, "code": code}]}
    assert read(data).facts.disease_status == "newly_diagnosed"


@pytest.mark.parametrize(("code", "status"), [("C9101", "in_remission"), ("c9102", "relapsed")])
def test_undotted_icd10cm_codes_keep_their_remission_state(code: str, status: str) -> None:
    data = bundle("synthea-ph-positive-adult")
    resource(data, "c-all")["code"] = {"coding": [{"system": ICD10CM, "code": code}]}
    assert read(data).facts.disease_status == status


def test_snomed_in_remission_beside_stale_icd_not_in_remission_warns_not_blocks() -> None:
    path = BUNDLES / "stale-icd-beside-snomed-remission.bundle.json"
    result = runner.invoke(app, ["recommend", "--fhir", str(path), "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    (alert,) = [a for a in plan["alerts"] if a["id"] == "fhir-conflicting-condition-codes"]
    assert alert["severity"] == "warning" and "remission in_remission vs not_in_remission" in alert["message"]


def test_a_newer_disease_status_decides_over_a_stale_code() -> None:
    data = bundle("stale-icd-beside-snomed-remission")
    data["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "id": "ds",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "97509-4"}]},
                "subject": {"reference": "Patient/stale"},
                "effectiveDateTime": "2026-10-01",
                "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "550991000124107"}]},
            }
        }
    )
    assert read(data).facts.disease_status == "in_remission"


@pytest.mark.parametrize("status", ["provisional", "differential", "unconfirmed"])
def test_unconfirmed_diagnosis_warns(status: str) -> None:
    data = bundle("provisional-diagnosis")
    resource(data, "c-prov")["verificationStatus"]["coding"][0]["code"] = status
    (alert,) = [a for a in read(data).alerts if a.id == "fhir-unconfirmed-diagnosis"]
    assert alert.severity == "warning" and status in alert.message


@pytest.mark.parametrize("status", ["refuted", "entered-in-error"])
def test_refuted_diagnosis_is_ignored(status: str) -> None:
    data = bundle("provisional-diagnosis")
    resource(data, "c-prov")["verificationStatus"]["coding"][0]["code"] = status
    assert problems(data)[0].startswith("Condition: no Condition coded as ALL")


def test_equally_recent_diagnoses_that_disagree_warn_instead_of_blocking() -> None:
    data = bundle("provisional-diagnosis")
    first = resource(data, "c-prov")
    first["verificationStatus"]["coding"][0]["code"] = "confirmed"
    first["code"] = {"coding": [{"system": ICD10CM, "code": "C91.01"}]}
    second = copy.deepcopy(first)
    second["id"] = "c-prov-2"
    second["code"] = {"coding": [{"system": ICD10CM, "code": "C91.00"}]}
    data["entry"].append({"resource": second})
    result = read(data)
    assert "fhir-conflicting-condition-codes" in alert_ids(result)
    assert result.facts.disease_status == "newly_diagnosed"


def test_text_only_all_condition_asks_for_a_code() -> None:
    data = bundle("provisional-diagnosis")
    resource(data, "c-prov")["code"] = {"text": "Acute lymphoblastic leukemia"}
    (problem,) = problems(data)
    assert ".code: names ALL in its text only: add a coded diagnosis" in problem


def test_text_only_all_condition_beside_a_coded_one_is_an_alert_asking_for_a_code() -> None:
    data = bundle("provisional-diagnosis")
    uncoded = copy.deepcopy(resource(data, "c-prov"))
    uncoded.update(id="c-text", code={"text": "B-ALL, relapsed?"})
    data["entry"].append({"resource": uncoded})
    (alert,) = [a for a in read(data).alerts if a.id == "fhir-uncoded-diagnosis"]
    assert "Condition/c-text" in alert.message and "Add a coded diagnosis" in alert.message


# --- history, lineage, genetics, treatment -------------------------------------------------------


def test_relapse_after_remission_is_counted_and_timed_from_the_diagnosis() -> None:
    result = read(bundle("relapse-history"))
    facts = result.facts
    assert (facts.disease_status, facts.remission_count, facts.relapse_count) == ("relapsed", 1, 1)
    # Diagnosed 2023-01-10, worsened after a remission on 2025-09-10.
    assert facts.months_from_diagnosis_to_relapse == 32.0
    assert not {"fhir-missing-relapse-count", "fhir-missing-remission-count"} & alert_ids(result)


def test_regimen_count_that_cannot_be_counted_stays_unknown_and_is_named_in_the_plan(engine: Engine) -> None:
    result = read(bundle("relapse-history"))
    assert result.facts.prior_regimen_count is None
    assert "fhir-missing-prior-regimen-count" in alert_ids(result)
    plan = engine.recommend(result.facts, extra_alerts=result.alerts)
    assert "prior_regimen_count" in {m.field for m in plan.missing_facts}


def test_icd_o_3_morphology_gives_the_lineage() -> None:
    assert read(bundle("who-icd10-t-lineage")).facts.lineage == "T"


def test_etv6_runx1_fusion_from_the_mcode_pediatric_example_is_read() -> None:
    assert read(bundle("mcode-pediatric-brian-l")).facts.genetic_subtypes == ("etv6-runx1",)


def _variant(genes: list[tuple[str, str]], protein: str | None = None, value: str = "LA9633-4") -> dict[str, Any]:
    components: list[dict[str, Any]] = [
        {
            "code": {"coding": [{"system": LOINC, "code": "48018-6"}]},
            "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org", "code": c, "display": s}]},
        }
        for c, s in genes
    ]
    if protein:
        components.append(
            {"code": {"coding": [{"system": LOINC, "code": "48005-3"}]}, "valueCodeableConcept": {"text": protein}}
        )
    return {
        "resource": {
            "resourceType": "Observation",
            "id": "-".join(["v", *(s for _, s in genes), *(["p"] if protein else [])]),
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "69548-6"}]},
            "subject": {"reference": "urn:uuid:6f1d2f0e-1b7e-4c55-9d43-0c1f5a1e2b01"},
            "effectiveDateTime": "2026-11-10",
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": value}]},
            "component": components,
        }
    }


def test_abl1_t315i_with_bcr_abl1_is_read_and_keeps_imatinib_out(engine: Engine) -> None:
    data = bundle("synthea-ph-positive-adult")
    data["entry"].append(_variant([("HGNC:76", "ABL1")], "NP_005148.2:p.Thr315Ile"))
    facts = read(data).facts
    assert facts.genetic_subtypes == ("bcr-abl1", "abl1-t315i")
    agents = {a.id for r in engine.recommend(facts).recommendations for a in r.agents}
    assert "ponatinib" in agents and not agents & {"imatinib", "dasatinib", "nilotinib"}


def test_abl1_t315i_without_a_bcr_abl1_fusion_is_not_read() -> None:
    data = bundle("synthea-ph-positive-adult")
    data["entry"] = [e for e in data["entry"] if e["resource"].get("id") != "v-bcr-abl1"]
    data["entry"].append(_variant([("HGNC:76", "ABL1")], "p.T315I"))
    result = read(data)
    assert result.facts.genetic_subtypes == () and result.facts.ph_status == "unknown"


@pytest.mark.parametrize(
    ("genes", "subtype"),
    [
        ([("HGNC:11633", "TCF3"), ("HGNC:8632", "PBX1")], ("tcf3-pbx1",)),
        ([("HGNC:7132", "KMT2A"), ("HGNC:12345", "AFF1")], ("kmt2a",)),  # a partner allpath does not know
        ([("HGNC:7132", "KMT2A")], ()),  # a KMT2A point variant is not a rearrangement
    ],
)
def test_fusions_are_read_from_their_gene_pairs(genes: list[tuple[str, str]], subtype: tuple[str, ...]) -> None:
    data = bundle("synthea-ph-positive-adult")
    data["entry"] = [e for e in data["entry"] if e["resource"].get("id") != "v-bcr-abl1"]
    data["entry"].append(_variant(genes))
    assert read(data).facts.genetic_subtypes == subtype


def test_a_variant_not_reported_present_is_not_read() -> None:
    data = bundle("synthea-ph-positive-adult")
    resource(data, "v-bcr-abl1")["valueCodeableConcept"]["coding"][0]["code"] = "LA9634-2"
    assert read(data).facts.ph_status == "unknown"


def test_prior_blinatumomab_by_medication_reference_and_product_code_and_transplant_are_read() -> None:
    assert read(bundle("blinatumomab-by-reference")).facts.prior_therapies == ("blinatumomab", "allogeneic-sct")


def test_contained_medication_is_resolved() -> None:
    data = bundle("blinatumomab-by-reference")
    given = resource(data, "ma-blin")
    given["contained"] = [
        {"resourceType": "Medication", "id": "m", "code": {"coding": [{"system": RXNORM, "code": "1597258"}]}}
    ]
    given["medicationReference"] = {"reference": "#m"}
    data["entry"] = [e for e in data["entry"] if e["resource"]["resourceType"] != "Medication"]
    assert "blinatumomab" in read(data).facts.prior_therapies


def test_a_medication_reference_that_cannot_be_resolved_is_noted_not_guessed() -> None:
    data = bundle("blinatumomab-by-reference")
    data["entry"] = [e for e in data["entry"] if e["resource"]["resourceType"] != "Medication"]
    result = read(data)
    assert result.facts.prior_therapies == ("allogeneic-sct",)
    assert any("medicationReference: the Medication it names is not in the record" in n for n in result.notes)


def test_an_order_alone_is_not_a_therapy_received() -> None:
    data = bundle("mcode-pediatric-brian-l")
    data["entry"] = [e for e in data["entry"] if e["resource"]["resourceType"] != "MedicationAdministration"]
    assert "fhir-treatment-without-response" not in alert_ids(read(data))


def test_a_steroid_alone_does_not_show_that_leukemia_treatment_began() -> None:
    data = bundle("mcode-pediatric-brian-l")
    data["entry"] = [
        e
        for e in data["entry"]
        if e["resource"]["resourceType"] != "MedicationAdministration" or "prednisone" in e["resource"]["id"]
    ]
    assert "fhir-treatment-without-response" not in alert_ids(read(data))


def test_known_wrong_product_code_is_not_read_as_imatinib() -> None:
    # 835603 is tramadol 50 mg tablets; public sample data label it imatinib 400 mg.
    data = bundle("mcode-pediatric-brian-l")
    given = resource(data, "cancer-related-medication-admin-vincristine-brian-l")
    given["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "835603"}]}
    result = read(data)
    assert any("835603 is a known-wrong code" in n for n in result.notes)
    assert "tki" not in result.facts.prior_therapies


# --- the public roll-up and resolver (the CDS service reuses them) -------------------------------


def test_product_rxcuis_roll_up_to_their_ingredient(kb: Any) -> None:
    importer = Importer(kb)
    assert importer.agent_for(RXNORM, "1045402") == "dasatinib"
    assert importer.agent_for(RXNORM, "403878") == "imatinib"
    assert importer.agent_for(RXNORM, "475342") == "dasatinib"  # the ingredient itself
    assert importer.agent_for(RXNORM, "835603") is None
    assert importer.wants(
        {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1597262"}]},
        }
    )


def test_every_product_code_rolls_up_to_an_agent_of_the_kb(kb: Any) -> None:
    assert set(code_tables().rxnorm_products.values()) <= set(kb.agents)
    assert not {(RXNORM, c) for c in code_tables().rxnorm_products} & set(code_tables().known_wrong)


def test_resolve_medication_finds_a_bundle_medication_by_full_url(kb: Any) -> None:
    importer = Importer(kb)
    medication = {"resourceType": "Medication", "id": "7", "code": {"coding": [{"system": RXNORM, "code": "403879"}]}}
    index = Importer.medication_index([(medication, "urn:uuid:med-7")])
    order = {"resourceType": "MedicationRequest", "medicationReference": {"reference": "urn:uuid:med-7"}}
    assert importer.agents_of(importer.resolve_medication(order, index)) == ["imatinib"]
    absolute = {"medicationReference": {"reference": "https://ehr.example.org/fhir/Medication/7"}}
    assert importer.resolve_medication(absolute, index) == medication["code"]


# --- input shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["collection", "searchset", "transaction"])
def test_every_bundle_type_is_read_alike(kind: str) -> None:
    data = bundle("relapse-history")
    data["type"] = kind
    for entry in data["entry"]:
        if kind == "transaction":
            entry["request"] = {
                "method": "PUT",
                "url": f"{entry['resource']['resourceType']}/{entry['resource']['id']}",
            }
        if kind == "searchset":
            entry["search"] = {"mode": "match"}
    assert read(data).facts == read(bundle("relapse-history")).facts


def test_the_bundles_here_are_what_make_bundles_writes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_bundles", BUNDLES / "make_bundles.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, build in module.BUNDLES.items():
        assert module.fix_transaction(build()) == bundle(name), name


def test_a_disease_status_about_another_cancer_is_not_read() -> None:
    data = bundle("mcode-pediatric-brian-l-remission")
    status = resource(data, "cancer-disease-status-remission-brian-l")
    status["focus"] = [{"reference": "Condition/some-other-cancer"}]
    assert read(data).facts.disease_status == "newly_diagnosed"
    status["focus"] = [{"reference": "https://ehr.example.org/fhir/Condition/primary-cancer-condition-brian-l"}]
    assert read(data).facts.disease_status == "in_remission"


def test_the_word_all_in_an_unrelated_condition_is_not_an_uncoded_leukemia() -> None:
    data = bundle("provisional-diagnosis")
    resource(data, "c-prov")["code"] = {"text": "Allergic to all penicillins"}
    assert problems(data)[0].startswith("Condition: no Condition coded as ALL")
