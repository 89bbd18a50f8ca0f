"""Knowledge packs: switching them, what a plan says about them, and the base/updates difference.

The difference between a base-pack plan and a default-pack plan must be exactly what
`allpath kb diff base updates-2026` lists: new rules may add items, and earlier items may only
gain the `superseded_by` notes the diff reports, for both rules and the agents they name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from allpath.cli import app
from allpath.engine import Engine
from allpath.explain import render_text
from allpath.facts import PatientFacts
from allpath.knowledge import DEFAULT_PACKS, load_kb
from allpath.knowledge.diff import PackDiff, diff_kbs, to_json, to_markdown
from allpath.plan import Plan
from allpath.rules.tree import describe
from tests.golden_facts import GOLDEN, ROOT, example_facts

DOC = ROOT / "docs" / "knowledge-updates.md"
DIFF_COMMAND = "allpath kb diff base updates-2026 --format markdown"
runner = CliRunner()


@pytest.fixture(scope="module")
def base_engine() -> Engine:
    return Engine(load_kb(["base"]))


@pytest.fixture(scope="module")
def full_engine() -> Engine:
    return Engine(load_kb(["base", "updates-2026"]))


@pytest.fixture(scope="module")
def diff() -> PackDiff:
    return diff_kbs(load_kb(["base"]), load_kb(["base", "updates-2026"]))


def all_facts() -> list[dict[str, Any]]:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return list(example_facts().values()) + [g["facts"] for g in golden["generated"]]


# --- switching packs --------------------------------------------------------------------------


def test_default_packs_are_base_then_updates() -> None:
    assert DEFAULT_PACKS == ("base", "updates-2026", "practice-2026")
    assert [p.id for p in load_kb().packs] == ["base", "updates-2026", "practice-2026"]


def test_plan_names_the_packs_that_produced_it(base_engine: Engine, full_engine: Engine) -> None:
    facts = PatientFacts.parse({"age_years": 6, "disease_status": "newly_diagnosed"})
    full = full_engine.recommend(facts).knowledge.packs
    assert [(p.id, p.version, p.reviewed) for p in full] == [
        ("base", "2017.05-1", "2026-11-26"),
        ("updates-2026", "2026.11-1", "2026-11-26"),
    ]
    assert [p.id for p in base_engine.recommend(facts).knowledge.packs] == ["base"]


def test_plan_schema_requires_packs_in_output() -> None:
    schema = Plan.model_json_schema(mode="serialization")
    assert "packs" in schema["$defs"]["KnowledgeInfo"]["properties"]
    assert "superseded_by" in schema["$defs"]["Recommendation"]["properties"]
    assert "superseded_by" in schema["$defs"]["AgentInfo"]["properties"]


def test_committed_plan_schema_is_current() -> None:
    committed = json.loads((ROOT / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))
    assert committed == Plan.model_json_schema(mode="serialization"), "run `make schemas`"


@pytest.mark.parametrize(
    ("packs", "expected"),
    [
        ("base", ["base"]),
        ("base,updates-2026", ["base", "updates-2026"]),
        (None, ["base", "updates-2026", "practice-2026"]),
    ],
)
def test_cli_packs_option_selects_packs(tmp_path: Path, packs: str | None, expected: list[str]) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"age_years": 40, "lineage": "B", "disease_status": "refractory"}), encoding="utf-8")
    args = ["recommend", str(path)] + (["--packs", packs] if packs else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [p["id"] for p in plan["knowledge"]["packs"]] == expected
    assert ("car-t-adult-r-r-b-all" in [r["id"] for r in plan["recommendations"]]) == ("updates-2026" in expected)


def test_cli_unknown_pack_is_bad_input_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"age_years": 40, "disease_status": "refractory"}), encoding="utf-8")
    result = runner.invoke(app, ["recommend", str(path), "--packs", "base,updates-2099"])
    assert result.exit_code == 2
    assert "packs: no knowledge pack named 'updates-2099' (packs: base, updates-2026, practice-2026)" in result.stderr
    assert "Traceback" not in result.output


def test_update_pack_needs_the_packs_it_amends() -> None:
    from allpath.knowledge import KnowledgeError

    # It names agents and rules of the base pack, so alone it fails at load, naming the file.
    with pytest.raises(KnowledgeError, match=r"^packs/updates-2026/rules\.yaml: .*unknown agent"):
        load_kb(["updates-2026"])


# --- the difference is exactly what `kb diff` lists ------------------------------------------------


def test_diff_changes_are_only_the_amendment_notes(diff: PackDiff) -> None:
    assert all(c.field == "superseded_by" and c.old is None for c in diff.changed)
    targets = {(a.target_kind, a.target): " ".join(a.superseded_by.split()) for a in diff.flags}
    assert {(c.kind, c.id): c.new for c in diff.changed} == targets
    assert not any(diff.removed.values())


def test_diff_adds_every_entry_of_the_updates_pack(diff: PackDiff) -> None:
    kb = diff.new
    for kind in ("source", "agent", "rule", "parameter", "condition"):
        prefix = f"{kind}:"
        from_updates = [
            k[len(prefix) :] for k, pack in kb.origins.items() if pack == "updates-2026" and k.startswith(prefix)
        ]
        assert list(diff.added[kind]) == from_updates, kind


def _expected_item(old: dict[str, Any], diff: PackDiff, agent_ids: dict[str, str]) -> dict[str, Any]:
    item = json.loads(json.dumps(old))
    item.update(diff.changes_for("rule", item["id"]))
    for agent in item.get("agents", []):
        agent.update(diff.changes_for("agent", agent_ids[agent["name"]]))
    return item


def test_default_plans_differ_from_base_exactly_as_the_diff_lists(
    base_engine: Engine, full_engine: Engine, diff: PackDiff
) -> None:
    added_rules = set(diff.added["rule"])
    agent_ids = {a.name: a.id for a in diff.new.agents.values()}
    facts_list = all_facts()
    assert len(facts_list) >= 400
    for data in facts_list:
        facts = PatientFacts.parse(data)
        old = base_engine.recommend(facts).model_dump(mode="json")
        new = full_engine.recommend(facts).model_dump(mode="json")
        for section in ("recommendations", "not_recommended", "alerts"):
            old_items = {i["id"]: i for i in old[section]}
            new_ids = [i["id"] for i in new[section]]
            assert [i for i in new_ids if i in old_items] == list(old_items), (section, data)
            for item in new[section]:
                if item["id"] in old_items:
                    assert item == _expected_item(old_items[item["id"]], diff, agent_ids), (item["id"], data)
                else:
                    assert item["id"] in added_rules, (item["id"], data)
        assert new["facts"] == old["facts"] and new["disclaimer"] == old["disclaimer"]
        added_sources = set(diff.added["source"])
        old_sources = [s["id"] for s in old["knowledge"]["sources"]]
        assert [s["id"] for s in new["knowledge"]["sources"] if s["id"] not in added_sources] == old_sources


def test_every_added_rule_fires_for_some_generated_facts(full_engine: Engine, diff: PackDiff) -> None:
    fired: set[str] = set()
    for data in all_facts():
        fired.update(full_engine.recommend(PatientFacts.parse(data)).fired_ids())
    assert set(diff.added["rule"]) <= fired, set(diff.added["rule"]) - fired


# --- kb diff output and the generated document -----------------------------------------------------


def test_knowledge_updates_doc_is_generated_from_kb_diff(diff: PackDiff) -> None:
    assert DOC.read_text(encoding="utf-8") == to_markdown(diff, describe, DIFF_COMMAND), "run `make docs-updates`"


def test_cli_kb_diff_markdown_matches_the_doc() -> None:
    result = runner.invoke(app, ["kb", "diff", "base", "updates-2026", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout == DOC.read_text(encoding="utf-8")


def test_cli_kb_diff_json_lists_adds_changes_and_flags(diff: PackDiff) -> None:
    result = runner.invoke(app, ["kb", "diff", "base", "updates-2026", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(to_json(diff, describe)))
    sections = data["sections"]
    assert {r["id"] for r in sections["Added rules"]} == set(diff.added["rule"])
    flagged = {r["target"] for r in sections["Flagged statements of earlier packs"]}
    assert "rule liposomal-vincristine" in flagged and "agent asparaginase" in flagged
    assert {(r["kind"], r["id"]) for r in sections["Changed fields of earlier entries"]} == {
        (a.target_kind, a.target) for a in diff.flags
    }


def test_cli_kb_diff_table_names_each_new_rule(diff: PackDiff, monkeypatch: pytest.MonkeyPatch) -> None:
    from allpath import cli

    monkeypatch.setattr(cli.out, "width", 400)
    result = runner.invoke(app, ["kb", "diff"])
    assert result.exit_code == 0, result.output
    for rule_id in diff.added["rule"]:
        assert rule_id in result.stdout
    for title in ("Added rules", "Flagged statements of earlier packs", "Changed fields of earlier entries"):
        assert title in result.stdout


# --- superseded statements show their note in every output -------------------------------------------


def _facts_showing(engine: Engine, kind: str, target: str) -> PatientFacts:
    """The first example or generated case whose default plan contains the amended rule or agent."""
    name = engine.kb.agents[target].name if kind == "agent" else None
    for data in all_facts():
        facts = PatientFacts.parse(data)
        plan = engine.recommend(facts)
        if kind == "rule" and target in plan.fired_ids():
            return facts
        if kind == "agent" and any(a.name == name for r in plan.recommendations for a in r.agents):
            return facts
    raise AssertionError(f"no case shows {kind} {target}")


def _amendments() -> list[tuple[str, str]]:
    return [(a.target_kind, a.target) for a in load_kb(["base", "updates-2026"]).amendments]


@pytest.mark.parametrize(("kind", "target"), _amendments(), ids=lambda v: str(v))
def test_superseded_statement_shows_its_note_in_json_and_text(full_engine: Engine, kind: str, target: str) -> None:
    note = next(a for a in full_engine.kb.amendments if a.target == target)
    expected = " ".join(note.superseded_by.split())
    facts = _facts_showing(full_engine, kind, target)
    plan = full_engine.recommend(facts)

    data = json.loads(plan.model_dump_json())
    items = [i for section in ("recommendations", "not_recommended", "alerts") for i in data[section]]
    if kind == "rule":
        shown = [i["superseded_by"] for i in items if i["id"] == target]
    else:
        name = full_engine.kb.agents[target].name
        shown = [a["superseded_by"] for i in items for a in i.get("agents", []) if a["name"] == name]
    assert shown and all(s == expected for s in shown)

    text = " ".join(render_text(plan).split())
    assert f"UPDATE: {expected}" in text
    if note.alert:
        assert note.alert in plan.fired_ids()


def test_marqibo_option_comes_with_a_critical_withdrawal_alert(full_engine: Engine) -> None:
    relapse = {"disease_status": "relapsed", "remission_count": 1, "relapse_count": 1, "prior_regimen_count": 2}
    plan = full_engine.recommend(PatientFacts.parse({"age_years": 40, **relapse}))
    alert = plan.alerts[0]
    assert (alert.id, alert.severity) == ("marqibo-approval-withdrawn", "critical")
    rec = next(r for r in plan.recommendations if r.id == "liposomal-vincristine")
    assert rec.superseded_by and "2022-05-02" in rec.superseded_by
    assert rec.agents[0].superseded_by and "withdrawn" in rec.agents[0].superseded_by


def test_cli_text_and_json_show_the_note(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    facts = {"age_years": 40, "disease_status": "relapsed", "remission_count": 1, "relapse_count": 1}
    path.write_text(json.dumps({**facts, "prior_regimen_count": 2}), encoding="utf-8")
    updates = ["--packs", "base,updates-2026"]
    text = runner.invoke(app, ["recommend", str(path), "--format", "text", *updates])
    assert text.exit_code == 0, text.output
    assert "[CRITICAL] Liposomal vincristine (Marqibo)" in text.stdout
    assert "UPDATE: No longer available" in text.stdout
    as_json = json.loads(runner.invoke(app, ["recommend", str(path), *updates]).stdout)
    rec = next(r for r in as_json["recommendations"] if r["id"] == "liposomal-vincristine")
    assert rec["superseded_by"].startswith("No longer available")
    base_only = json.loads(runner.invoke(app, ["recommend", str(path), "--packs", "base"]).stdout)
    rec = next(r for r in base_only["recommendations"] if r["id"] == "liposomal-vincristine")
    assert rec["superseded_by"] is None
    # With the practice pack (the default) the withdrawn medicine is no choice at all.
    default = json.loads(runner.invoke(app, ["recommend", str(path)]).stdout)
    assert "liposomal-vincristine" not in [r["id"] for r in default["recommendations"]]
    assert "vincristine sulfate liposome" not in [a["name"] for r in default["recommendations"] for a in r["agents"]]


def test_practice_diff_doc_is_current() -> None:
    command = "allpath kb diff base,updates-2026 base,updates-2026,practice-2026 --format markdown"
    diff = diff_kbs(load_kb(["base", "updates-2026"]), load_kb(["base", "updates-2026", "practice-2026"]))
    doc = ROOT / "docs" / "knowledge-practice.md"
    assert doc.read_text(encoding="utf-8") == to_markdown(diff, describe, command), "run `make docs-updates`"
