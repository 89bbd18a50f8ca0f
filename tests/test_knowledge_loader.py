"""A malformed knowledge base fails at load time, naming the file and the path inside it."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from allpath.knowledge import KnowledgeError, load_kb


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    source = resources.files("allpath.knowledge") / "packs"
    target = tmp_path / "packs"
    with resources.as_file(source) as folder:
        shutil.copytree(folder, target)
    return target


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / "base" / name
    text = path.read_text()
    assert old in text, f"fixture text not found in {name}: {old!r}"
    path.write_text(text.replace(old, new, 1))


def test_copied_pack_loads_unchanged(pack_copy: Path) -> None:
    assert load_kb(root=pack_copy).rule_ids == load_kb().rule_ids


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"),
    [
        (
            "rules.yaml",
            "when: {fact: disease_status, op: eq, value: newly_diagnosed}",
            "when: {fact: disease_stauts, op: eq, value: newly_diagnosed}",
            "'disease_stauts' is not a PatientFacts field",
        ),
        (
            "rules.yaml",
            "when: {fact: disease_status, op: eq, value: newly_diagnosed}",
            "when: {fact: disease_status, op: eq, value: newly_diagnsed}",
            "'newly_diagnsed' is not one of disease_status's values",
        ),
        (
            "rules.yaml",
            "when: {fact: lineage, op: eq, value: T}",
            "when: {fact: lineage, op: lt, value: T}",
            "'lt' does not apply to lineage",
        ),
        (
            "rules.yaml",
            "{fact: prior_regimen_count, op: ge, value: 2}",
            "{fact: prior_regimen_count, op: ge, value: two}",
            "prior_regimen_count compares with a number",
        ),
        ("rules.yaml", "{ref: chemotherapy-active}", "{ref: chemo-active}", "unknown rule or condition 'chemo-active'"),
        ("rules.yaml", "{param: long_remission_months}", "{param: long_remision}", "unknown parameter"),
        ("rules.yaml", "agents: [ponatinib]", "agents: [ponatinib, aspirin]", "unknown agent 'aspirin'"),
        ("rules.yaml", "section: Refractory ALL}", "section: Refractory}", "is not a section of cancernet-all-2017"),
        ("rules.yaml", "strength: recommended", "strength: maybe", "packs/base/rules.yaml: rules"),
        ("agents.yaml", "routes: [oral]", "routes: [inhaled]", "packs/base/agents.yaml: agents[6]"),
        ("agents.yaml", "id: imatinib", "id: dasatinib", "id 'dasatinib': duplicate agent id"),
        ("pack.yaml", "id: base", "id: other", "pack.yaml: id"),
        ("rules.yaml", "source_id: cancernet-all-2017, section: Targeted therapy}", "source_id: wiki, section: x}",
         "unknown source 'wiki'"),
        # The family page's own sentences are checked like every other entry: a renamed section
        # of the page fails the load instead of dropping the sentence's footnote.
        ("family.yaml", "section: Refractory ALL}\n  - id: status-relapsed",
         "section: Refractory}\n  - id: status-relapsed",
         "packs/base/family.yaml: texts.status-refractory.citations[0]: section 'Refractory' is not a section"),
        ("family.yaml", "id: call-worries", "id: call-fever", "id 'call-fever': duplicate family text id"),
        ("family.yaml", "section: call_team\n    title: Fever", "section: call_us\n    title: Fever",
         "packs/base/family.yaml: texts[8].section"),
    ],
)  # fmt: skip
def test_malformed_kb_fails_naming_file_and_path(pack_copy: Path, name: str, old: str, new: str, expected: str) -> None:
    edit(pack_copy, name, old, new)
    with pytest.raises(KnowledgeError) as excinfo:
        load_kb(root=pack_copy)
    message = str(excinfo.value)
    assert expected in message
    assert "packs/base/" in message or "pack.yaml" in message or "override" in message


def test_circular_reference_is_rejected(pack_copy: Path) -> None:
    edit(
        pack_copy,
        "rules.yaml",
        "        - {ref: induction-chemotherapy}\n        - {ref: cns-prophylaxis}",
        "        - {ref: supportive-care}\n        - {ref: cns-prophylaxis}",
    )
    with pytest.raises(KnowledgeError, match="circular reference"):
        load_kb(root=pack_copy)


def test_unknown_pack_is_named() -> None:
    with pytest.raises(KnowledgeError, match="no knowledge pack named 'nope'"):
        load_kb(["nope"])


def test_parameter_override_changes_the_threshold() -> None:
    kb = load_kb(parameters={"long_remission_months": 24})
    assert kb.parameters["long_remission_months"].value == 24


def test_unknown_parameter_override_is_rejected() -> None:
    with pytest.raises(KnowledgeError, match="no such parameter"):
        load_kb(parameters={"long_remission_month": 24})


def test_load_kb_ignores_the_environment_the_edge_passes_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    # The core reads no environment: ALLPATH_LONG_REMISSION_MONTHS reaches load_kb only as
    # `parameters`, from allpath.settings at the CLI or service edge (tests/test_settings.py).
    monkeypatch.setenv("ALLPATH_LONG_REMISSION_MONTHS", "36")
    assert load_kb().parameters["long_remission_months"].value == 18
    assert load_kb(parameters={"long_remission_months": 36}).parameters["long_remission_months"].value == 36
