"""Write the EHR-shaped test Bundles in this folder (run: python tests/fhir/bundles/make_bundles.py).

Each Bundle is rebuilt by hand from a public example (README.md says which), in the shapes real
systems send: mCODE profiles, a Synthea-style transaction Bundle with `urn:uuid:` references, a
searchset as a FHIR server answers. Names are fictional; ages are exact at 2026-11-26.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SCT = "http://snomed.info/sct"
LNC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
WHO = "http://hl7.org/fhir/sid/icd-10"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
RXN = "http://www.nlm.nih.gov/research/umls/rxnorm"
HGNC = "http://www.genenames.org"
CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition"


def cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def condition(rid: str, subject: str, codings: list[tuple[str, str, str]], onset: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "meta": {"profile": [f"{MCODE}/mcode-primary-cancer-condition"]},
        "clinicalStatus": cc(CLIN, extra.pop("clinical", "active"), "Active"),
        "verificationStatus": cc(VER, extra.pop("verification", "confirmed"), "Confirmed"),
        "category": [
            cc("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")
        ],
        "code": {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]},
        "subject": {"reference": subject},
        "onsetDateTime": onset,
        **extra,
    }


def disease_status(
    rid: str, subject: str, when: str, answer: tuple[str, str, str], code: str = "97509-4"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"profile": [f"{MCODE}/mcode-cancer-disease-status"]},
        "status": "final",
        "code": cc(LNC, code, "Cancer disease progression" if code == "97509-4" else "Response to cancer treatment"),
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueCodeableConcept": cc(*answer),
    }


def variant(
    rid: str, subject: str, when: str, genes: list[tuple[str, str]], protein: str | None = None
) -> dict[str, Any]:
    components: list[dict[str, Any]] = [
        {"code": cc(LNC, "48018-6", "Gene studied [ID]"), "valueCodeableConcept": cc(HGNC, hgnc, symbol)}
        for hgnc, symbol in genes
    ]
    if protein:
        components.append(
            {
                "code": cc(LNC, "48005-3", "Amino acid change (pHGVS)"),
                "valueCodeableConcept": cc("http://varnomen.hgvs.org", protein, protein),
            }
        )
    return {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"profile": [f"{MCODE}/mcode-genomic-variant"]},
        "status": "final",
        "category": [cc("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory", "Laboratory")],
        "code": cc(LNC, "69548-6", "Genetic variant assessment"),
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueCodeableConcept": cc(LNC, "LA9633-4", "Present"),
        "component": components,
    }


def administration(rid: str, subject: str, when: str, rxcui: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "meta": {"profile": [f"{MCODE}/mcode-cancer-related-medication-administration"]},
        "status": "completed",
        "medicationCodeableConcept": cc(RXN, rxcui, name),
        "subject": {"reference": subject},
        "effectiveDateTime": when,
    }


def request(rid: str, subject: str, when: str, rxcui: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": cc(RXN, rxcui, name),
        "subject": {"reference": subject},
        "authoredOn": when,
    }


def collection(resources: list[dict[str, Any]], kind: str = "collection") -> dict[str, Any]:
    entries = []
    for r in resources:
        entry: dict[str, Any] = {
            "fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}",
            "resource": r,
        }
        if kind == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


# --- the mCODE pediatric extended example (Brian L.), rebuilt --------------------------------

BRIAN = "Patient/cancer-patient-brian-l"


def brian_l() -> list[dict[str, Any]]:
    """mCODE STU4 pediatric extended example (EX_ExtendedExample_Pediatric.fsh), reduced to what a
    plan reads: B-ALL diagnosed 2024-01-01, induction drugs given 2024-01-09, ETV6::RUNX1 found by
    karyotyping, disease status "improved" 2024-02-08. Dates, codes and values are the example's."""
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "cancer-patient-brian-l", "gender": "male", "birthDate": "2021-01-01"},
        condition(
            "primary-cancer-condition-brian-l",
            BRIAN,
            [(SCT, "277571004", "B-cell acute lymphoblastic leukemia (disorder)")],
            "2024-01-01",
        ),
        {
            "resourceType": "Procedure",
            "id": "us-core-procedure-lumbar-puncture-brian-l",
            "status": "completed",
            "code": cc(SCT, "277762005", "Lumbar puncture (procedure)"),
            "subject": {"reference": BRIAN},
            "performedDateTime": "2024-01-08",
        },
        {
            "resourceType": "Observation",
            "id": "white-blood-cell-brian-l",
            "status": "final",
            "code": cc(LNC, "26464-8", "WBC # Bld"),
            "subject": {"reference": BRIAN},
            "effectiveDateTime": "2024-01-04",
            "valueQuantity": {
                "value": 88.5,
                "unit": "10*3/uL",
                "system": "http://unitsofmeasure.org",
                "code": "10*3/uL",
            },
        },
        {
            "resourceType": "Observation",
            "id": "gx-genomic-variant-fusion-ETV6-RUNX1-brian-l",
            "meta": {"profile": [f"{MCODE}/mcode-genomic-variant"]},
            "status": "final",
            "code": cc(LNC, "69548-6", "Genetic variant assessment"),
            "method": cc(LNC, "LA26406-1", "Karyotyping"),
            "subject": {"reference": BRIAN},
            "effectiveDateTime": "2024-01-08",
            "valueCodeableConcept": cc(LNC, "LA9633-4", "Present"),
            "component": [
                {
                    "code": cc(LNC, "48018-6", "Gene studied [ID]"),
                    "valueCodeableConcept": cc(HGNC, "HGNC:3495", "ETV6"),
                },
                {
                    "code": cc(LNC, "48018-6", "Gene studied [ID]"),
                    "valueCodeableConcept": cc(HGNC, "HGNC:10471", "RUNX1"),
                },
            ],
        },
        disease_status(
            "cancer-disease-status-improved-brian-l",
            BRIAN,
            "2024-02-08",
            (SCT, "268910001", "Patient's condition improved (finding)"),
        ),
    ]
    for rxcui, name in (
        ("3002", "cyclophosphamide"),
        ("5650", "IDArubicin"),
        ("11202", "vincristine"),
        ("8640", "predniSONE"),
    ):
        key = name.lower()
        resources.append(request(f"cancer-related-medication-request-{key}-brian-l", BRIAN, "2024-01-09", rxcui, name))
        resources.append(
            administration(f"cancer-related-medication-admin-{key}-brian-l", BRIAN, "2024-01-09", rxcui, name)
        )
    return resources


def brian_l_in_remission() -> list[dict[str, Any]]:
    """Brian L. with a later mCODE disease status: complete remission (the STU2.1+ SNOMED answer)."""
    return [
        *brian_l(),
        disease_status(
            "cancer-disease-status-remission-brian-l",
            BRIAN,
            "2024-02-20",
            (SCT, "550991000124107", "Malignant neoplasm in full remission (disorder)"),
        ),
    ]


# --- a Synthea-style adult with a BCR::ABL1 fusion --------------------------------------------


def synthea_ph_positive_adult() -> dict[str, Any]:
    """Synthea's output shape (a transaction Bundle, `urn:uuid:` fullUrls and references, a
    `request` per entry), with an ALL diagnosis coded as a claims feed sends it (ICD-10-CM without
    the dot) and the BCR::ABL1 fusion as an mCODE genomic variant (genes as in mCODE's
    genomic-variant-fusion example)."""
    pid = "urn:uuid:6f1d2f0e-1b7e-4c55-9d43-0c1f5a1e2b01"
    resources = [
        (
            {
                "resourceType": "Patient",
                "id": "6f1d2f0e-1b7e-4c55-9d43-0c1f5a1e2b01",
                "gender": "female",
                "birthDate": "1981-11-26",
            },
            pid,
        ),
        (
            {
                "resourceType": "Condition",
                "id": "c-all",
                "clinicalStatus": cc(CLIN, "active", "Active"),
                "verificationStatus": cc(VER, "confirmed", "Confirmed"),
                "code": {"coding": [{"system": ICD, "code": "C9100"}], "text": "Acute lymphoblastic leukemia"},
                "subject": {"reference": pid},
                "onsetDateTime": "2026-11-02T09:30:00-05:00",
                "recordedDate": "2026-11-02T09:30:00-05:00",
            },
            "urn:uuid:6f1d2f0e-1b7e-4c55-9d43-0c1f5a1e2b02",
        ),
        (
            variant("v-bcr-abl1", pid, "2026-11-06", [("HGNC:1014", "BCR"), ("HGNC:76", "ABL1")]),
            "urn:uuid:6f1d2f0e-1b7e-4c55-9d43-0c1f5a1e2b03",
        ),
        (
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": pid},
            },
            "urn:uuid:6f1d2f0e-1b7e-4c55-9d43-0c1f5a1e2b04",
        ),
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for r, url in resources
        ],
    }


# --- diagnoses as they come ---------------------------------------------------------------------


def who_icd10_t_lineage() -> list[dict[str, Any]]:
    """A non-US record: WHO ICD-10 C91.0 with the ICD-O-3 morphology in mCODE's histology extension."""
    pat = "Patient/who-t"
    c = condition("c-who", pat, [(WHO, "C91.0", "Acute lymphoblastic leukaemia [ALL]")], "2026-10-20")
    c["extension"] = [
        {
            "url": f"{MCODE}/mcode-histology-morphology-behavior",
            "valueCodeableConcept": cc(ICDO3, "9837/3", "T lymphoblastic leukemia/lymphoma"),
        }
    ]
    return [{"resourceType": "Patient", "id": "who-t", "birthDate": "2012-05-04"}, c]


def stale_icd_beside_snomed_remission() -> list[dict[str, Any]]:
    """One Condition carrying a SNOMED CT "in remission" code and an out-of-date ICD-10-CM "not
    having achieved remission" code, as problem lists often do."""
    pat = "Patient/stale"
    return [
        {"resourceType": "Patient", "id": "stale", "birthDate": "2015-03-09"},
        condition(
            "c-stale",
            pat,
            [
                (SCT, "91856007", "Acute lymphoid leukemia in remission (disorder)"),
                (ICD, "C91.00", "Acute lymphoblastic leukemia not having achieved remission"),
            ],
            "2024-06-01",
            recordedDate="2026-09-01",
        ),
    ]


def provisional_diagnosis() -> list[dict[str, Any]]:
    pat = "Patient/prov"
    return [
        {"resourceType": "Patient", "id": "prov", "birthDate": "2019-02-14"},
        condition(
            "c-prov",
            pat,
            [(ICD, "C91.0", "Acute lymphoblastic leukemia [ALL]")],
            "2026-11-20",
            verification="provisional",
        ),
    ]


def relapse_history() -> list[dict[str, Any]]:
    """A child in remission after induction, then worsened: a relapse dated by the disease status."""
    pat = "Patient/rel"
    return [
        {"resourceType": "Patient", "id": "rel", "birthDate": "2016-07-01"},
        condition("c-rel", pat, [(SCT, "277571004", "B-cell acute lymphoblastic leukemia (disorder)")], "2023-01-10"),
        disease_status(
            "ds-1", pat, "2023-02-14", (SCT, "550991000124107", "Malignant neoplasm in full remission (disorder)")
        ),
        disease_status("ds-2", pat, "2025-09-10", (SCT, "271299001", "Patient's condition worsened (finding)")),
        administration("ma-1", pat, "2023-01-12", "11202", "vincristine"),
    ]


def blinatumomab_by_reference() -> list[dict[str, Any]]:
    """A prior blinatumomab course recorded with a `medicationReference` to a Medication coded at
    product level (the BLINCYTO kit's RxCUI), as order systems record it."""
    pat = "Patient/blin"
    return [
        {"resourceType": "Patient", "id": "blin", "birthDate": "1990-04-01"},
        condition(
            "c-blin",
            pat,
            [(ICD, "C91.02", "Acute lymphoblastic leukemia, in relapse")],
            "2021-03-01",
            recordedDate="2026-10-01",
        ),
        {"resourceType": "Medication", "id": "med-blincyto", "code": cc(RXN, "1597262", "BLINCYTO kit")},
        {
            "resourceType": "MedicationAdministration",
            "id": "ma-blin",
            "status": "completed",
            "medicationReference": {"reference": "Medication/med-blincyto"},
            "subject": {"reference": pat},
            "effectivePeriod": {"start": "2025-05-01", "end": "2025-05-29"},
        },
        {
            "resourceType": "Procedure",
            "id": "p-allo",
            "status": "completed",
            "code": cc(SCT, "58390007", "Allogeneic bone marrow transplantation"),
            "subject": {"reference": pat},
            "performedDateTime": "2025-08-01",
        },
    ]


BUNDLES = {
    "mcode-pediatric-brian-l": lambda: collection(brian_l(), "transaction"),
    "mcode-pediatric-brian-l-remission": lambda: collection(brian_l_in_remission(), "searchset"),
    "synthea-ph-positive-adult": synthea_ph_positive_adult,
    "who-icd10-t-lineage": lambda: collection(who_icd10_t_lineage()),
    "stale-icd-beside-snomed-remission": lambda: collection(stale_icd_beside_snomed_remission()),
    "provisional-diagnosis": lambda: collection(provisional_diagnosis()),
    "relapse-history": lambda: collection(relapse_history()),
    "blinatumomab-by-reference": lambda: collection(blinatumomab_by_reference()),
}


def fix_transaction(bundle: dict[str, Any]) -> dict[str, Any]:
    if bundle["type"] == "transaction":
        for entry in bundle["entry"]:
            entry.setdefault(
                "request", {"method": "PUT", "url": f"{entry['resource']['resourceType']}/{entry['resource']['id']}"}
            )
    return bundle


if __name__ == "__main__":
    for name, build in BUNDLES.items():
        (HERE / f"{name}.bundle.json").write_text(
            json.dumps(fix_transaction(build()), indent=2) + "\n", encoding="utf-8"
        )
