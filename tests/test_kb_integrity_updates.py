"""Integrity of the updates pack: every entry rests on a dated primary source, and the loader
refuses a pack (or an amendment) that breaks the rules, naming the file and the entry.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from allpath.knowledge import KnowledgeError, load_kb
from allpath.knowledge.loader import packs_root
from allpath.knowledge.schema import PRIMARY_SOURCE_KINDS

PACK = "updates-2026"
KB = load_kb(["base", PACK])
OWN_SOURCES = {k.split(":", 1)[1] for k, p in KB.origins.items() if p == PACK and k.startswith("source:")}


def _entries() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, pack in KB.origins.items():
        if pack != PACK:
            continue
        kind, item_id = key.split(":", 1)
        if kind == "parameter":
            out.append((key, KB.parameters[item_id]))
        elif kind == "agent":
            out.append((key, KB.agents[item_id]))
        elif kind == "rule":
            out.append((key, KB.rule(item_id)))
        elif kind in ("phase", "topic"):
            out.append((key, getattr(KB, f"{kind}s")[item_id]))
    out += [(f"amendment:{a.target_kind}:{a.target}", a) for a in KB.amendments]
    return out


ENTRIES = _entries()


def test_updates_pack_has_entries_of_every_kind() -> None:
    kinds = {key.split(":", 1)[0] for key, _ in ENTRIES}
    assert {"parameter", "agent", "rule", "amendment"} <= kinds
    assert len(OWN_SOURCES) >= 14


@pytest.mark.parametrize(("key", "entry"), ENTRIES, ids=[k for k, _ in ENTRIES])
def test_every_updates_entry_cites_a_dated_primary_source(key: str, entry: Any) -> None:
    own = [c for c in entry.citations if c.source_id in OWN_SOURCES]
    assert own, f"{key} cites no source of {PACK}"
    for c in own:
        source = KB.sources[c.source_id]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source.approved), (key, source.id)
        assert source.kind in PRIMARY_SOURCE_KINDS, (key, source.id)
        assert source.confirmed_via, (key, source.id)
        assert c.section in source.sections


def test_pack_records_its_review_date_and_what_it_left_out() -> None:
    pack = next(p for p in KB.packs if p.id == PACK)
    assert (pack.kind, pack.reviewed) == ("update", "2026-11-26")
    assert pack.not_included and pack.conventions


# --- the loader refuses what breaks the rules ----------------------------------------------------


@pytest.fixture()
def packs(tmp_path: Path) -> Path:
    root = tmp_path / "packs"
    for name in ("base", PACK):
        shutil.copytree(Path(str(packs_root() / name)), root / name)
    return root


def edit(root: Path, pack: str, name: str, change: Callable[[Any], None]) -> None:
    path = root / pack / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def load(root: Path) -> Any:
    return load_kb(["base", PACK], root=root)


def test_unchanged_copy_loads(packs: Path) -> None:
    assert load(packs).rule_ids == KB.rule_ids


def test_rule_without_a_source_of_its_own_pack_is_refused(packs: Path) -> None:
    def cite_base_only(data: Any) -> None:
        data["rules"][0]["citations"] = [{"source_id": "cancernet-all-2017", "section": "Targeted therapy"}]

    edit(packs, PACK, "rules.yaml", cite_base_only)
    with pytest.raises(KnowledgeError, match=r"rules\.yaml: rules\.tisagenlecleucel-r-r-b-all\.citations: an update"):
        load(packs)


def test_agent_without_a_source_of_its_own_pack_is_refused(packs: Path) -> None:
    def cite_label_list(data: Any) -> None:
        data["agents"][0]["citations"] = [{"source_id": "cancernet-all-2017", "section": "Chemotherapy"}]

    edit(packs, PACK, "agents.yaml", cite_label_list)
    with pytest.raises(KnowledgeError, match=r"agents\.yaml: agents\.tisagenlecleucel\.citations"):
        load(packs)


def test_amendment_without_a_source_of_its_own_pack_is_refused(packs: Path) -> None:
    def cite_base_only(data: Any) -> None:
        data["amendments"][0]["citations"] = [{"source_id": "cancernet-all-2017", "section": "Introduction"}]

    edit(packs, PACK, "amendments.yaml", cite_base_only)
    with pytest.raises(KnowledgeError, match=r"amendments\.yaml: amendments\.liposomal-vincristine\.citations"):
        load(packs)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("approved", "2024-03", "needs a full date"),
        ("kind", "literature", "primary sources only"),
        ("confirmed_via", None, "where it was confirmed"),
    ],
)
def test_update_source_without_date_primary_kind_or_confirmation_is_refused(
    packs: Path, field: str, value: Any, message: str
) -> None:
    def spoil(data: Any) -> None:
        data["sources"][2][field] = value

    edit(packs, PACK, "pack.yaml", spoil)
    with pytest.raises(KnowledgeError, match=rf"packs/{PACK}/pack\.yaml: .*sources\[2\].*{message}"):
        load(packs)


def test_amendment_of_unknown_target_is_refused(packs: Path) -> None:
    edit(packs, PACK, "amendments.yaml", lambda d: d["amendments"][0].update(target="no-such-rule"))
    with pytest.raises(KnowledgeError, match=r"amendments\[0\] \(rule no-such-rule\)\.target: no rule"):
        load(packs)


def test_amendment_of_its_own_pack_is_refused(packs: Path) -> None:
    edit(packs, PACK, "amendments.yaml", lambda d: d["amendments"][0].update(target="calaspargase-pegol"))
    with pytest.raises(KnowledgeError, match=r"amends only earlier packs"):
        load(packs)


def test_second_amendment_of_the_same_statement_is_refused(packs: Path) -> None:
    edit(packs, PACK, "amendments.yaml", lambda d: d["amendments"].append(dict(d["amendments"][0])))
    with pytest.raises(KnowledgeError, match=r"already amended"):
        load(packs)


def test_amendment_alert_must_be_an_alert_of_the_pack(packs: Path) -> None:
    edit(packs, PACK, "amendments.yaml", lambda d: d["amendments"][0].update(alert="calaspargase-pegol"))
    with pytest.raises(KnowledgeError, match=r"\.alert: 'calaspargase-pegol' is not an alert rule"):
        load(packs)


def test_amendment_replacement_must_be_a_rule_of_the_pack(packs: Path) -> None:
    edit(packs, PACK, "amendments.yaml", lambda d: d["amendments"][4].update(replaced_by=["induction-chemotherapy"]))
    with pytest.raises(KnowledgeError, match=r"\.replaced_by: 'induction-chemotherapy' is not a rule of"):
        load(packs)


def test_superseded_note_written_into_a_pack_is_refused(packs: Path) -> None:
    edit(packs, "base", "rules.yaml", lambda d: d["rules"][0].update(superseded_by="quietly changed"))
    with pytest.raises(KnowledgeError, match=r"rules\.induction-chemotherapy\.superseded_by: set only by amendments"):
        load(packs)
