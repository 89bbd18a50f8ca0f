"""The standard codes allpath reads and writes, loaded from data (codes.yaml and the KB's agents).

No code is written in Python: condition, observation and procedure codes live in
`codes.yaml`, drug codes with the agents in the knowledge base, each with the source that
confirms it. The local code system (`CASE_FEATURE_SYSTEM`) carries the facts that no
confirmed standard code expresses; it is allpath's own, documented in docs/fhir-mapping.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from allpath.knowledge import KnowledgeBase

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# allpath's own code systems (a reserved .example.org host, so they can never clash with a real one).
CASE_FEATURE_SYSTEM = "https://allpath.example.org/fhir/CodeSystem/case-feature"
FACT_VALUE_SYSTEM = "https://allpath.example.org/fhir/CodeSystem/fact-value"


@dataclass(frozen=True, slots=True)
class KnownCode:
    system: str
    code: str
    display: str
    means: dict[str, Any]
    confirmed_by: str


@dataclass(frozen=True, slots=True)
class CodeTables:
    conditions: dict[tuple[str, str], KnownCode]
    observations: dict[tuple[str, str], KnownCode]
    procedures: dict[tuple[str, str], KnownCode]
    known_wrong: dict[tuple[str, str], str]


@cache
def code_tables() -> CodeTables:
    text = (resources.files("allpath.fhir") / "codes.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)

    def table(key: str) -> dict[tuple[str, str], KnownCode]:
        return {
            (c["system"], str(c["code"])): KnownCode(
                c["system"], str(c["code"]), c["display"], dict(c["means"]), c["confirmed_by"]
            )
            for c in data[key]
        }

    return CodeTables(
        conditions=table("conditions"),
        observations=table("observations"),
        procedures=table("procedures"),
        known_wrong={(c["system"], str(c["code"])): f"{c['claimed']}: {c['why']}" for c in data["known_wrong"]},
    )


def agent_by_code(kb: KnowledgeBase) -> dict[tuple[str, str], str]:
    """(system, code) -> agent id, for every drug code the knowledge base carries."""
    return {(c.system, c.code): agent.id for agent in kb.agents.values() for c in agent.codes}
