"""The one generator of consistent PatientFacts for the tests (and the FHIRPath benchmark).

One construction, `draw_facts(picker, shape)`, drives every source of generated facts:

* hypothesis strategies (`valid_facts_dicts`, `valid_facts`), through `DrawPicker`, so a failure
  shrinks;
* seeded streams (`facts_stream`, `fact_dicts_stream`), through `RandomPicker`, for tests that need
  thousands of facts cheaply and the same ones every run (the FHIRPath differential, the golden
  snapshot's rebuild);
* `collect_patients`: hypothesis' generate phase, without shrinking, for batch tests (cohorts) that
  want its awkward floats.

What is drawn comes from `allpath.facts` (every field of `FIELD_NAMES` by its `FACT_KINDS` entry,
so a new field is generated without touching this file) and numeric values crowd the knowledge
base's own comparison values and their neighbours (`boundaries`, over every pack set), so every
`<` / `<=` / `>=` edge of a rule is hit many times.

Consistency: only the two things a random draw would almost never get right are built here (a
history whose counts fit the disease status, with phases finished in order; genetic findings that
fit together and with the Ph status). Every other rule is left to `PatientFacts.parse`: a field it
names in a contradiction is left out (it then takes its default) and the facts are parsed again.
So the contradiction rules live in `allpath.facts` and nowhere here.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from annotated_types import Le
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from allpath.facts import FACT_KINDS, FIELD_NAMES, GENETIC_SUBTYPES, PHASE_ORDER, FactsError, PatientFacts
from allpath.knowledge import KnowledgeBase, load_kb
from allpath.knowledge.loader import DEFAULT_PACKS
from allpath.rules.tree import leaves

T = TypeVar("T")

V1_FIELDS = FIELD_NAMES[: FIELD_NAMES.index("expected_survival_months") + 1]
# Built together below rather than drawn field by field (see the module docstring).
_BUILT = frozenset({"disease_status", "remission_count", "relapse_count", "completed_phases", "genetic_subtypes"})
_COUNTS = ("remission_count", "relapse_count")
# Upper ends of the numeric draws where the model sets none (it does for age: le=120).
_HIGH = {"number": 240.0, "integer": 5}


class Picker(Protocol):
    """The random choices the construction makes; one implementation per source of randomness."""

    def choice(self, options: Sequence[T]) -> T: ...
    def integer(self, low: int, high: int) -> int: ...
    def real(self, low: float, high: float) -> float: ...
    def some(self, options: Sequence[T], most: int) -> list[T]: ...
    def flags(self, count: int, p: float) -> list[bool]: ...


class DrawPicker:
    """Choices drawn by hypothesis (inside `@st.composite`): shrinkable, with its awkward floats."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def choice(self, options: Sequence[T]) -> T:
        return self.draw(_sampled(tuple(options)))

    def integer(self, low: int, high: int) -> int:
        return self.draw(_integers(low, high))

    def real(self, low: float, high: float) -> float:
        return self.draw(_floats(low, high))

    def some(self, options: Sequence[T], most: int) -> list[T]:
        return self.draw(_lists(tuple(options), most))

    def flags(self, count: int, p: float) -> list[bool]:
        # One draw for all the flags (a draw costs far more than its bits): each flag is False
        # when its `bits` bits are all set, so about 1 - 2**-bits of them are True.
        bits = max(1, round(-math.log2(1 - p)))
        word = self.draw(_integers(0, 2 ** (bits * count) - 1))
        full = 2**bits - 1
        return [(word >> (bits * i)) & full != full for i in range(count)]


# Strategies are built once: building and validating one per draw made generation about 1.8x slower.
@functools.cache
def _sampled(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(options)


@functools.cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@functools.cache
def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    # Hypothesis' own floats (awkward ones included) and, beside them, ordinary values to 2
    # decimals: within one test run hypothesis re-uses its floats a lot, and a fact that takes
    # ten values is not varied enough to compare back ends on.
    hundredths = st.integers(round(low * 100), round(high * 100)).map(lambda n: n / 100)
    return st.one_of(st.floats(low, high, allow_nan=False, allow_infinity=False), hundredths)


@functools.cache
def _lists(options: tuple[Any, ...], most: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(options), max_size=most, unique=True)


class RandomPicker:
    """Choices from a seeded `random.Random`: cheap, the same on every run.

    Numbers off the KB's edges fall on a coarse grid (`grid` steps over the range), which keeps the
    number of distinct values small, so a slow oracle (fhirpathpy) can be memoised without losing
    coverage; `grid=None` draws them from the whole range (to 2 decimals).
    """

    def __init__(self, seed: int, grid: int | None = 40) -> None:
        self.rng = random.Random(seed)
        self.grid = grid

    def choice(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def real(self, low: float, high: float) -> float:
        if self.grid is None:
            return round(self.rng.uniform(low, high), 2)
        return low + self.rng.randint(0, self.grid) * (high - low) / self.grid

    def flags(self, count: int, p: float) -> list[bool]:
        return [self.rng.random() < p for _ in range(count)]

    def some(self, options: Sequence[T], most: int) -> list[T]:
        # Empty a third of the time: an empty list says nothing is known, a case of its own.
        return self.rng.sample(list(options), self.rng.choice((0, 0, 1, 1, *range(2, most + 1))))


@dataclass(frozen=True)
class Shape:
    """How facts are spread: which values to crowd and how often a field is left out or unknown."""

    edges: Mapping[str, Sequence[float]]  # numeric fact -> values the KB compares it with, and neighbours
    v2: bool = True  # False: the twelve v1 fields only (what the golden snapshot's facts hold)
    keep: float = 0.85  # chance that an optional field is given at all (left out, it takes its default)
    null: float = 0.2  # chance that a nullable number is null
    on_edge: float = 0.6  # chance that a numeric fact with (six or more) edges takes one of them


def boundaries(*kbs: KnowledgeBase) -> dict[str, list[float]]:
    """For each numeric fact, every value the KBs compare it with, and the values just either side."""
    found: dict[str, set[float]] = {}
    for kb in kbs:
        conditions = [*kb.conditions.values(), *(v for vs in kb.variant_conditions.values() for v in vs)]
        for condition in conditions:
            for test in leaves(condition):
                kind = FACT_KINDS[test.fact]
                if kind.type not in ("number", "integer") or test.value is None:
                    continue
                values = test.value if isinstance(test.value, tuple) else (test.value,)
                step = 1 if kind.type == "integer" else 0.01
                for v in values:
                    found.setdefault(test.fact, set()).update(x for x in (v - step, v, v + step) if x >= 0)
    return {k: sorted(v) for k, v in found.items()}


@functools.cache
def default_shape() -> Shape:
    """Edges of every pack set the tests load: base, base with the updates, and all packs.

    (The practice pack restates some base conditions, so all packs alone would miss base edges.)
    """
    return Shape(boundaries(*(load_kb(list(DEFAULT_PACKS[:n])) for n in range(1, len(DEFAULT_PACKS) + 1))))


def shape_for(*kbs: KnowledgeBase, v2: bool = True) -> Shape:
    return Shape(boundaries(*kbs), v2=v2)


def _high(name: str) -> float:
    for meta in PatientFacts.model_fields[name].metadata:
        if isinstance(meta, Le):
            return float(meta.le)
    return _HIGH[FACT_KINDS[name].type]


def _numeric(p: Picker, shape: Shape, name: str) -> float | int | None:
    kind = FACT_KINDS[name]
    edges = shape.edges.get(name, ())
    # One roll decides null, on an edge, or anywhere in the range (one draw, not two).
    roll = p.integer(0, 99)
    null_below = round(shape.null * 100) if kind.nullable else 0
    # Each edge value gets at most a tenth of the draws, so a fact with few edges still varies.
    on_edge = min(shape.on_edge, len(edges) / 10)
    edge_below = null_below + round((100 - null_below) * on_edge)
    if roll < null_below:
        return None
    if roll < edge_below:
        return int(p.choice(edges)) if kind.type == "integer" else float(p.choice(edges))
    return p.integer(0, int(_high(name))) if kind.type == "integer" else p.real(0.0, _high(name))


def _field(p: Picker, shape: Shape, name: str) -> Any:
    kind = FACT_KINDS[name]
    if kind.type in ("number", "integer"):
        return _numeric(p, shape, name)
    if kind.type == "boolean":
        return p.choice((True, False, None) if kind.nullable else (True, False))
    if kind.type == "enum":
        return p.choice(kind.values)
    return p.some(kind.values, 3)


def draw_facts(p: Picker, shape: Shape) -> dict[str, Any]:
    """One consistent facts mapping (as a caller would send it: optional fields sometimes absent)."""
    status = p.choice(FACT_KINDS["disease_status"].values)
    data: dict[str, Any] = {"disease_status": status}
    fields = FIELD_NAMES if shape.v2 else V1_FIELDS
    for name in fields:
        if name not in _BUILT:
            data[name] = _field(p, shape, name)
    if status != "newly_diagnosed":
        # Counts that fit the status: a relapse follows a remission; in remission, one more remission.
        relapses = int(_numeric(p, shape, "relapse_count") or 0)
        relapses = max(relapses, 1) if status == "relapsed" else relapses
        data["relapse_count"] = relapses
        data["remission_count"] = relapses + p.integer(1 if status == "in_remission" else 0, 2)
        data["completed_phases"] = list(PHASE_ORDER[: p.integer(0, len(PHASE_ORDER))])
    if shape.v2:
        # Findings that fit: BCR::ABL1 is the Ph chromosome's fusion, excludes the Ph-like and
        # ABL-class subtypes, and T315I is a mutation within it. Drawing and rejecting would
        # almost never give T315I.
        subtypes = set(p.some(GENETIC_SUBTYPES, 3))
        if "abl1-t315i" in subtypes:
            subtypes.add("bcr-abl1")  # rather than drop the mutation, so that it is common enough to test
        if data["ph_status"] == "negative":
            subtypes.discard("bcr-abl1")
        if "bcr-abl1" in subtypes:
            subtypes -= {"ph-like", "abl-class"}
        else:
            subtypes.discard("abl1-t315i")
        data["genetic_subtypes"] = sorted(subtypes)
    # The counts stay: left out, a count is 0, which the status may forbid.
    optional = [
        n
        for n in data
        if not PatientFacts.model_fields[n].is_required() and n not in ("remission_count", "relapse_count")
    ]
    for name, kept in zip(optional, p.flags(len(optional), shape.keep), strict=True):
        if not kept:
            del data[name]  # left out: must mean the same as its default
    return _settle(data)


def _settle(data: dict[str, Any]) -> dict[str, Any]:
    """Leave out each field `PatientFacts.parse` names in a contradiction, until it accepts the facts."""
    for _ in range(len(FIELD_NAMES)):
        try:
            PatientFacts.parse(data)
        except FactsError as exc:
            named = {problem.field for problem in exc.problems}
            stuck = named - (data.keys() - _BUILT)
            assert not stuck, f"the generator built contradicting {sorted(stuck)}: {exc.problems} in {data}"
            for name in named:
                del data[name]
        else:
            return data
    raise AssertionError(f"facts never settled: {data}")  # pragma: no cover - each round removes a field


# --- hypothesis ------------------------------------------------------------------------------


@st.composite
def valid_facts_dicts(draw: st.DrawFn, shape: Shape | None = None) -> dict[str, Any]:
    return draw_facts(DrawPicker(draw), shape or default_shape())


valid_facts = valid_facts_dicts().map(PatientFacts.parse)


def collect_patients(count: int, seed: int = 0, shape: Shape | None = None) -> list[PatientFacts]:
    """`count` facts drawn by hypothesis (its shrinking-free generate phase), for batch tests."""
    found: list[PatientFacts] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(valid_facts_dicts(shape))
    def collect(data: dict[str, Any]) -> None:
        found.append(PatientFacts.parse(data))

    collect()
    return found


# --- seeded streams --------------------------------------------------------------------------


def fact_dicts_stream(count: int, seed: int, shape: Shape, grid: int | None = 40) -> Iterator[dict[str, Any]]:
    picker = RandomPicker(seed, grid)
    for _ in range(count):
        yield draw_facts(picker, shape)


def facts_stream(count: int, seed: int = 20261126, shape: Shape | None = None) -> Iterator[PatientFacts]:
    """`count` facts from a seeded stream, crowding `shape`'s edges (default: every pack set's)."""
    for data in fact_dicts_stream(count, seed, shape or default_shape()):
        yield PatientFacts.parse(data)


# --- not generators of consistent facts, kept beside them --------------------------------------

# A child at diagnosis with every fact a rule reads known: no unknown fact would change the plan.
NOTHING_MISSING: dict[str, Any] = {
    "age_years": 8,
    "disease_status": "newly_diagnosed",
    "lineage": "B",
    "ph_status": "negative",
    "cns_involvement": False,
    "mrd_status": "negative",
    "expected_survival_months": 100,
    "phase_in_progress": "none",
    "fit_for_intensive_therapy": True,
    "pregnant": False,
    "down_syndrome": False,
}

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 200), st.floats(allow_nan=False), st.text(max_size=12)
)


@st.composite
def invalid_facts_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """Start from valid facts and break them in one of the ways a caller can."""
    data = draw(valid_facts_dicts())
    how = draw(st.sampled_from(["drop_required", "unknown_field", "bad_value", "contradiction"]))
    if how == "drop_required":
        del data[draw(st.sampled_from(["age_years", "disease_status"]))]
    elif how == "unknown_field":
        data[draw(st.sampled_from(["agee_years", "name", "stage", "ph"]))] = draw(JSON_SCALARS)
    elif how == "bad_value":
        field, value = draw(
            st.sampled_from(
                [
                    ("age_years", -1),
                    ("age_years", 121),
                    ("age_years", "ten"),
                    ("lineage", "X"),
                    ("ph_status", "pos"),
                    ("disease_status", "cured"),
                    ("completed_phases", ["induction", "transplant"]),
                    ("remission_count", -1),
                    ("remission_count", 1.5),
                    ("cns_involvement", "yes"),
                    ("remission_duration_months", -3),
                    ("expected_survival_months", "soon"),
                ]
            )
        )
        data[field] = value
    else:
        data.update(disease_status="relapsed", relapse_count=0, remission_count=0, completed_phases=[])
    return data
