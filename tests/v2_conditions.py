"""Conditions over every fact and operator, for the back-end differential tests.

The knowledge packs do not test the v2 fields yet; the back ends must already agree with the
interpreter on them. Two sources of such conditions:

* `every_leaf()`: each fact with each operator its type allows (as the KB loader allows them)
  and a spread of values, so every leaf shape of every back end is compared;
* `kb_with_v2_rules(root)`: the packs plus alert rules whose conditions combine the v2 fields
  (list contains/not_contains, nullable booleans, nullable numbers, enums), so the whole cohort
  and PlanDefinition paths run on them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from allpath.facts import FACT_KINDS
from allpath.knowledge import KnowledgeBase, load_kb
from allpath.knowledge.loader import packs_root
from allpath.knowledge.schema import FactTest

_NUMBERS: dict[str, list[Any]] = {
    "number": [0.0, 6.0, 18.0, 18.001, 36.0],
    "integer": [0, 1, 2],
}
_OPS = {
    "number": ["eq", "ne", "lt", "le", "gt", "ge"],
    "integer": ["eq", "ne", "lt", "le", "gt", "ge"],
    "enum": ["eq", "ne"],
    "boolean": ["eq", "ne"],
    "list": ["contains", "not_contains"],
}


def _pool(kind: Any) -> list[Any]:
    if kind.type == "boolean":
        return [True, False]
    if kind.type in ("enum", "list"):
        return list(kind.values)
    return _NUMBERS[kind.type]


def every_leaf() -> list[FactTest]:
    """Every fact with every operator of its type, over the values that matter for it."""
    tests: list[FactTest] = []
    for fact, kind in sorted(FACT_KINDS.items()):
        pool = _pool(kind)
        tests += [FactTest(fact=fact, op=op, value=v) for op in _OPS[kind.type] for v in pool]
        if kind.type != "list" and kind.type != "boolean":
            tests += [FactTest(fact=fact, op=op, value=tuple(pool[:2])) for op in ("in", "not_in")]
        if kind.nullable:
            tests += [FactTest(fact=fact, op=op, value=None) for op in ("is_null", "not_null")]
    return tests


V2_RULES = """
  - id: test-v2-tki-received-no-t315i
    kind: alert
    severity: info
    when:
      all:
        - {fact: prior_therapies, op: contains, value: tki}
        - {fact: genetic_subtypes, op: not_contains, value: abl1-t315i}
    message: A TKI was received and no T315I mutation is known.
  - id: test-v2-ph-positive-without-known-fusion
    kind: alert
    severity: info
    when:
      all:
        - {fact: ph_status, op: eq, value: positive}
        - {fact: genetic_subtypes, op: not_contains, value: bcr-abl1}
    message: Ph positive, no BCR::ABL1 finding recorded.
  - id: test-v2-cd19-target
    kind: alert
    severity: info
    when:
      all:
        - {fact: cd19_status, op: eq, value: positive}
        - {fact: prior_therapies, op: not_contains, value: blinatumomab}
        - {not: {fact: prior_therapies, op: contains, value: car-t}}
        - {fact: cd22_status, op: ne, value: negative}
        - {fact: cd20_status, op: in, value: [positive, unknown]}
    message: CD19-positive and no CD19-directed therapy received.
  - id: test-v2-ph-like-or-abl-class
    kind: alert
    severity: warning
    when:
      any:
        - {fact: genetic_subtypes, op: contains, value: ph-like}
        - {fact: genetic_subtypes, op: contains, value: abl-class}
        - {fact: genetic_subtypes, op: contains, value: kmt2a}
    message: A high-risk genetic subtype.
  - id: test-v2-fitness-and-person
    kind: alert
    severity: warning
    when:
      any:
        - {fact: pregnant, op: eq, value: true}
        - {not: {fact: fit_for_intensive_therapy, op: eq, value: true}}
        - {fact: down_syndrome, op: ne, value: false}
    message: Pregnant, not known to be fit for intensive therapy, or Down syndrome not ruled out.
  - id: test-v2-early-relapse
    kind: alert
    severity: critical
    when:
      all:
        - {fact: relapse_during_therapy, op: eq, value: true}
        - {fact: months_from_diagnosis_to_relapse, op: lt, value: 18}
        - {fact: relapse_site, op: in, value: [marrow, combined]}
    message: An early marrow relapse during therapy.
  - id: test-v2-late-relapse
    kind: alert
    severity: info
    when:
      any:
        - {fact: months_from_therapy_end_to_relapse, op: ge, value: 6}
        - {fact: months_from_diagnosis_to_relapse, op: is_null}
        - {not: {fact: months_from_therapy_end_to_relapse, op: lt, value: 6}}
    message: A late relapse, or relapse timing not known.
  - id: test-v2-journey
    kind: alert
    severity: info
    when:
      all:
        - {fact: phase_in_progress, op: not_in, value: [none, unknown]}
        - {fact: mrd_timepoint, op: eq, value: end_of_induction}
        - {any: [{fact: prior_regimen_count, op: is_null}, {fact: prior_regimen_count, op: ge, value: 2}]}
        - {fact: relapse_during_therapy, op: not_null}
    message: Within a line of treatment, MRD at the end of induction.
"""


def kb_with_v2_rules(root: Path) -> KnowledgeBase:
    """The installed packs copied under `root`, with `V2_RULES` (ids `test-v2-*`) added to the base pack."""
    shutil.copytree(Path(str(packs_root())), root)
    rules = root / "base" / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    citation = "    citations:\n      - {source_id: cancernet-all-2017, section: Introduction}\n"
    extra = V2_RULES.replace("\n  - id:", "\n" + citation + "  - id:").removeprefix("\n" + citation) + citation
    marker = "\n# Named conditions"
    assert marker in text, "base/rules.yaml changed shape: find another place for the test rules"
    rules.write_text(text.replace(marker, extra + marker, 1), encoding="utf-8")
    kb = load_kb(root=root)
    assert {r.id for r in kb.rules} >= V2_RULE_IDS
    return kb


V2_RULE_IDS = {line.split("id: ", 1)[1].strip() for line in V2_RULES.splitlines() if "- id: " in line}
