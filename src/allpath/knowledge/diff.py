"""What a later knowledge pack adds to, changes in and flags on the packs before it.

The diff is computed, not declared: both knowledge bases are loaded and every entry (source,
parameter, agent, phase, topic, rule and its resolved condition, named condition) is compared
field by field. So "the differences are exactly those the diff lists" can be tested against
real plans, and `docs/knowledge-updates.md` is this module's Markdown output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from allpath.knowledge.loader import KnowledgeBase
from allpath.knowledge.schema import TRANSLATED, Amendment, Condition, Omission, PackFile

KINDS = ("source", "parameter", "agent", "phase", "topic", "rule", "condition")


@dataclass(frozen=True)
class Change:
    kind: str
    id: str
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class PackDiff:
    old: KnowledgeBase
    new: KnowledgeBase
    added: Mapping[str, tuple[str, ...]]  # kind -> ids, in the new KB's order
    removed: Mapping[str, tuple[str, ...]]
    changed: tuple[Change, ...]
    flags: tuple[Amendment, ...]
    new_packs: tuple[PackFile, ...]

    @property
    def not_included(self) -> tuple[Omission, ...]:
        return tuple(o for p in self.new_packs for o in p.not_included)

    def changes_for(self, kind: str, item_id: str) -> dict[str, Any]:
        """Field -> new value, for one entry present in both knowledge bases."""
        return {c.field: c.new for c in self.changed if c.kind == kind and c.id == item_id}


def _entries(kb: KnowledgeBase) -> dict[str, dict[str, Any]]:
    rules = {}
    for r in kb.rules:
        dump = r.model_dump(mode="json", by_alias=True, exclude={"when"})
        # The resolved condition, not the YAML one: a parameter or a referenced rule changed by a
        # later pack changes when a rule fires even if its own text is untouched.
        dump["condition"] = kb.conditions[r.id].model_dump(mode="json", by_alias=True)
        dump["variant_conditions"] = [c.model_dump(mode="json", by_alias=True) for c in kb.variant_conditions[r.id]]
        rules[r.id] = dump
    # The translations follow the English, which the diff shows; the loader checks they are there.
    words = set(TRANSLATED)
    return {
        "source": {k: v.model_dump(mode="json") for k, v in kb.sources.items()},
        "parameter": {k: v.model_dump(mode="json") for k, v in kb.parameters.items()},
        "agent": {k: v.model_dump(mode="json", exclude=words) for k, v in kb.agents.items()},
        "phase": {k: v.model_dump(mode="json", exclude=words) for k, v in kb.phases.items()},
        "topic": {k: v.model_dump(mode="json", exclude=words) for k, v in kb.topics.items()},
        "rule": rules,
        "condition": {k: v.model_dump(mode="json", by_alias=True) for k, v in kb.named_conditions.items()},
    }


def diff_kbs(old: KnowledgeBase, new: KnowledgeBase) -> PackDiff:
    before, after = _entries(old), _entries(new)
    added: dict[str, tuple[str, ...]] = {}
    removed: dict[str, tuple[str, ...]] = {}
    changed: list[Change] = []
    for kind in KINDS:
        a, b = before[kind], after[kind]
        added[kind] = tuple(i for i in b if i not in a)
        removed[kind] = tuple(i for i in a if i not in b)
        for item_id in (i for i in b if i in a):
            for name in sorted(set(a[item_id]) | set(b[item_id])):
                if a[item_id].get(name) != b[item_id].get(name):
                    changed.append(Change(kind, item_id, name, a[item_id].get(name), b[item_id].get(name)))
    old_ids = {p.id for p in old.packs}
    return PackDiff(
        old=old,
        new=new,
        added=added,
        removed=removed,
        changed=tuple(changed),
        flags=tuple(a for a in new.amendments if a not in old.amendments),
        new_packs=tuple(p for p in new.packs if p.id not in old_ids),
    )


# --- rendering -------------------------------------------------------------------------------

Describe = Callable[[Condition], str]


def _cites(kb: KnowledgeBase, citations: Any) -> str:
    return "; ".join(f"{c.source_id} ({kb.sources[c.source_id].approved})" for c in citations)


def rows(diff: PackDiff, describe: Describe) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Section title -> (columns, rows): the one tabular form the table, JSON and Markdown share."""
    new = diff.new
    out: dict[str, tuple[list[str], list[list[str]]]] = {}
    out["Packs"] = (
        ["pack", "kind", "version", "reviewed", "title"],
        [[p.id, p.kind, p.version, p.reviewed, p.title] for p in new.packs],
    )
    out["Added sources"] = (
        ["id", "date", "kind", "title", "publisher", "confirmed via"],
        [
            [s.id, s.approved, s.kind, s.title, s.publisher, s.confirmed_via or s.url or "-"]
            for s in (new.sources[i] for i in diff.added["source"])
        ],
    )
    out["Added parameters"] = (
        ["id", "value", "unit", "description", "cites"],
        [
            [x.id, f"{x.value:g}", x.unit, x.description, _cites(new, x.citations)]
            for x in (new.parameters[i] for i in diff.added["parameter"])
        ],
    )
    out["Added agents"] = (
        ["id", "name", "brands", "class", "routes", "cites"],
        [
            [a.id, a.name, ", ".join(a.brand_names) or "-", a.drug_class, ", ".join(a.routes), _cites(new, a.citations)]
            for a in (new.agents[i] for i in diff.added["agent"])
        ],
    )
    rule_rows = []
    for rule_id in diff.added["rule"]:
        r = new.rule(rule_id)
        if r.kind == "recommendation":
            what, label = r.title, f"{r.category}, {r.strength}"
        elif r.kind == "alert":
            what, label = " ".join(r.message.split()), r.severity
        else:
            what, label = r.title, "not recommended"
        rule_rows.append([r.id, r.kind, label, what, describe(new.conditions[r.id]), _cites(new, r.citations)])
    out["Added rules"] = (["id", "kind", "category / severity", "says", "fires when", "cites"], rule_rows)
    out["Added named conditions"] = (
        ["id", "description"],
        [[c.id, c.description] for c in (new.named_conditions[i] for i in diff.added["condition"])],
    )
    out["Flagged statements of earlier packs"] = (
        ["target", "change", "severity", "effective", "note shown with it", "alert", "replaced by", "cites"],
        [
            [
                f"{a.target_kind} {a.target}",
                a.change,
                a.severity,
                a.effective,
                " ".join((a.superseded_by or a.reason or "").split()),
                a.alert or "-",
                ", ".join(a.replaced_by) or "-",
                _cites(new, a.citations),
            ]
            for a in diff.flags
        ],
    )
    out["Changed fields of earlier entries"] = (
        ["kind", "id", "field", "before", "after"],
        [[c.kind, c.id, c.field, _short(c.old), _short(c.new)] for c in diff.changed],
    )
    removed = [[kind, item_id] for kind in KINDS for item_id in diff.removed[kind]]
    out["Removed"] = (["kind", "id"], removed)
    out["Looked for and not included"] = (
        ["item", "reason"],
        [[o.item, " ".join(o.reason.split())] for o in diff.not_included],
    )
    return out


def _short(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return " ".join(text.split())


def to_json(diff: PackDiff, describe: Describe) -> dict[str, Any]:
    return {
        "old": diff.old.version,
        "new": diff.new.version,
        "sections": {
            title: [dict(zip(columns, row, strict=True)) for row in body]
            for title, (columns, body) in rows(diff, describe).items()
        },
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(diff: PackDiff, describe: Describe, command: str) -> str:
    lines = [
        "# Knowledge updates",
        "",
        f"What `{diff.new.version}` adds to, changes in and flags on `{diff.old.version}`.",
        "",
        f"Generated by `{command}` (`make docs-updates`); do not edit by hand:",
        "a test checks this file against the command's output.",
        "",
        "An update pack never edits an earlier pack. It adds sources, agents and rules, and it flags",
        "earlier statements through amendments: the statement keeps its words and gains a",
        "`superseded_by` note that every output shows (JSON, text, web, FHIR), usually with an alert.",
        "Every entry of an update pack cites one of its own sources, each a dated primary source",
        "(FDA notice or label, Federal Register notice, or the maker's announcement of an FDA action),",
        "with the page where it was confirmed.",
        "",
    ]
    for p in diff.new_packs:
        if p.conventions:
            lines += [f"## How `{p.id}` reads label wording", ""]
            lines += [f"- {' '.join(c.split())}" for c in p.conventions]
            lines.append("")
    for title, (columns, body) in rows(diff, describe).items():
        lines += [f"## {title}", ""]
        if not body:
            lines += ["None.", ""]
            continue
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join("---" for _ in columns) + "|")
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in body]
        lines.append("")
    return "\n".join(lines)
