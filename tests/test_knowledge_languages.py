"""The knowledge base in each language families read: `KnowledgeBase.for_language`."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from allpath import PatientFacts
from allpath.engine import Engine
from allpath.errors import UnsupportedLanguageError
from allpath.knowledge import KnowledgeError, load_kb

KB = load_kb()


def test_english_is_the_knowledge_base_as_loaded() -> None:
    assert KB.for_language("en") is KB
    assert KB.language == "en"


def test_each_language_is_built_once_and_leads_back_to_english() -> None:
    spanish = KB.for_language("es")
    assert spanish.language == "es"
    assert KB.for_language("es") is spanish
    assert spanish.for_language("es") is spanish
    assert spanish.for_language("en") is KB


def test_spanish_copy_carries_the_spanish_family_texts_and_disclaimer() -> None:
    spanish = KB.for_language("es")
    fever = spanish.family_texts["call-fever"]
    assert (fever.title, fever.text) == ("Fiebre", "Tiene fiebre u otras señales de infección. Llame de inmediato.")
    assert spanish.disclaimer.startswith("allpath ayuda a tomar decisiones")
    # The English KB is untouched by the copy.
    assert KB.family_texts["call-fever"].title == "Fever"


def test_spanish_copy_keeps_ids_citations_and_clinician_texts() -> None:
    spanish = KB.for_language("es")
    assert spanish.rules is KB.rules and spanish.conditions is KB.conditions and spanish.sources is KB.sources
    for kind in ("topics", "phases", "agents", "family_texts", "glossary"):
        english, translated = getattr(KB, kind), getattr(spanish, kind)
        assert list(translated) == list(english), kind
        for key, entry in english.items():
            assert translated[key].citations == entry.citations, f"{kind}.{key}"


def test_a_plan_made_with_the_spanish_copy_is_the_same_plan() -> None:
    facts = PatientFacts(age_years=8, disease_status="newly_diagnosed", lineage="B")
    english = Engine(KB).recommend(facts)
    spanish = Engine(KB.for_language("es")).recommend(facts)
    assert [r.id for r in spanish.recommendations] == [r.id for r in english.recommendations]


@pytest.mark.parametrize("lang", ["fr", "", "ES", "es-MX"])
def test_an_unsupported_language_is_a_typed_error_naming_the_field(lang: str) -> None:
    with pytest.raises(UnsupportedLanguageError) as caught:
        KB.for_language(lang)
    assert [p.field for p in caught.value.problems] == ["lang"]
    assert repr(lang) in caught.value.problems[0].problem


# --- the loader refuses an entry without both languages -----------------------------------------


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    source = resources.files("allpath.knowledge") / "packs"
    target = tmp_path / "packs"
    with resources.as_file(source) as folder:
        shutil.copytree(folder, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"fixture text not found once in {path.name}: {old!r}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize(
    ("pack", "name", "old", "field"),
    [
        (
            "base",
            "topics.yaml",
            "    es:\n      title: Antibióticos\n",
            "packs/base/topics.yaml: topics.supportive-antibiotics.es",
        ),
        (
            "base",
            "phases.yaml",
            "    es:\n      name: Mantenimiento (continuación)\n",
            "packs/base/phases.yaml: phases.maintenance.es",
        ),
        (
            "base",
            "family.yaml",
            "    es:\n      title: Fiebre\n",
            "packs/base/family.yaml: texts.call-fever.es",
        ),
        (
            "base",
            "glossary.yaml",
            "    es:\n      term: Plaquetas\n",
            "packs/base/glossary.yaml: terms.platelets.es",
        ),
        (
            "updates-2026",
            "agents.yaml",
            "    es:\n      summary: Una asparaginasa que dura mucho.",
            "packs/updates-2026/agents.yaml: agents.calaspargase-pegol.es",
        ),
    ],
    ids=["topic", "phase", "family-text", "glossary-term", "agent"],
)
def test_an_entry_without_spanish_does_not_load_and_is_named(
    pack_copy: Path, pack: str, name: str, old: str, field: str
) -> None:
    # Renaming the block leaves the entry valid YAML for the schema but without its Spanish.
    _edit(pack_copy / pack / name, old, old.replace("    es:\n", "    es_draft:\n", 1))
    _drop_key(pack_copy / pack / name, "es_draft")
    with pytest.raises(KnowledgeError) as caught:
        # The translation check runs on each pack before anything that spans packs: one pack is enough.
        load_kb([pack], root=pack_copy)
    assert [p.field for p in caught.value.problems] == [field]
    assert "no Spanish (es) text" in caught.value.problems[0].problem
    assert field in str(caught.value)


def _drop_key(path: Path, key: str) -> None:
    """Remove the block `key:` (and its indented lines) from a pack file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out: list[str] = []
    skipping = None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if skipping is not None and line.strip() and indent > skipping:
            continue
        skipping = None
        if line.strip() == f"{key}:":
            skipping = indent
            continue
        out.append(line)
    path.write_text("\n".join(out), encoding="utf-8")


def test_every_missing_translation_is_listed_at_once(pack_copy: Path) -> None:
    _drop_key(pack_copy / "base" / "family.yaml", "es")
    with pytest.raises(KnowledgeError) as caught:
        load_kb(["base"], root=pack_copy)
    fields = [p.field for p in caught.value.problems]
    assert fields == [f"packs/base/family.yaml: texts.{t}.es" for t in KB.family_texts]


def test_a_translation_with_a_point_missing_does_not_load(pack_copy: Path) -> None:
    _edit(
        pack_copy / "base" / "topics.yaml",
        "      - Casi nunca se usa el trasplante autólogo para la LLA.\n",
        "",
    )
    with pytest.raises(KnowledgeError) as caught:
        load_kb(["base"], root=pack_copy)
    problem = caught.value.problems[0]
    assert problem.field == "packs/base/topics.yaml: topics.modality-stem-cell-transplant.es.points"
    assert problem.problem == "5 items, the English has 6"


def test_a_reworded_amendment_without_spanish_does_not_load(pack_copy: Path) -> None:
    path = pack_copy / "practice-2026" / "amendments.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("    es:\n      boxed_warning: Arterias tapadas")
    end = text.index("    citations:", start)
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_kb(["practice-2026"], root=pack_copy)
    [problem] = caught.value.problems
    assert problem.field.startswith("packs/practice-2026/amendments.yaml: amendments[")
    assert problem.field.endswith("] (agent ponatinib).es")


def test_a_missing_boxed_warning_translation_is_named(pack_copy: Path) -> None:
    path = pack_copy / "practice-2026" / "agents.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("      boxed_warning: 'Síndrome de diferenciación")
    end = text.index("    citations:", start)
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_kb(["practice-2026"], root=pack_copy)
    assert [str(p) for p in caught.value.problems] == [
        "packs/practice-2026/agents.yaml: agents.revumenib.es.boxed_warning: missing: the English has it, "
        "the Spanish (es) not"
    ]
