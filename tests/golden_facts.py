"""Deterministic PatientFacts for the golden and pack-difference tests.

The generator is only used to (re)build a snapshot; the snapshot stores the facts themselves,
so changing this file never silently changes what a committed snapshot checks.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from allpath.facts import FactsError, PatientFacts
from allpath.plan import Plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden" / "base-pack-plans.json"

# Ages on and either side of every age limit in the base pack and in the FDA labels the
# updates pack encodes (1 month, 1, 18, 21/22, 25/26 years), plus ordinary ages.
BOUNDARY_AGES = (
    0.0,
    0.05,
    1 / 12,
    0.5,
    0.99,
    1.0,
    1.5,
    5.0,
    12.0,
    17.9,
    18.0,
    20.0,
    21.0,
    21.5,
    21.99,
    22.0,
    25.0,
    25.5,
    25.99,
    26.0,
    30.0,
    45.0,
    61.0,
    80.0,
)


def example_facts() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        try:
            PatientFacts.parse(data)
        except FactsError:
            continue
        out[path.stem] = data
    return out


def generate_facts(count: int = 400, seed: int = 20261126) -> list[dict[str, Any]]:
    """Valid, varied facts: every disease status, lineage, Ph and MRD status, history and age limit."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(out) < count:
        status = rng.choice(["newly_diagnosed", "in_remission", "refractory", "relapsed"])
        age = rng.choice(BOUNDARY_AGES) if rng.random() < 0.7 else round(rng.uniform(0, 90), 2)
        data: dict[str, Any] = {
            "age_years": float(age),
            "lineage": rng.choice(["B", "T", "unknown"]),
            "ph_status": rng.choice(["positive", "negative", "unknown"]),
            "disease_status": status,
            "mrd_status": rng.choice(["positive", "negative", "unknown"]),
        }
        cns = rng.choice([True, False, None])
        if cns is not None:
            data["cns_involvement"] = cns
        if status != "newly_diagnosed":
            relapses = rng.choice([0, 0, 1, 1, 2, 3])
            remissions = relapses + (1 if status == "in_remission" else rng.choice([0, 0, 1]))
            if status == "relapsed":
                relapses = max(relapses, 1)
                remissions = max(remissions, relapses)
            data["relapse_count"] = relapses
            data["remission_count"] = remissions
            data["prior_regimen_count"] = rng.choice([1, 1, 2, 3, 4])
            data["completed_phases"] = ["induction", "consolidation", "maintenance"][: rng.choice([0, 1, 1, 2, 3])]
            if status == "relapsed" and rng.random() < 0.8:
                data["remission_duration_months"] = rng.choice([3.0, 12.0, 17.9, 18.0, 30.0])
            if rng.random() < 0.15:
                data["expected_survival_months"] = rng.choice([2.0, 5.9, 6.0, 12.0])
        try:
            PatientFacts.parse(data)
        except FactsError:
            continue
        key = json.dumps(data, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(data)
    return out


def plan_json(plan: Plan) -> Any:
    return plan.model_dump(mode="json")


def digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
