"""Plans per second with the base pack alone and with the default packs (base + updates-2026).

Amendments are applied when the knowledge base loads, so the updates pack should cost only its
extra rules' conditions per plan. Run: `make bench-packs` (prints one line per pack set).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from allpath.engine import Engine
from allpath.facts import FactsError, PatientFacts
from allpath.knowledge import load_kb

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_facts() -> list[PatientFacts]:
    out = []
    for path in sorted(EXAMPLES.glob("*.json")):
        try:
            out.append(PatientFacts.parse(json.loads(path.read_text(encoding="utf-8"))))
        except FactsError:
            continue
    return out


def plans_per_second(engine: Engine, facts: list[PatientFacts], seconds: float = 2.0) -> float:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for f in facts:
            engine.recommend(f)
        done += len(facts)
    return done / (time.perf_counter() - start)


def main() -> None:
    facts = example_facts()
    print(f"python {platform.python_version()}, {len(facts)} example facts, best of 3 runs of 2 s")
    for packs in (["base"], ["base", "updates-2026"]):
        engine = Engine(load_kb(packs))
        best = max(plans_per_second(engine, facts) for _ in range(3))
        print(f"{'+'.join(packs):<20} {len(engine.kb.rules):>3} rules  {best:>10,.0f} plans/s")


if __name__ == "__main__":
    main()
