"""The golden snapshot's file, the example facts, and how plans are compared with it.

The generated facts of the snapshot came from a generator (now `tests.factsgen`) that is only
used to (re)build it; the snapshot stores the facts themselves, so changing the generator never
silently changes what a committed snapshot checks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from allpath.facts import FactsError, PatientFacts
from allpath.plan import Plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden" / "base-pack-plans.json"


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


def plan_json(plan: Plan) -> Any:
    return plan.model_dump(mode="json")


def digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
