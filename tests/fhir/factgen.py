"""A seeded generator of valid PatientFacts that crowds the knowledge base's own boundaries.

Shared by the FHIRPath differential test and the benchmark. Numeric facts are drawn mostly
from the values the KB compares them with, and the values just either side, so every
`<` / `<=` / `>=` edge is hit many times; the rest are spread over the whole range.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from allpath.facts import FACT_KINDS, PHASE_ORDER, FactsError, PatientFacts
from allpath.knowledge import KnowledgeBase
from allpath.rules.tree import leaves


def boundaries(kb: KnowledgeBase) -> dict[str, list[float]]:
    """For each numeric fact, the KB's comparison values and their neighbours."""
    found: dict[str, set[float]] = {}
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


def generate_facts(kb: KnowledgeBase, count: int, seed: int = 20261126) -> Iterator[PatientFacts]:
    rng = random.Random(seed)
    edges = boundaries(kb)

    def number(fact: str, high: float, nullable: bool) -> float | None:
        if nullable and rng.random() < 0.2:
            return None
        if fact in edges and rng.random() < 0.6:
            return float(rng.choice(edges[fact]))
        # A coarse grid (40 steps over the range) keeps the number of distinct values small, so the
        # differential test can memoise the slow FHIRPath engine without losing coverage.
        return rng.randint(0, 40) * high / 40

    def integer(fact: str, high: int) -> int:
        if fact in edges and rng.random() < 0.5:
            return int(rng.choice(edges[fact]))
        return rng.randint(0, high)

    made = 0
    while made < count:
        status = rng.choice(("newly_diagnosed", "in_remission", "refractory", "relapsed"))
        data: dict[str, Any] = {
            "age_years": number("age_years", 100, nullable=False),
            "lineage": rng.choice(("B", "T", "unknown")),
            "ph_status": rng.choice(("positive", "negative", "unknown")),
            "cns_involvement": rng.choice((True, False, None)),
            "disease_status": status,
            "mrd_status": rng.choice(("positive", "negative", "unknown")),
            "remission_duration_months": number("remission_duration_months", 120, nullable=True),
            "expected_survival_months": number("expected_survival_months", 60, nullable=True),
        }
        if status == "newly_diagnosed":
            prior = rng.choice((0, None))
            data.update(remission_count=0, relapse_count=0, prior_regimen_count=prior, completed_phases=[])
        else:
            relapses = integer("relapse_count", 4)
            if status == "relapsed":
                relapses = max(relapses, 1)
            remissions = relapses + (1 if status == "in_remission" else rng.randint(0, 1))
            data.update(
                relapse_count=relapses,
                remission_count=remissions,
                prior_regimen_count=None if rng.random() < 0.1 else max(integer("prior_regimen_count", 5), 1),
                completed_phases=list(PHASE_ORDER[: rng.randint(0, 3)]),
            )
        data.update(_v2(rng, data, number))
        try:
            facts = PatientFacts.parse(data)
        except FactsError:
            continue
        made += 1
        yield facts


def _v2(rng: random.Random, data: dict[str, Any], number: Any) -> dict[str, Any]:
    """The v2 fields, each varied and sometimes left out, never contradicting the v1 `data`."""

    def pick(field: str) -> Any:
        return rng.choice(FACT_KINDS[field].values)

    def some(field: str) -> list[str]:
        return rng.sample(FACT_KINDS[field].values, rng.choice((0, 0, 1, 1, 2, 3)))

    done = set(data["completed_phases"])
    v2: dict[str, Any] = {
        "phase_in_progress": rng.choice([p for p in FACT_KINDS["phase_in_progress"].values if p not in done]),
        "mrd_timepoint": pick("mrd_timepoint"),
        "cd19_status": pick("cd19_status"),
        "cd20_status": pick("cd20_status"),
        "cd22_status": pick("cd22_status"),
        "prior_therapies": some("prior_therapies"),
        "fit_for_intensive_therapy": rng.choice((True, False, None)),
        "pregnant": rng.choice((True, False, None)),
        "down_syndrome": rng.choice((True, False, None)),
    }
    subtypes = set(some("genetic_subtypes"))
    if data["ph_status"] == "negative":
        subtypes.discard("bcr-abl1")
    if "bcr-abl1" in subtypes:
        subtypes -= {"ph-like", "abl-class"}
    else:
        subtypes.discard("abl1-t315i")
    v2["genetic_subtypes"] = sorted(subtypes)
    if data["relapse_count"] >= 1:
        v2["relapse_site"] = pick("relapse_site")
        to_relapse = number("months_from_diagnosis_to_relapse", 120, nullable=True)
        remission = data["remission_duration_months"]
        if to_relapse is not None and remission is not None and remission > to_relapse:
            to_relapse = remission
        v2["months_from_diagnosis_to_relapse"] = to_relapse
        v2["relapse_during_therapy"] = during = rng.choice((True, False, None))
        v2["months_from_therapy_end_to_relapse"] = (
            None if during else number("months_from_therapy_end_to_relapse", 60, nullable=True)
        )
    # A field left out takes its default: the Parameters must then carry that default (or nothing).
    return {k: v for k, v in v2.items() if rng.random() < 0.85}
