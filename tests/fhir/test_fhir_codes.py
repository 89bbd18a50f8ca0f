"""Standard codes: confirmed, sourced, and never one of the known-wrong public codes."""

from __future__ import annotations

from typing import Any

import pytest

from allpath.fhir.codes import ICD10CM, NCIT, RXNORM, code_tables

ICD_CODES = sorted(code for (system, code) in code_tables().conditions if system == ICD10CM)


@pytest.mark.parametrize("code", ICD_CODES)
def test_icd10cm_code_is_in_the_cms_code_set(code: str) -> None:
    import simple_icd_10_cm as cm

    assert cm.is_valid_item(code)
    # Only the header says nothing about remission; every code that does is a billable leaf.
    header = "remission" not in code_tables().conditions[(ICD10CM, code)].means
    assert cm.is_leaf(code) != header, f"{code}: leaf {cm.is_leaf(code)}, read as a header {header}"
    assert "lymphoblastic" in cm.get_description(code).lower()


def test_icd10cm_codes_say_what_the_importer_reads_from_them() -> None:
    import simple_icd_10_cm as cm

    table = code_tables().conditions
    for code in ICD_CODES:
        description = cm.get_description(code).lower()
        if "remission" not in table[(ICD10CM, code)].means:
            assert cm.get_children(code), f"{code} is read as a header but has no codes under it"
            continue
        remission = table[(ICD10CM, code)].means["remission"]
        if remission == "in_remission":
            assert "in remission" in description
        elif remission == "relapsed":
            assert "relapse" in description
        else:
            assert "not having achieved remission" in description


def test_every_code_names_where_it_was_confirmed(kb: Any) -> None:
    tables = code_tables()
    for table in (tables.conditions, tables.observations, tables.procedures):
        for known in table.values():
            assert known.confirmed_by.strip(), known
    for agent in kb.agents.values():
        for coding in agent.codes:
            assert coding.confirmed_by.strip(), agent.id


def test_every_agent_the_source_page_names_has_an_rxnorm_code() -> None:
    # The updates pack's newer products carry no codes yet: none was confirmed (docs/codes.md).
    from allpath.knowledge import load_kb

    base = load_kb(["base"])
    missing = [a.id for a in base.agents.values() if not any(c.system == RXNORM for c in a.codes)]
    assert missing == []


def test_older_release_rxnorm_codes_are_marked(kb: Any) -> None:
    older = {
        a.id for a in kb.agents.values() for c in a.codes if c.system == RXNORM and "older RxNorm" in (c.note or "")
    }
    assert older == {"asparaginase", "pegaspargase", "dexamethasone", "nelarabine", "vincristine-sulfate-liposome"}


def test_dasatinib_is_475342_not_the_known_wrong_52175(kb: Any) -> None:
    codes = {c.code for c in kb.agents["dasatinib"].codes if c.system == RXNORM}
    assert codes == {"475342"}


def test_no_known_wrong_code_is_used_anywhere(kb: Any) -> None:
    tables = code_tables()
    used = {(c.system, c.code) for a in kb.agents.values() for c in a.codes}
    used |= set(tables.conditions) | set(tables.observations) | set(tables.procedures)
    assert not used & set(tables.known_wrong)


def test_blinatumomab_is_spelled_as_rxnorm_does(kb: Any) -> None:
    (coding,) = [c for c in kb.agents["blinatumomab"].codes if c.system == RXNORM]
    assert (coding.code, coding.display) == ("1597258", "blinatumomab")


def test_codes_are_unique_within_each_system(kb: Any) -> None:
    seen: dict[tuple[str, str], str] = {}
    for agent in kb.agents.values():
        for c in agent.codes:
            assert (c.system, c.code) not in seen, f"{c.code} on {agent.id} and {seen.get((c.system, c.code))}"
            seen[(c.system, c.code)] = agent.id
    assert sum(1 for s, _ in seen if s == NCIT) == 14


def test_every_code_the_importer_reads_is_listed_in_the_mapping_doc() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "fhir-mapping.md").read_text(encoding="utf-8")
    tables = code_tables()
    codes = [
        *tables.conditions,
        *tables.observations,
        *tables.procedures,
        *tables.morphology,
        *tables.disease_status_answers,
        *tables.genomics.genes,
        tables.genomics.present,
        tables.genomics.gene_studied,
        tables.genomics.amino_acid_change,
    ]
    missing = [code for _, code in codes if f"| {code} |" not in doc]
    missing += [code for code in tables.rxnorm_products if code not in doc]
    assert missing == []
