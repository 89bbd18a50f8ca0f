"""Per-entry integrity of the knowledge base: a failure names the entry."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml

from allpath.knowledge import available_packs, load_kb
from allpath.knowledge.loader import PACK_FILES
from allpath.knowledge.schema import AlertRule, RecommendationRule
from allpath.rules.tree import facts_used

KB = load_kb(available_packs())
ENTRIES = (
    [("agent", a.id, a) for a in KB.agents.values()]
    + [("phase", p.id, p) for p in KB.phases.values()]
    + [("topic", t.id, t) for t in KB.topics.values()]
    + [("rule", r.id, r) for r in KB.rules]
    + [("parameter", p.id, p) for p in KB.parameters.values()]
    + [("family", f.id, f) for f in KB.family_texts.values()]
    + [("glossary", g.id, g) for g in KB.glossary.values()]
)
RECOMMENDATION_RULES = [r for r in KB.rules if isinstance(r, RecommendationRule)]
CONTRACT_RULE_IDS = [
    "induction-chemotherapy", "cns-prophylaxis", "cns-directed-radiation", "consolidation-chemotherapy",
    "maintenance-chemotherapy", "remission-follow-up", "mrd-testing", "tki-ph-positive", "ponatinib-ph-positive",
    "nelarabine-t-cell", "rituximab-b-cell", "blinatumomab-b-cell", "inotuzumab-b-cell", "reinduction-chemotherapy",
    "reinduction-original-regimen", "reinduction-alternative-agents", "clofarabine-pediatric-relapse",
    "liposomal-vincristine", "allogeneic-sct-after-second-remission", "allogeneic-sct-consider", "autologous-sct",
    "second-opinion", "clinical-trial", "palliative-care", "supportive-care", "fertility-consultation",
    "hospice-care", "ph-status-unknown", "lineage-unknown", "remission-duration-unknown", "knowledge-date",
]  # fmt: skip
CONTRACT_AGENTS = [
    "daunorubicin", "doxorubicin", "cyclophosphamide", "vincristine", "asparaginase", "pegaspargase",
    "dexamethasone", "prednisone", "methotrexate", "cytarabine", "imatinib", "dasatinib", "nilotinib",
    "ponatinib", "nelarabine", "rituximab", "blinatumomab", "inotuzumab ozogamicin", "clofarabine",
    "vincristine sulfate liposome",
]  # fmt: skip


@pytest.mark.parametrize(("kind", "entry_id", "entry"), ENTRIES, ids=[f"{k}:{i}" for k, i, _ in ENTRIES])
def test_every_entry_cites_a_known_section_of_a_known_source(kind: str, entry_id: str, entry: object) -> None:
    citations = entry.citations  # type: ignore[attr-defined]
    assert citations, f"{kind} {entry_id} has no citation"
    for c in citations:
        assert c.source_id in KB.sources, f"{kind} {entry_id}: unknown source {c.source_id}"
        assert c.section in KB.sources[c.source_id].sections


@pytest.mark.parametrize("rule_id", CONTRACT_RULE_IDS)
def test_contract_rule_ids_exist(rule_id: str) -> None:
    # The page's statements live in the base pack; the practice pack may suppress some in default plans.
    assert rule_id in load_kb(["base"]).rule_ids


@pytest.mark.parametrize("name", CONTRACT_AGENTS)
def test_every_agent_named_by_the_page_is_in_the_kb(name: str) -> None:
    assert name in {a.name for a in KB.agents.values()}


def test_page_misspellings_are_corrected_and_recorded() -> None:
    assert KB.agents["ponatinib"].brand_names == ["Iclusig"]
    assert KB.agents["pegaspargase"].page_spelling == "Pegasparaginase"
    assert KB.agents["blinatumomab"].page_spelling == "Blinatumumab"
    assert all("Iculsig" not in a.brand_names for a in KB.agents.values())


@pytest.mark.parametrize("rule", RECOMMENDATION_RULES, ids=[r.id for r in RECOMMENDATION_RULES])
def test_recommendation_texts_are_complete(rule: RecommendationRule) -> None:
    assert rule.title.strip() and rule.summary.strip() and rule.rationale.strip()
    for variant in rule.variants:
        assert any(v is not None for v in (variant.strength, variant.expected_outcome, variant.rationale))


@pytest.mark.parametrize("rule", KB.rules, ids=[r.id for r in KB.rules])
def test_conditions_only_read_patient_facts(rule: object) -> None:
    from allpath.facts import FIELD_NAMES

    assert set(facts_used(KB.conditions[rule.id])) <= set(FIELD_NAMES)  # type: ignore[attr-defined]


def test_alert_messages_have_no_unfilled_placeholders() -> None:
    for rule in KB.rules:
        if isinstance(rule, AlertRule):
            assert "{" not in rule.message, rule.id


def test_knowledge_date_alert_carries_the_source_approval_date() -> None:
    message = KB.rule("knowledge-date").message  # type: ignore[union-attr]
    assert KB.sources["cancernet-all-2017"].approved in message


def test_kb_has_a_version_string() -> None:
    assert KB.version.startswith("base@")


@pytest.mark.parametrize("pack", available_packs())
@pytest.mark.parametrize("name", PACK_FILES)
def test_pack_files_parse_as_yaml_with_unique_keys(pack: str, name: str) -> None:
    node = resources.files("allpath.knowledge") / "packs" / pack / name
    if not node.is_file():
        pytest.skip(f"{pack} has no {name}")

    class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = {k for k in keys if keys.count(k) > 1}
        assert not duplicates, f"{pack}/{name} line {node.start_mark.line + 1}: duplicate keys {duplicates}"
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    yaml.load(node.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # a SafeLoader subclass


# --- both languages in every patient-facing entry ----------------------------------------------
# Which fields are patient-facing, per kind of entry: docs/languages.md. The loader refuses an
# entry without them (tests/test_knowledge_languages.py); these name the entry that lacks one.
PATIENT_FACING: dict[str, tuple[str, ...]] = {
    "agent": ("summary", "boxed_warning"),
    "phase": ("name", "timing", "goal", "setting", "facts"),
    "topic": ("title", "summary", "points"),
    "family": ("title", "text"),
    "glossary": ("term", "definition"),
}
PATIENT_ENTRIES = (
    [("agent", a.id, a) for a in KB.agents.values()]
    + [("phase", p.id, p) for p in KB.phases.values()]
    + [("topic", t.id, t) for t in KB.topics.values()]
    + [("family", f.id, f) for f in KB.family_texts.values()]
    + [("glossary", g.id, g) for g in KB.glossary.values()]
)
SPANISH = KB.for_language("es")
SPANISH_ENTRIES = {"agent": SPANISH.agents, "phase": SPANISH.phases, "topic": SPANISH.topics}
SPANISH_ENTRIES |= {"family": SPANISH.family_texts, "glossary": SPANISH.glossary}


@pytest.mark.parametrize(
    ("kind", "entry_id", "entry"), PATIENT_ENTRIES, ids=[f"{k}:{i}" for k, i, _ in PATIENT_ENTRIES]
)
def test_every_patient_facing_entry_is_in_english_and_spanish(kind: str, entry_id: str, entry: Any) -> None:
    assert entry.es is not None, f"{kind} {entry_id} has no Spanish"
    spanish = SPANISH_ENTRIES[kind][entry_id]
    for name in PATIENT_FACING[kind]:
        english, translated = getattr(entry, name), getattr(spanish, name)
        assert (english is None) == (translated is None), f"{kind} {entry_id}.{name}"
        if isinstance(english, list):
            assert len(translated) == len(english), f"{kind} {entry_id}.{name}"
            assert all(s.strip() for s in translated)
        elif english is not None:
            assert translated.strip(), f"{kind} {entry_id}.{name}"
            # A Spanish text identical to a long English one was not translated (short names may match).
            assert translated != english or len(english) < 20, f"{kind} {entry_id}.{name} is still English"


def test_the_spanish_knowledge_base_has_every_entry_of_the_english() -> None:
    assert {k: list(v) for k, v in SPANISH_ENTRIES.items()} == {
        "agent": list(KB.agents),
        "phase": list(KB.phases),
        "topic": list(KB.topics),
        "family": list(KB.family_texts),
        "glossary": list(KB.glossary),
    }
    assert len(KB.glossary) >= 10
