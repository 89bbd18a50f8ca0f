"""Write the example FHIR R4 Bundles in this folder (run: python examples/fhir/generate.py).

Each Bundle describes the patient of the PatientFacts example of the same name in
`examples/`, as an EHR might: standard codes where allpath has confirmed ones (ICD-10-CM,
SNOMED CT, NCIt, LOINC, RxNorm), allpath's case-feature Observations for what no confirmed
code says. Ages are exact at the as-of date 2026-11-26 used by the tests. The Bundles are
written by hand here, not derived from the facts, so the tests that read them back check
the importer rather than a mirror of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
LOINC = "http://loinc.org"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
FEATURE = "https://allpath.example.org/fhir/CodeSystem/case-feature"
VALUE = "https://allpath.example.org/fhir/CodeSystem/fact-value"


class Builder:
    def __init__(self, patient_id: str, birth_date: str):
        self.pid = patient_id
        self.entries: list[dict[str, Any]] = []
        self.n = 0
        self.add({"resourceType": "Patient", "id": patient_id, "birthDate": birth_date, "gender": "unknown"})

    def add(self, resource: dict[str, Any]) -> None:
        self.n += 1
        resource.setdefault("id", f"{resource['resourceType'].lower()}-{self.n}")
        self.entries.append({"fullUrl": f"urn:uuid:{self.pid}-{self.n:04d}", "resource": resource})

    def subject(self, pid: str | None = None) -> dict[str, str]:
        return {"reference": f"Patient/{pid or self.pid}"}

    def condition(
        self, codings: list[tuple[str, str, str]], clinical: str = "active", recorded: str = "2026-11-01", **extra: Any
    ) -> None:
        self.add(
            {
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{"system": CLIN, "code": clinical}]},
                "verificationStatus": {"coding": [{"system": VER, "code": extra.pop("verification", "confirmed")}]},
                "code": {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]},
                "subject": self.subject(),
                "recordedDate": recorded,
                **extra,
            }
        )

    def feature(self, name: str, when: str = "2026-11-20", pid: str | None = None, status: str = "final", **value: Any):
        self.add(
            {
                "resourceType": "Observation",
                "status": status,
                "code": {"coding": [{"system": FEATURE, "code": name}]},
                "subject": self.subject(pid),
                "effectiveDateTime": when,
                **value,
            }
        )

    def coded(self, name: str, code: str, **kw: Any) -> None:
        self.feature(name, valueCodeableConcept={"coding": [{"system": VALUE, "code": code}]}, **kw)

    def months(self, name: str, months: float, unit: str = "mo") -> None:
        self.feature(name, valueQuantity={"value": months, "unit": unit, "system": UCUM, "code": unit})

    def count(self, name: str, value: int) -> None:
        self.feature(name, valueInteger=value)

    def p210(self, ratio: float) -> None:
        self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "69380-4"}], "text": "BCR-ABL1 p210 (IS)"},
                "subject": self.subject(),
                "effectiveDateTime": "2026-11-02",
                "valueQuantity": {"value": ratio, "unit": "%", "system": UCUM, "code": "%"},
            }
        )

    def procedure(self, code: str, display: str) -> None:
        self.add(
            {
                "resourceType": "Procedure",
                "status": "completed",
                "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
                "subject": self.subject(),
                "performedDateTime": "2026-11-03",
            }
        )

    def medication(self, kind: str, rxcui: str, name: str) -> None:
        resource: dict[str, Any] = {
            "resourceType": kind,
            "status": "active" if kind == "MedicationRequest" else "completed",
            "medicationCodeableConcept": {"coding": [{"system": RX, "code": rxcui, "display": name}]},
            "subject": self.subject(),
        }
        if kind == "MedicationRequest":
            resource["intent"] = "order"
        else:
            resource["effectiveDateTime"] = "2026-11-05"
        self.add(resource)

    def bundle(self) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "collection", "entry": self.entries}


C91_00 = (ICD, "C91.00", "Acute lymphoblastic leukemia not having achieved remission")
C91_01 = (ICD, "C91.01", "Acute lymphoblastic leukemia, in remission")
C91_02 = (ICD, "C91.02", "Acute lymphoblastic leukemia, in relapse")
ALL = (SCT, "91857003", "Acute lymphoid leukemia")
ALL_REMISSION = (SCT, "91856007", "Acute lymphoid leukemia in remission")
B_ALL = (SCT, "277571004", "B-cell acute lymphoblastic leukemia")
T_ALL = (NCIT, "C3183", "T Acute Lymphoblastic Leukemia")


def newly_diagnosed_child_b_cell() -> Builder:
    b = Builder("nd-child", "2020-11-26")
    b.condition([C91_00, B_ALL])
    b.coded("ph_status", "negative")
    b.feature("cns_involvement", valueBoolean=False)
    b.procedure("277762005", "Lumbar puncture")
    b.medication("MedicationAdministration", "11202", "vincristine")
    return b


def newly_diagnosed_adult_ph_positive_cns() -> Builder:
    b = Builder("nd-ph-adult", "1981-11-26")
    b.condition([ALL, B_ALL])
    b.p210(12.5)
    b.feature("cns_involvement", valueBoolean=True)
    b.procedure("277762005", "Lumbar puncture")
    b.medication("MedicationRequest", "282388", "imatinib")
    return b


def remission_after_induction_mrd_positive() -> Builder:
    b = Builder("rem-mrd", "2014-11-26")
    b.condition([C91_00, B_ALL], recorded="2026-06-01")
    b.condition([C91_01, ALL_REMISSION, B_ALL], clinical="remission", recorded="2026-08-01")
    b.coded("ph_status", "negative")
    b.feature("cns_involvement", valueBoolean=False)
    b.coded("completed_phase", "induction")
    b.coded("mrd_status", "positive")
    b.count("remission_count", 1)
    b.count("prior_regimen_count", 1)
    return b


def remission_before_maintenance_t_cell() -> Builder:
    b = Builder("rem-t", "2010-11-26")
    b.condition([C91_01, T_ALL], clinical="remission")
    b.coded("ph_status", "negative")
    b.coded("completed_phase", "induction")
    b.coded("completed_phase", "consolidation")
    b.coded("mrd_status", "negative")
    b.count("remission_count", 1)
    b.count("prior_regimen_count", 1)
    return b


def remission_treatment_completed() -> Builder:
    b = Builder("rem-done", "2016-11-26")
    b.condition([C91_00, B_ALL], recorded="2023-01-10")
    b.condition([ALL_REMISSION, B_ALL], clinical="remission", recorded="2026-10-01")
    b.coded("ph_status", "negative")
    for phase in ("induction", "consolidation", "maintenance"):
        b.coded("completed_phase", phase)
    b.coded("mrd_status", "positive", when="2023-02-20")
    b.coded("mrd_status", "negative", when="2026-10-01")
    b.count("remission_count", 1)
    b.count("prior_regimen_count", 1)
    return b


def refractory_adult() -> Builder:
    b = Builder("refractory", "1974-11-26")
    # Not in remission, with induction done: the importer reads that as refractory.
    b.condition([C91_00, B_ALL])
    b.coded("ph_status", "negative")
    b.coded("completed_phase", "induction")
    b.coded("mrd_status", "positive")
    b.count("prior_regimen_count", 1)
    return b


def first_relapse_after_long_remission_child() -> Builder:
    b = Builder("relapse-long", "2017-11-26")
    b.condition([C91_02, B_ALL])
    b.coded("ph_status", "negative")
    b.count("remission_count", 1)
    b.count("relapse_count", 1)
    b.months("remission_duration_months", 40)
    b.count("prior_regimen_count", 1)
    return b


def first_relapse_after_short_remission_teen() -> Builder:
    b = Builder("relapse-short", "2009-11-26")
    b.condition([ALL, B_ALL], clinical="relapse")
    b.coded("ph_status", "negative")
    b.count("remission_count", 1)
    b.count("relapse_count", 1)
    b.months("remission_duration_months", 8)
    b.count("prior_regimen_count", 2)
    return b


def second_relapse_adult_t_cell() -> Builder:
    b = Builder("relapse-2", "1996-11-26")
    b.condition([C91_02, T_ALL], clinical="relapse")
    b.count("remission_count", 2)
    b.count("relapse_count", 2)
    b.count("prior_regimen_count", 3)
    return b


def advanced_relapse_hospice() -> Builder:
    b = Builder("hospice", "1955-11-26")
    b.condition([C91_02], clinical="relapse")
    b.p210(3.1)
    b.count("remission_count", 1)
    b.count("relapse_count", 1)
    b.months("remission_duration_months", 5)
    b.count("prior_regimen_count", 2)
    b.months("expected_survival_months", 4)
    b.procedure("385763009", "Hospice care")
    return b


def large_noisy_ph_positive_adult() -> Builder:
    """The Ph-positive adult again, buried in 400-odd resources that must not change the facts."""
    b = newly_diagnosed_adult_ph_positive_cns()
    vitals = [("8867-4", "Heart rate", "/min"), ("8310-5", "Body temperature", "Cel"), ("9279-1", "Respiratory rate", "/min")]
    for day in range(1, 31):
        b.add({"resourceType": "Encounter", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": b.subject(), "period": {"start": f"2026-10-{day:02d}"}})
        for code, text, unit in vitals:
            for hour in range(4):
                b.add({"resourceType": "Observation", "status": "final",
                       "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                                 "code": "vital-signs"}]}],
                       "code": {"coding": [{"system": LOINC, "code": code}], "text": text},
                       "subject": b.subject(), "effectiveDateTime": f"2026-10-{day:02d}T{8 + hour * 3:02d}:00:00Z",
                       "valueQuantity": {"value": 37.0 if unit == "Cel" else 70 + hour, "unit": unit,
                                         "system": UCUM, "code": unit}})
    for text in ("Seasonal allergic rhinitis", "Iron deficiency", "Mild asthma"):
        b.add({"resourceType": "Condition", "code": {"text": text}, "subject": b.subject(),
               "clinicalStatus": {"coding": [{"system": CLIN, "code": "active"}]}})
    # Traps: each of these would change the facts if it were read.
    b.coded("ph_status", "negative", pid="someone-else")  # another patient's result
    b.coded("mrd_status", "positive", status="entered-in-error")  # withdrawn
    b.condition([T_ALL], verification="refuted")  # a lineage that was ruled out
    b.medication("MedicationRequest", "52175", "dasatinib (known-wrong code)")
    b.add({"resourceType": "Practitioner", "id": "onc-1", "name": [{"family": "Example"}]})
    b.add({"resourceType": "AllergyIntolerance", "patient": b.subject(), "code": {"text": "Penicillin"}})
    return b


EXAMPLES = {
    "newly-diagnosed-child-b-cell": newly_diagnosed_child_b_cell,
    "newly-diagnosed-adult-ph-positive-cns": newly_diagnosed_adult_ph_positive_cns,
    "remission-after-induction-mrd-positive": remission_after_induction_mrd_positive,
    "remission-before-maintenance-t-cell": remission_before_maintenance_t_cell,
    "remission-treatment-completed": remission_treatment_completed,
    "refractory-adult": refractory_adult,
    "first-relapse-after-long-remission-child": first_relapse_after_long_remission_child,
    "first-relapse-after-short-remission-teen": first_relapse_after_short_remission_teen,
    "second-relapse-adult-t-cell": second_relapse_adult_t_cell,
    "advanced-relapse-hospice": advanced_relapse_hospice,
    "large-noisy-ph-positive-adult": large_noisy_ph_positive_adult,
}


def main() -> None:
    for name, build in EXAMPLES.items():
        path = HERE / f"{name}.bundle.json"
        path.write_text(json.dumps(build().bundle(), indent=1) + "\n", encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
