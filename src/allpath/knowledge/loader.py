"""Load knowledge packs from their YAML files and check them as a whole.

A malformed KB must fail at start-up, naming the file and the path inside it, never at the
first patient. So everything that can be checked is checked here: the schema of each file,
ids that must resolve (agents, sources, sections, rule and condition references, parameters),
and every condition leaf against the `PatientFacts` contract (field exists, operator suits
its type, value is one it can take).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from allpath.errors import KnowledgeBaseError, Problem, UnsupportedLanguageError, field_path
from allpath.facts import FACT_KINDS
from allpath.knowledge import yamlio
from allpath.knowledge.schema import (
    LANGUAGES,
    PRACTICE_CHANGES,
    TRANSLATED,
    Agent,
    AgentsFile,
    AlertRule,
    AllOf,
    Amendment,
    AmendmentsFile,
    AnyOf,
    Condition,
    FactTest,
    FamilyFile,
    FamilyText,
    GlossaryFile,
    GlossaryTerm,
    NamedCondition,
    NotOf,
    NotRecommendedRule,
    PackFile,
    Parameter,
    ParamRef,
    Phase,
    PhasesFile,
    RecommendationRule,
    RuleRef,
    RulesFile,
    Source,
    Topic,
    TopicsFile,
)

DEFAULT_PACKS: tuple[str, ...] = ("base", "updates-2026", "practice-2026")
PACK_FILES = (
    "pack.yaml",
    "agents.yaml",
    "phases.yaml",
    "topics.yaml",
    "family.yaml",
    "glossary.yaml",
    "rules.yaml",
    "amendments.yaml",
)

_M = TypeVar("_M", bound=BaseModel)


class KnowledgeError(KnowledgeBaseError):
    """The knowledge base is malformed. The message names the file and the path inside it."""


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything the packs say, checked and with every condition resolved to plain fact tests."""

    packs: tuple[PackFile, ...]
    sources: Mapping[str, Source]
    parameters: Mapping[str, Parameter]
    agents: Mapping[str, Agent]
    phases: Mapping[str, Phase]
    topics: Mapping[str, Topic]
    rules: tuple[RecommendationRule | NotRecommendedRule | AlertRule, ...]
    named_conditions: Mapping[str, NamedCondition]
    # Rule id -> its condition with refs inlined and params replaced by numbers: what back ends walk.
    conditions: Mapping[str, Condition]
    variant_conditions: Mapping[str, tuple[Condition, ...]]
    disclaimer: str
    parameter_overrides: Mapping[str, float] = field(default_factory=dict)
    # Later packs' flags on earlier packs' rules and agents, already applied to `rules` and `agents`.
    amendments: tuple[Amendment, ...] = ()
    # "rule:<id>", "agent:<id>", "source:<id>", ... -> the id of the pack that defines it.
    origins: Mapping[str, str] = field(default_factory=dict)
    # The family page's own sentences, in pack order (a later pack's entry may add to a section).
    family_texts: Mapping[str, FamilyText] = field(default_factory=dict)
    # Words families meet, explained (glossary.yaml), in pack order.
    glossary: Mapping[str, GlossaryTerm] = field(default_factory=dict)
    # The disclaimer in each translated language (the last pack's that gives one, like `disclaimer`).
    disclaimer_translations: Mapping[str, str] = field(default_factory=dict)
    # The language of the patient-facing texts (topics, phases, agents' summaries and boxed
    # warnings, family texts, glossary, disclaimer); clinician texts (rules, alerts) stay English.
    language: str = "en"
    # Language -> the KB in it, shared by every copy `for_language` makes (so "en" from a Spanish
    # copy is the KB as loaded, and each language is built once).
    _by_language: dict[str, KnowledgeBase] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_language.setdefault(self.language, self)

    def for_language(self, lang: str) -> KnowledgeBase:
        """This KB with its patient-facing texts in `lang` ("en" gives the texts as written).

        Built once per language and cached; everything else (rules, conditions, citations,
        sources) is shared, so a plan made with either copy is the same plan.
        Raises `UnsupportedLanguageError` for a language the packs do not carry.
        """
        if lang == self.language:
            return self
        if lang not in LANGUAGES:
            raise UnsupportedLanguageError(
                problems=[Problem("lang", f"{lang!r} is not supported; use one of {', '.join(LANGUAGES)}")]
            )
        found = self._by_language.get(lang)
        if found is None:
            found = self._by_language.setdefault(lang, _translated(self._by_language["en"], lang))
        return found

    @property
    def version(self) -> str:
        return "+".join(f"{p.id}@{p.version}" for p in self.packs)

    def rule(self, rule_id: str) -> RecommendationRule | NotRecommendedRule | AlertRule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)


def packs_root() -> Any:
    return resources.files("allpath.knowledge") / "packs"


_KIND_ORDER = {"base": 0, "update": 1, "practice": 2}


def available_packs() -> list[str]:
    """Every pack, in the order they can be stacked: base, then update packs, then practice packs."""
    found = []
    for folder in packs_root().iterdir():
        if folder.is_dir() and (folder / "pack.yaml").is_file():
            kind = (yamlio.safe_load((folder / "pack.yaml").read_text(encoding="utf-8")) or {}).get("kind", "base")
            found.append((_KIND_ORDER.get(kind, 0), folder.name))
    return [name for _, name in sorted(found)]


def load_kb(
    packs: Sequence[str] | None = None,
    *,
    parameters: Mapping[str, float] | None = None,
    root: Any = None,
) -> KnowledgeBase:
    """Load and check the named packs (default: `DEFAULT_PACKS`), from the package or from `root`.

    `parameters` overrides pack parameters by id (for example `long_remission_months`). The
    environment is never read here: the edge (CLI, service) turns `ALLPATH_LONG_REMISSION_MONTHS`
    into `parameters` (`allpath.settings.KnowledgeSettings`).
    """
    base = root if root is not None else packs_root()
    pack_ids = tuple(packs) if packs else DEFAULT_PACKS
    raw = [_read_pack(base, pack_id) for pack_id in pack_ids]
    return _assemble(raw, dict(parameters or {}))


@dataclass
class _RawPack:
    id: str
    pack: PackFile
    agents: list[Agent]
    phases: list[Phase]
    topics: list[Topic]
    family: list[FamilyText]
    glossary: list[GlossaryTerm]
    rules: list[RecommendationRule | NotRecommendedRule | AlertRule]
    conditions: list[NamedCondition]
    amendments: list[Amendment]


def _read_pack(base: Any, pack_id: str) -> _RawPack:
    folder = base / pack_id
    if not (folder / "pack.yaml").is_file():
        raise KnowledgeError(f"no knowledge pack named {pack_id!r} (packs: {', '.join(available_packs())})")

    def read(name: str, model: type[_M], empty: dict[str, Any]) -> _M:
        path = f"packs/{pack_id}/{name}"
        node = folder / name
        data = yamlio.safe_load(node.read_text(encoding="utf-8")) if node.is_file() else empty
        if data is None:
            data = empty
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[:5]
            lines = [f"{path}: {field_path(e['loc'])}: {e['msg']}" for e in first]
            raise KnowledgeError("\n".join(lines)) from None

    pack = read("pack.yaml", PackFile, {})
    if pack.id != pack_id:
        raise KnowledgeError(f"packs/{pack_id}/pack.yaml: id: is {pack.id!r}, expected {pack_id!r}")
    rules = read("rules.yaml", RulesFile, {"rules": []})
    agents = read("agents.yaml", AgentsFile, {"agents": []}).agents
    # A note that a statement is out of date must come from a later pack's amendment, so that the
    # statement itself stays exactly as its own pack wrote it and the diff shows who flagged it.
    for kind, items in (("rules", rules.rules), ("agents", agents)):
        for item in items:
            if item.superseded_by is not None:
                raise KnowledgeError(
                    f"packs/{pack_id}/{kind}.yaml: {kind}.{item.id}.superseded_by: set only by amendments"
                )
    return _RawPack(
        id=pack_id,
        pack=pack,
        agents=agents,
        phases=read("phases.yaml", PhasesFile, {"phases": []}).phases,
        topics=read("topics.yaml", TopicsFile, {"topics": []}).topics,
        family=read("family.yaml", FamilyFile, {"texts": []}).texts,
        glossary=read("glossary.yaml", GlossaryFile, {"terms": []}).terms,
        rules=list(rules.rules),
        conditions=list(rules.conditions),
        amendments=read("amendments.yaml", AmendmentsFile, {"amendments": []}).amendments,
    )


def _unique(kind: str, items: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    where: dict[str, str] = {}
    for item_id, path, item in items:
        if item_id in seen:
            raise KnowledgeError(f"{path}: id {item_id!r}: duplicate {kind} id (first in {where[item_id]})")
        seen[item_id] = item
        where[item_id] = path
    return seen


def _assemble(raw: list[_RawPack], overrides: Mapping[str, float]) -> KnowledgeBase:
    for p in raw:
        _check_translations(p)
    sources: dict[str, Source] = _unique(
        "source", ((s.id, f"packs/{p.id}/pack.yaml", s) for p in raw for s in p.pack.sources)
    )
    params: dict[str, Parameter] = _unique(
        "parameter", ((x.id, f"packs/{p.id}/pack.yaml", x) for p in raw for x in p.pack.parameters)
    )
    for name, value in overrides.items():
        if name not in params:
            raise KnowledgeError(f"parameter override {name!r}: no such parameter ({', '.join(sorted(params))})")
        if value < 0:
            raise KnowledgeError(f"parameter override {name}: must be >= 0")
        params[name] = params[name].model_copy(update={"value": float(value)})
    agents: dict[str, Agent] = _unique("agent", ((a.id, f"packs/{p.id}/agents.yaml", a) for p in raw for a in p.agents))
    phases: dict[str, Phase] = _unique("phase", ((x.id, f"packs/{p.id}/phases.yaml", x) for p in raw for x in p.phases))
    topics: dict[str, Topic] = _unique("topic", ((t.id, f"packs/{p.id}/topics.yaml", t) for p in raw for t in p.topics))
    rule_paths = [(r, f"packs/{p.id}/rules.yaml", i) for p in raw for i, r in enumerate(p.rules)]
    _unique("rule", ((r.id, f"{path}: rules[{i}]", r) for r, path, i in rule_paths))
    original_rules = list(rule_paths)
    rule_paths, suppressed = _amend_rules(raw, rule_paths)
    named: dict[str, NamedCondition] = _unique(
        "condition", ((c.id, f"packs/{p.id}/rules.yaml", c) for p in raw for c in p.conditions)
    )
    clash = set(named) & {r.id for r, _, _ in rule_paths}
    if clash:
        raise KnowledgeError(f"rules.yaml: conditions: ids also used by rules: {sorted(clash)}")

    checker = _Checker(sources)
    for p in raw:
        for s in p.pack.parameters:
            checker.citations(s.citations, f"packs/{p.id}/pack.yaml: parameters.{s.id}")
        for a in p.agents:
            checker.citations(a.citations, f"packs/{p.id}/agents.yaml: agents.{a.id}")
        for ph in p.phases:
            checker.citations(ph.citations, f"packs/{p.id}/phases.yaml: phases.{ph.id}")
        for t in p.topics:
            checker.citations(t.citations, f"packs/{p.id}/topics.yaml: topics.{t.id}")
        for f in p.family:
            checker.citations(f.citations, f"packs/{p.id}/family.yaml: texts.{f.id}")
        for g in p.glossary:
            checker.citations(g.citations, f"packs/{p.id}/glossary.yaml: terms.{g.id}")

    resolver = _Resolver(
        rules={
            **{r.id: (r.when, f"{path}: rules.{r.id}.when") for r, path, _ in rule_paths},
            **{rule_id: (NEVER, where) for rule_id, where in suppressed.items()},
        },
        named={c.id: (c.when, f"rules.yaml: conditions.{c.id}.when") for c in named.values()},
        params={k: v.value for k, v in params.items()},
    )
    conditions: dict[str, Condition] = {}
    variant_conditions: dict[str, tuple[Condition, ...]] = {}
    rules: list[RecommendationRule | NotRecommendedRule | AlertRule] = []
    for rule, path, _ in rule_paths:
        where = f"{path}: rules.{rule.id}"
        checker.citations(rule.citations, where)
        conditions[rule.id] = resolver.resolve_rule(rule.id)
        if isinstance(rule, RecommendationRule):
            for i, v in enumerate(rule.variants):
                checker.citations(v.citations, f"{where}.variants[{i}]")
            for use in rule.agents:
                agent_id = use if isinstance(use, str) else use.agent
                if agent_id not in agents:
                    raise KnowledgeError(f"{where}.agents: unknown agent {agent_id!r}")
                if not isinstance(use, str) and use.routes:
                    extra = set(use.routes) - set(agents[agent_id].routes)
                    if extra:
                        raise KnowledgeError(
                            f"{where}.agents.{agent_id}.routes: {sorted(extra)} not among the agent's routes"
                        )
            variant_conditions[rule.id] = tuple(
                resolver.resolve(v.when, f"{where}.variants[{i}].when", ()) for i, v in enumerate(rule.variants)
            )
        else:
            variant_conditions[rule.id] = ()
        if isinstance(rule, AlertRule):
            rule = _fill_alert_message(rule, sources, where)
        rules.append(rule)
    for c in named.values():
        resolver.resolve(c.when, f"rules.yaml: conditions.{c.id}.when", ())
    # A condition a practice pack restated or suppressed is still checked: its own pack must load alone.
    for rule, path, _ in original_rules:
        resolver.resolve(rule.when, f"{path}: rules.{rule.id}.when", (rule.id,))
        if isinstance(rule, RecommendationRule):
            for i, v in enumerate(rule.variants):
                resolver.resolve(v.when, f"{path}: rules.{rule.id}.variants[{i}].when", ())

    for k, p in enumerate(raw):
        if p.pack.kind in ("update", "practice"):
            _check_update_pack(p, raw[:k])
    rules, agents, topics, amendments = _apply_amendments(raw, rules, agents, topics, checker)

    family_texts: dict[str, FamilyText] = _unique(
        "family text", ((f.id, f"packs/{p.id}/family.yaml", f) for p in raw for f in p.family)
    )
    glossary: dict[str, GlossaryTerm] = _unique(
        "glossary term", ((g.id, f"packs/{p.id}/glossary.yaml", g) for p in raw for g in p.glossary)
    )
    disclaimer_pack = next((p.pack for p in reversed(raw) if p.pack.disclaimer), None)
    if disclaimer_pack is None or disclaimer_pack.disclaimer is None:
        raise KnowledgeError("pack.yaml: disclaimer: no pack gives one")
    disclaimer = disclaimer_pack.disclaimer
    origins = {
        f"{kind}:{item_id}": p.id
        for p in raw
        for kind, ids in (
            ("source", [s.id for s in p.pack.sources]),
            ("parameter", [x.id for x in p.pack.parameters]),
            ("agent", [a.id for a in p.agents]),
            ("phase", [x.id for x in p.phases]),
            ("topic", [t.id for t in p.topics]),
            ("family", [f.id for f in p.family]),
            ("glossary", [g.id for g in p.glossary]),
            ("rule", [r.id for r in p.rules]),
            ("condition", [c.id for c in p.conditions]),
            ("amendment", [f"{a.target_kind}:{a.target}" for a in p.amendments]),
        )
        for item_id in ids
    }
    return KnowledgeBase(
        packs=tuple(p.pack for p in raw),
        sources=sources,
        parameters=params,
        agents=agents,
        phases=phases,
        topics=topics,
        rules=tuple(rules),
        named_conditions=named,
        conditions=conditions,
        variant_conditions=variant_conditions,
        disclaimer=disclaimer.strip(),
        parameter_overrides=dict(overrides),
        amendments=tuple(amendments),
        origins=origins,
        family_texts=family_texts,
        glossary=glossary,
        disclaimer_translations={
            lang: " ".join(text.split())
            for lang in TRANSLATED
            if (text := getattr(getattr(disclaimer_pack, lang), "disclaimer", None))
        },
    )


# A condition that never holds: what a suppressed rule's condition becomes for rules that ref it.
NEVER = NotOf(**{"not": AllOf(all=[])})


def _amend_rules(
    raw: list[_RawPack], rule_paths: list[tuple[Any, str, int]]
) -> tuple[list[tuple[Any, str, int]], dict[str, str]]:
    """Apply practice amendments to rules before conditions are resolved.

    Done before resolution so that a rule which `ref`s an amended rule follows the amended
    condition (an autologous-transplant warning tied to the transplant rules stays tied to them).
    Returns the rules still in plans and, for suppressed ones, where they were suppressed.
    """
    index = {r.id: k for k, (r, _, _) in enumerate(rule_paths)}
    pack_of = {r.id: k for k, p in enumerate(raw) for r in p.rules}
    amended = list(rule_paths)
    suppressed: dict[str, str] = {}
    for k, p in enumerate(raw):
        for i, a in enumerate(p.amendments):
            if a.target_kind != "rule" or a.change not in PRACTICE_CHANGES:
                continue
            where = f"packs/{p.id}/amendments.yaml: amendments[{i}] (rule {a.target})"
            if p.pack.kind != "practice":
                raise KnowledgeError(f"{where}.change: {a.change!r} is made only by a practice pack")
            if a.target not in index or a.target in suppressed:
                raise KnowledgeError(f"{where}.target: no rule {a.target!r} in the packs loaded")
            if pack_of[a.target] >= k:
                raise KnowledgeError(
                    f"{where}.target: a pack amends only earlier packs, not {raw[pack_of[a.target]].id}"
                )
            rule, path, position = amended[index[a.target]]
            if a.change == "suppressed":
                suppressed[a.target] = f"{where}: suppressed"
                continue
            update: dict[str, Any] = {}
            when = rule.when
            if a.when is not None:
                when = a.when
            if a.also_when is not None:
                when = AllOf(all=[when, a.also_when])
            if when is not rule.when:
                update["when"] = when
            if a.variants:
                if not isinstance(rule, RecommendationRule):
                    raise KnowledgeError(f"{where}.variants: only recommendations have variants")
                # A case the practice pack adds cites the practice sources when, and only when, it
                # applies: a plain induction must not cite the hospice rule behind its short-survival case.
                cited = [v if v.citations else v.model_copy(update={"citations": a.citations}) for v in a.variants]
                update["variants"] = [*cited, *rule.variants]
            if a.when is not None or a.also_when is not None:
                # The practice pack now decides when the rule fires: every output cites it too.
                update["citations"] = [*rule.citations, *(c for c in a.citations if c not in rule.citations)]
            amended[index[a.target]] = (rule.model_copy(update=update), path, position)
    return [entry for entry in amended if entry[0].id not in suppressed], suppressed


LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
# Lists of search words: each language has its own, not one per English word.
_FREE_LISTS = ("keywords", "aliases", "words")


def _check_translations(p: _RawPack) -> None:
    """Every patient-facing entry carries its text in every language (`TRANSLATED`), with the
    same shape as the English: a block per entry, each field the English has, as many points.

    Every fault of the pack is listed at once, each naming the entry and the missing language.
    Clinician texts (rule titles, summaries and rationales, alerts, reasons, notes) are English only.
    """
    problems: list[Problem] = []

    def need(where: str, entry: Any, lang: str, fields: dict[str, Any]) -> None:
        block = getattr(entry, lang)
        name = f"{LANGUAGE_NAMES[lang]} ({lang})"
        if block is None:
            problems.append(Problem(f"{where}.{lang}", f"no {name} text: a patient-facing entry needs both languages"))
            return
        for field_name, english in fields.items():
            translated = getattr(block, field_name)
            if english in (None, []) and translated in (None, []):
                continue
            if translated in (None, []):
                problems.append(Problem(f"{where}.{lang}.{field_name}", f"missing: the English has it, the {name} not"))
            elif english in (None, []):
                problems.append(Problem(f"{where}.{lang}.{field_name}", f"the {name} has it, the English not"))
            elif isinstance(english, list) and field_name not in _FREE_LISTS and len(english) != len(translated):
                problems.append(
                    Problem(f"{where}.{lang}.{field_name}", f"{len(translated)} items, the English has {len(english)}")
                )

    base = f"packs/{p.id}"
    for lang in TRANSLATED:
        if p.pack.disclaimer is not None:
            need(f"{base}/pack.yaml: disclaimer", p.pack, lang, {"disclaimer": p.pack.disclaimer})
        for a in p.agents:
            need(
                f"{base}/agents.yaml: agents.{a.id}", a, lang, {"summary": a.summary, "boxed_warning": a.boxed_warning}
            )
        for ph in p.phases:
            fields = {"name": ph.name, "aliases": ph.aliases, "timing": ph.timing, "goal": ph.goal}
            need(f"{base}/phases.yaml: phases.{ph.id}", ph, lang, {**fields, "setting": ph.setting, "facts": ph.facts})
        for t in p.topics:
            fields = {"title": t.title, "summary": t.summary, "points": t.points, "keywords": t.keywords}
            need(f"{base}/topics.yaml: topics.{t.id}", t, lang, fields)
        for f in p.family:
            need(f"{base}/family.yaml: texts.{f.id}", f, lang, {"title": f.title, "text": f.text})
        for g in p.glossary:
            need(
                f"{base}/glossary.yaml: terms.{g.id}",
                g,
                lang,
                {"term": g.term, "definition": g.definition, "words": g.words},
            )
        for i, am in enumerate(p.amendments):
            wording = {"summary": am.summary, "points": am.points, "boxed_warning": am.boxed_warning}
            if any(v is not None for v in wording.values()):
                need(f"{base}/amendments.yaml: amendments[{i}] ({am.target_kind} {am.target})", am, lang, wording)
    if problems:
        raise KnowledgeError("\n".join(str(x) for x in problems), problems)


def _check_update_pack(p: _RawPack, earlier: list[_RawPack]) -> None:
    """Every entry of an update or practice pack cites at least one of the pack's own (dated) sources.

    A practice pack's amendments may instead rest on an earlier pack's dated source (a withdrawal
    notice, a label): the reason for the change is already sourced there.
    """
    own = {s.id for s in p.pack.sources}
    for_amendments = own | ({s.id for e in earlier for s in e.pack.sources} if p.pack.kind == "practice" else set())
    entries: list[tuple[str, Any]] = [
        *((f"pack.yaml: parameters.{x.id}", x) for x in p.pack.parameters),
        *((f"agents.yaml: agents.{a.id}", a) for a in p.agents),
        *((f"phases.yaml: phases.{x.id}", x) for x in p.phases),
        *((f"topics.yaml: topics.{t.id}", t) for t in p.topics),
        *((f"family.yaml: texts.{f.id}", f) for f in p.family),
        *((f"glossary.yaml: terms.{g.id}", g) for g in p.glossary),
        *((f"rules.yaml: rules.{r.id}", r) for r in p.rules),
        *((f"amendments.yaml: amendments.{a.target}", a) for a in p.amendments),
    ]
    for where, entry in entries:
        allowed = for_amendments if isinstance(entry, Amendment) else own
        if not any(c.source_id in allowed for c in entry.citations):
            raise KnowledgeError(
                f"packs/{p.id}/{where}.citations: an update pack's entry must cite one of the pack's own "
                f"dated primary sources ({', '.join(sorted(own)) or 'none defined'})"
            )


def _apply_amendments(
    raw: list[_RawPack],
    rules: list[RecommendationRule | NotRecommendedRule | AlertRule],
    agents: dict[str, Agent],
    topics: dict[str, Topic],
    checker: _Checker,
) -> tuple[
    list[RecommendationRule | NotRecommendedRule | AlertRule], dict[str, Agent], dict[str, Topic], list[Amendment]
]:
    """Give each flagged rule or agent its `superseded_by` note, and apply practice changes to
    agents and topics; once, at load, never per plan (rule conditions: `_amend_rules`)."""
    pack_of = {("rule", r.id): k for k, p in enumerate(raw) for r in p.rules}
    pack_of.update({("agent", a.id): k for k, p in enumerate(raw) for a in p.agents})
    pack_of.update({("topic", t.id): k for k, p in enumerate(raw) for t in p.topics})
    notes: dict[tuple[str, str], str] = {}
    agent_updates: dict[str, dict[str, Any]] = {}
    topic_updates: dict[str, dict[str, Any]] = {}
    # The same change's wording in each translated language, merged into the target's own block.
    translated_updates: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    applied: list[Amendment] = []
    for k, p in enumerate(raw):
        own_rules = {r.id: r for r in p.rules}
        seen: set[tuple[str, str]] = set()
        for i, a in enumerate(p.amendments):
            where = f"packs/{p.id}/amendments.yaml: amendments[{i}] ({a.target_kind} {a.target})"
            checker.citations(a.citations, where)
            key = (a.target_kind, a.target)
            if key not in pack_of:
                raise KnowledgeError(f"{where}.target: no {a.target_kind} {a.target!r} in the packs loaded")
            if pack_of[key] >= k:
                raise KnowledgeError(f"{where}.target: a pack amends only earlier packs, not {raw[pack_of[key]].id}")
            if key in seen:
                raise KnowledgeError(f"{where}.target: already amended")
            seen.add(key)
            if a.target_kind in ("agent", "topic") and a.change in PRACTICE_CHANGES:
                if p.pack.kind != "practice":
                    raise KnowledgeError(f"{where}.change: {a.change!r} is made only by a practice pack")
                fields = ("routes", "boxed_warning") if a.target_kind == "agent" else ("summary", "points")
                changes = {name: getattr(a, name) for name in fields if getattr(a, name) is not None}
                if not changes:
                    raise KnowledgeError(f"{where}: a {a.change!r} amendment changes {' or '.join(fields)}")
                (agent_updates if a.target_kind == "agent" else topic_updates)[a.target] = changes
                for lang in TRANSLATED:
                    texts = getattr(a, lang)
                    if texts is not None:
                        words = {
                            name: getattr(texts, name) for name in fields if getattr(texts, name, None) is not None
                        }
                        translated_updates.setdefault(key, {})[lang] = words
            if a.superseded_by is None:
                applied.append(a)
                continue
            for rule_id in a.replaced_by:
                if rule_id not in own_rules:
                    raise KnowledgeError(f"{where}.replaced_by: {rule_id!r} is not a rule of {p.id}")
            if a.alert is not None and not isinstance(own_rules.get(a.alert), AlertRule):
                raise KnowledgeError(f"{where}.alert: {a.alert!r} is not an alert rule of {p.id}")
            notes[key] = " ".join(a.superseded_by.split())
            applied.append(a)

    def note(kind: str, item_id: str) -> dict[str, str]:
        return {"superseded_by": notes[(kind, item_id)]}

    def translated(kind: str, entry: Agent | Topic) -> dict[str, Any]:
        # A target without a block in that language keeps none: the translation check names it.
        out: dict[str, Any] = {}
        for lang, words in translated_updates.get((kind, entry.id), {}).items():
            own = getattr(entry, lang)
            if own is not None:
                out[lang] = own.model_copy(update=words)
        return out

    amended_rules = [r.model_copy(update=note("rule", r.id)) if ("rule", r.id) in notes else r for r in rules]
    amended_agents = {
        agent_id: a.model_copy(
            update={
                **(note("agent", agent_id) if ("agent", agent_id) in notes else {}),
                **agent_updates.get(agent_id, {}),
                **translated("agent", a),
            }
        )
        for agent_id, a in agents.items()
    }
    amended_topics = {
        topic_id: t.model_copy(update={**topic_updates[topic_id], **translated("topic", t)})
        if topic_id in topic_updates
        else t
        for topic_id, t in topics.items()
    }
    return amended_rules, amended_agents, amended_topics, applied


def _fill_alert_message(rule: AlertRule, sources: Mapping[str, Source], where: str) -> AlertRule:
    if "{" not in rule.message:
        return rule
    source = sources[rule.citations[0].source_id]
    try:
        message = rule.message.format(
            source_title=source.title, source_publisher=source.publisher, source_approved=source.approved
        )
    except (KeyError, IndexError) as exc:
        raise KnowledgeError(f"{where}.message: unknown placeholder {exc}") from None
    return rule.model_copy(update={"message": message})


class _Checker:
    def __init__(self, sources: Mapping[str, Source]):
        self.sources = sources

    def citations(self, citations: Iterable[Any], where: str) -> None:
        for i, c in enumerate(citations):
            source = self.sources.get(c.source_id)
            if source is None:
                raise KnowledgeError(f"{where}.citations[{i}]: unknown source {c.source_id!r}")
            if c.section not in source.sections:
                raise KnowledgeError(f"{where}.citations[{i}]: section {c.section!r} is not a section of {c.source_id}")


_OPS_BY_TYPE = {
    "number": {"eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null"},
    "integer": {"eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null"},
    "enum": {"eq", "ne", "in", "not_in", "is_null", "not_null"},
    "boolean": {"eq", "ne", "is_null", "not_null"},
    "list": {"contains", "not_contains"},
}


class _Resolver:
    """Inlines `ref`s, replaces `{param: ...}` by numbers and type-checks every leaf."""

    def __init__(
        self,
        rules: Mapping[str, tuple[Condition, str]],
        named: Mapping[str, tuple[Condition, str]],
        params: Mapping[str, float],
    ):
        self.sources = {**rules, **named}
        self.params = params
        self.cache: dict[str, Condition] = {}

    def resolve_rule(self, rule_id: str) -> Condition:
        node, where = self.sources[rule_id]
        return self.resolve(node, where, (rule_id,))

    def resolve(self, node: Condition, where: str, stack: tuple[str, ...]) -> Condition:
        if isinstance(node, AllOf):
            return AllOf(all=[self.resolve(n, f"{where}.all[{i}]", stack) for i, n in enumerate(node.all)])
        if isinstance(node, AnyOf):
            return AnyOf(any=[self.resolve(n, f"{where}.any[{i}]", stack) for i, n in enumerate(node.any)])
        if isinstance(node, NotOf):
            return NotOf(**{"not": self.resolve(node.not_, f"{where}.not", stack)})
        if isinstance(node, RuleRef):
            if node.ref not in self.sources:
                raise KnowledgeError(f"{where}.ref: unknown rule or condition {node.ref!r}")
            if node.ref in stack:
                raise KnowledgeError(f"{where}.ref: circular reference {' -> '.join((*stack, node.ref))}")
            if node.ref not in self.cache:
                target, target_where = self.sources[node.ref]
                self.cache[node.ref] = self.resolve(target, target_where, (*stack, node.ref))
            return self.cache[node.ref]
        return self._leaf(node, where)

    def _leaf(self, node: FactTest, where: str) -> FactTest:
        kind = FACT_KINDS.get(node.fact)
        if kind is None:
            raise KnowledgeError(f"{where}.fact: {node.fact!r} is not a PatientFacts field")
        if node.op not in _OPS_BY_TYPE[kind.type]:
            raise KnowledgeError(f"{where}.op: {node.op!r} does not apply to {node.fact} ({kind.type})")
        value = node.value
        if isinstance(value, dict) and set(value) == {"param"}:
            value = ParamRef(param=value["param"])
        if isinstance(value, ParamRef):
            if value.param not in self.params:
                raise KnowledgeError(f"{where}.value: unknown parameter {value.param!r}")
            value = self.params[value.param]
        if node.op in ("is_null", "not_null"):
            if value is not None:
                raise KnowledgeError(f"{where}.value: {node.op} takes no value")
            if not kind.nullable:
                raise KnowledgeError(f"{where}.op: {node.fact} is never null")
            return FactTest(fact=node.fact, op=node.op, value=None)
        if node.op in ("in", "not_in"):
            if not isinstance(value, list | tuple) or not value:
                raise KnowledgeError(f"{where}.value: {node.op} needs a non-empty list")
            checked = tuple(self._scalar(v, kind, node.fact, where) for v in value)
            return FactTest(fact=node.fact, op=node.op, value=checked)
        if kind.type == "list":
            if value not in kind.values:
                raise KnowledgeError(f"{where}.value: {value!r} is not one of {list(kind.values)}")
            return FactTest(fact=node.fact, op=node.op, value=value)
        return FactTest(fact=node.fact, op=node.op, value=self._scalar(value, kind, node.fact, where))

    @staticmethod
    def _scalar(value: Any, kind: Any, fact: str, where: str) -> Any:
        if kind.type == "enum":
            if value not in kind.values:
                raise KnowledgeError(f"{where}.value: {value!r} is not one of {fact}'s values {list(kind.values)}")
            return value
        if kind.type == "boolean":
            if not isinstance(value, bool):
                raise KnowledgeError(f"{where}.value: {fact} compares with true or false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise KnowledgeError(f"{where}.value: {fact} compares with a number, got {value!r}")
        return value


def _translated(kb: KnowledgeBase, lang: str) -> KnowledgeBase:
    """A copy of `kb` whose patient-facing texts are those of the entries' `lang` blocks.

    Rules, conditions, citations and sources are shared: only words change. The loader has
    already refused any patient-facing entry without a `lang` block (`_check_translations`).
    """

    def block(entry: Any) -> Any:
        return getattr(entry, lang)

    topics = {
        k: t.model_copy(update={"title": b.title, "summary": b.summary, "points": b.points, "keywords": b.keywords})
        if (b := block(t)) is not None
        else t
        for k, t in kb.topics.items()
    }
    phases = {
        k: p.model_copy(
            update={
                "name": b.name,
                "aliases": b.aliases,
                "timing": b.timing,
                "goal": b.goal,
                "setting": b.setting,
                "facts": b.facts,
            }
        )
        if (b := block(p)) is not None
        else p
        for k, p in kb.phases.items()
    }
    agents = {
        k: a.model_copy(update={"summary": b.summary, "boxed_warning": b.boxed_warning})
        if (b := block(a)) is not None
        else a
        for k, a in kb.agents.items()
    }
    family = {
        k: f.model_copy(update={"title": b.title, "text": b.text}) if (b := block(f)) is not None else f
        for k, f in kb.family_texts.items()
    }
    glossary = {
        k: g.model_copy(update={"term": b.term, "definition": b.definition, "words": b.words})
        if (b := block(g)) is not None
        else g
        for k, g in kb.glossary.items()
    }
    return replace(
        kb,
        topics=topics,
        phases=phases,
        agents=agents,
        family_texts=family,
        glossary=glossary,
        disclaimer=kb.disclaimer_translations.get(lang, kb.disclaimer),
        language=lang,
    )
