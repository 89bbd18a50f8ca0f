"""allpath's compiled engine against fhirpathpy evaluating the exported PlanDefinition, on the same patients.

Both decide, for each patient, which rules fire (and which variant): the engine with
`Engine.fired`, fhirpathpy by evaluating every action condition of the exported
PlanDefinition (compiled once) on the patient's facts Parameters resource. The answers are
compared, then timed. Also times the FHIR import of the example Bundles (validation included).
Run: make bench-fhirpath (writes nothing; paste the output into docs/benchmarks-fhir.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `benchmarks.machine` and `tests.factsgen` when run as a script

from tests.factsgen import facts_stream, shape_for  # noqa: E402

from allpath.engine import default_engine  # noqa: E402
from allpath.fhir import facts_from_bundle  # noqa: E402
from allpath.fhir.export import plan_definition  # noqa: E402
from allpath.rules.fhirpath import facts_to_parameters  # noqa: E402
from benchmarks.machine import machine_line  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--engine-repeats", type=int, default=200)
    args = parser.parse_args()

    from fhirpathpy import compile as compile_fhirpath
    from fhirpathpy.models import models

    engine = default_engine()
    pd = plan_definition(engine.kb)
    compiled = []
    for action in pd["action"]:
        main_fn = compile_fhirpath(action["condition"][0]["expression"]["expression"], models["r4"])
        variants = [
            compile_fhirpath(s["condition"][0]["expression"]["expression"], models["r4"])
            for s in action.get("action", [])
            if "condition" in s
        ]
        compiled.append((action["id"], main_fn, variants))
    patients = list(facts_stream(args.patients, seed=99, shape=shape_for(engine.kb)))
    parameters = [facts_to_parameters(f) for f in patients]

    def by_fhirpath(params: dict) -> dict[str, int]:
        fired: dict[str, int] = {}
        for rule_id, fn, variants in compiled:
            if fn(params) == [True]:
                fired[rule_id] = next((k for k, v in enumerate(variants, start=1) if v(params) == [True]), 0)
        return fired

    # Same answers first; a benchmark of two engines that disagree would mean nothing.
    for facts, params in zip(patients, parameters, strict=True):
        assert by_fhirpath(params) == engine.fired(facts), facts

    start = time.perf_counter()
    for params in parameters:
        by_fhirpath(params)
    fhirpath_s = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(args.engine_repeats):
        for facts in patients:
            engine.fired(facts)
    engine_s = (time.perf_counter() - start) / args.engine_repeats

    start = time.perf_counter()
    for _ in range(args.engine_repeats):
        for facts in patients:
            engine.recommend(facts)
    recommend_s = (time.perf_counter() - start) / args.engine_repeats

    n = len(patients)
    print(f"machine: {machine_line()}")
    print(f"patients: {n} generated (seed 99); conditions: {len(compiled)} actions + variants; answers identical")
    print(f"fhirpathpy (PlanDefinition conditions): {fhirpath_s / n * 1e3:.2f} ms per patient")
    print(f"allpath engine.fired:                 {engine_s / n * 1e6:.2f} us per patient")
    print(f"allpath engine.recommend (full Plan): {recommend_s / n * 1e6:.2f} us per patient")
    print(f"ratio fhirpathpy / engine.fired: {fhirpath_s / engine_s:,.0f}x (one run)")

    timings = []
    for path in sorted((ROOT / "examples" / "fhir").glob("*.bundle.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            facts_from_bundle(bundle)
            runs.append(time.perf_counter() - start)
        timings.append((path.name, len(bundle["entry"]), statistics.median(runs)))
    for name, entries, seconds in timings:
        print(f"import {name}: {entries} resources, median {seconds * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
