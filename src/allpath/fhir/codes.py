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

from allpath.knowledge import KnowledgeBase, yamlio

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
HGNC = "http://www.genenames.org"
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
class Genomics:
    variant_code: tuple[str, str]
    present: tuple[str, str]
    gene_studied: tuple[str, str]
    amino_acid_change: tuple[str, str]
    genes: dict[tuple[str, str], str]  # (system, HGNC id) -> symbol
    fusions: tuple[tuple[frozenset[str], str], ...]  # gene pair -> subtype
    rearranged: dict[str, str]  # gene -> subtype, when a partner gene is named
    protein_changes: tuple[tuple[str, frozenset[str], str], ...]  # gene, pHGVS forms, subtype


@dataclass(frozen=True, slots=True)
class CodeTables:
    conditions: dict[tuple[str, str], KnownCode]
    observations: dict[tuple[str, str], KnownCode]
    procedures: dict[tuple[str, str], KnownCode]
    known_wrong: dict[tuple[str, str], str]
    morphology: dict[tuple[str, str], KnownCode]
    disease_status_codes: frozenset[tuple[str, str]]
    disease_status_answers: dict[tuple[str, str], KnownCode]
    genomics: Genomics
    prior_therapy_of_agent: dict[str, str]
    rxnorm_products: dict[str, str]  # product RxCUI -> KB agent id
    system_aliases: dict[str, str]

    def normalise(self, system: str, code: str) -> tuple[str, str]:
        """The coding as the tables spell it: a known alias of the system becomes the system, and an
        ICD-10(-CM) code sent without its dot (`C9100`, as claims feeds send it) gets it back."""
        system = self.system_aliases.get(system, system)
        code = code.strip()
        if system in (ICD10CM, ICD10):
            code = code.upper()
            if "." not in code and len(code) > 3:
                code = f"{code[:3]}.{code[3:]}"
        return system, code


@cache
def code_tables() -> CodeTables:
    text = (resources.files("allpath.fhir") / "codes.yaml").read_text(encoding="utf-8")
    data = yamlio.safe_load(text)

    def table(key: str) -> dict[tuple[str, str], KnownCode]:
        return {
            (c["system"], str(c["code"])): KnownCode(
                c["system"], str(c["code"]), c["display"], dict(c["means"]), c["confirmed_by"]
            )
            for c in data[key]
        }

    def pair(c: dict[str, Any]) -> tuple[str, str]:
        return (c["system"], str(c["code"]))

    g = data["genomics"]
    genomics = Genomics(
        variant_code=pair(g["variant_code"]),
        present=pair(g["present"]),
        gene_studied=pair(g["gene_studied"]),
        amino_acid_change=pair(g["amino_acid_change"]),
        genes={pair(c): c["symbol"] for c in g["genes"]},
        fusions=tuple((frozenset(f["genes"]), f["subtype"]) for f in g["fusions"]),
        rearranged={r["gene"]: r["subtype"] for r in g["rearranged_with_any_partner"]},
        protein_changes=tuple((p["gene"], frozenset(p["changes"]), p["subtype"]) for p in g["protein_changes"]),
    )
    # The Observation codes read by their own rules (disease status, genomic variants) belong in
    # the observations table too: a CDS prefetch asks for exactly what that table lists.
    observations = table("observations")
    for c in [*data["disease_status_codes"], g["variant_code"]]:
        observations[pair(c)] = KnownCode(c["system"], str(c["code"]), c["display"], {"read": True}, c["confirmed_by"])
    return CodeTables(
        conditions=table("conditions"),
        observations=observations,
        procedures=table("procedures"),
        known_wrong={pair(c): f"{c['claimed']}: {c['why']}" for c in data["known_wrong"]},
        morphology=table("morphology"),
        disease_status_codes=frozenset(pair(c) for c in data["disease_status_codes"]),
        disease_status_answers=table("disease_status_answers"),
        genomics=genomics,
        prior_therapy_of_agent=dict(data["prior_therapy_of_agent"]),
        rxnorm_products={str(code): p["agent"] for p in data["rxnorm_products"] for code in p["codes"]},
        system_aliases={a["alias"]: a["system"] for a in data["system_aliases"]},
    )


def agent_by_code(kb: KnowledgeBase) -> dict[tuple[str, str], str]:
    """(system, code) -> agent id, for every drug code the knowledge base carries."""
    return {(c.system, c.code): agent.id for agent in kb.agents.values() for c in agent.codes}
