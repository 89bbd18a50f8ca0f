"""Engine throughput: 100,000 generated valid patients (v2 facts), full Plan objects built.

Reports patients/s and per-call p50/p99 in microseconds, on one core (this process), for
  - recommend(): facts already validated, full Plans with `missing_facts` (target >= 20,000/s),
  - recommend(with_missing_facts=False): the same without the what-would-change search
    (target >= 50,000/s), and
  - parse + recommend(): from a plain dict, as an adapter would call it.
Run with `make bench`. Not a test: the numbers depend on the machine, which is printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from allpath.engine import Engine
from allpath.facts import GENETIC_SUBTYPES, PHASE_ORDER, PRIOR_THERAPIES, PatientFacts
from allpath.knowledge import load_kb
from benchmarks.machine import machine_line

TARGET_WITH_MISSING = 20_000
TARGET_WITHOUT_MISSING = 50_000


def generate_patients(count: int, seed: int) -> list[dict[str, Any]]:
    """Valid PatientFacts dicts spread over every disease status and the rule boundaries."""
    rng = random.Random(seed)
    patients = []
    for _ in range(count):
        status = rng.choice(["newly_diagnosed", "in_remission", "refractory", "relapsed"])
        data: dict[str, Any] = {
            "age_years": rng.choice([rng.uniform(0, 25), rng.uniform(0, 90), 1, 21, 22, 18]),
            "lineage": rng.choice(["B", "T", "unknown"]),
            "ph_status": rng.choice(["positive", "negative", "unknown"]),
            "cns_involvement": rng.choice([True, False, None]),
            "disease_status": status,
            "mrd_status": rng.choice(["positive", "negative", "unknown"]),
            "expected_survival_months": rng.choice([None, None, rng.uniform(0, 24)]),
        }
        if status != "newly_diagnosed":
            relapses = rng.randint(1 if status == "relapsed" else 0, 3)
            remissions = relapses + rng.randint(1 if status == "in_remission" else 0, 1)
            data.update(
                remission_count=remissions,
                relapse_count=relapses,
                completed_phases=list(PHASE_ORDER[: rng.randint(0, 3)]),
                prior_regimen_count=rng.randint(0, 4),
                remission_duration_months=rng.choice([None, rng.uniform(0, 60)]),
            )
        # v2 facts, each left unknown about half the time (the search for missing facts costs
        # most when much is unknown).
        done = set(data.get("completed_phases", []))
        maybe = {
            "phase_in_progress": rng.choice([p for p in ("none", *PHASE_ORDER, "unknown") if p not in done]),
            "mrd_timepoint": rng.choice(["end_of_induction", "end_of_consolidation", "later", "unknown"]),
            "cd19_status": rng.choice(["positive", "negative", "unknown"]),
            "cd20_status": rng.choice(["positive", "negative", "unknown"]),
            "cd22_status": rng.choice(["positive", "negative", "unknown"]),
            "fit_for_intensive_therapy": rng.choice([True, False, None]),
            "pregnant": rng.choice([False, None]),
            "down_syndrome": rng.choice([True, False, None]),
            "prior_therapies": rng.sample(PRIOR_THERAPIES, rng.randint(0, 2)),
        }
        subtypes = set(rng.sample([g for g in GENETIC_SUBTYPES if g != "abl1-t315i"], rng.randint(0, 2)))
        if data["ph_status"] == "negative" or subtypes & {"ph-like", "abl-class"}:
            subtypes.discard("bcr-abl1")
        if "bcr-abl1" in subtypes and rng.random() < 0.3:
            subtypes.add("abl1-t315i")
        maybe["genetic_subtypes"] = sorted(subtypes)
        if data.get("relapse_count", 0) >= 1:
            to_relapse = rng.choice([None, rng.uniform(0, 72)])
            if to_relapse is not None and (data["remission_duration_months"] or 0) > to_relapse:
                data["remission_duration_months"] = to_relapse
            during = rng.choice([True, False, None])
            maybe.update(
                relapse_site=rng.choice(["marrow", "cns", "testicular", "combined", "other_extramedullary", "unknown"]),
                months_from_diagnosis_to_relapse=to_relapse,
                relapse_during_therapy=during,
                months_from_therapy_end_to_relapse=None if during else rng.choice([None, rng.uniform(0, 48)]),
            )
        data.update({k: v for k, v in maybe.items() if rng.random() < 0.5})
        patients.append(data)
    return patients


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def measure(label: str, call: Any, inputs: list[Any]) -> dict[str, Any]:
    """Two passes: a tight loop for throughput (wall and CPU time), then per-call latencies.

    CPU time (time.process_time) is reported beside wall time because on a shared machine
    other processes take the core away; CPU time is what one core actually spent.
    """
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for item in inputs:
        call(item)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    timings: list[int] = []
    perf = time.perf_counter_ns
    for item in inputs:
        t0 = perf()
        call(item)
        timings.append(perf() - t0)
    timings.sort()
    result = {
        "label": label,
        "patients": len(inputs),
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "patients_per_second_wall": round(len(inputs) / wall),
        "patients_per_second_cpu": round(len(inputs) / cpu),
        "p50_us": round(percentile(timings, 0.50) / 1000, 2),
        "p99_us": round(percentile(timings, 0.99) / 1000, 2),
        "mean_us": round(statistics.fmean(timings) / 1000, 2),
    }
    print(
        f"{label:<28} {result['patients_per_second_wall']:>9,}/s wall  {result['patients_per_second_cpu']:>9,}/s cpu"
        f"   p50 {result['p50_us']:>6} us   p99 {result['p99_us']:>6} us"
    )
    return result


def percentile_note() -> str:
    return "p50/p99: per-call latency over all patients, perf_counter_ns around each call"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--packs", default=None, help="comma-separated packs (default: the default packs)")
    parser.add_argument("--json", type=Path, default=Path("bench-results/engine.json"))
    args = parser.parse_args()

    kb = load_kb(args.packs.split(",") if args.packs else None)
    engine = Engine(kb)
    raw = generate_patients(args.patients, args.seed)
    facts = [PatientFacts.parse(d) for d in raw]
    print(f"machine: {machine_line()}")
    print(f"knowledge: {kb.version}; {len(kb.rules)} rules; {args.patients:,} patients, seed {args.seed}")
    engine.recommend(facts[0])  # warm caches
    unknown = sum(len(engine.missing_facts(f)) for f in facts[:10_000]) / min(len(facts), 10_000)
    print(f"missing facts per plan (first 10,000 patients): {unknown:.2f} on average")

    def without_missing(f: PatientFacts) -> Any:
        return engine.recommend(f, with_missing_facts=False)

    results = [
        measure("recommend + missing_facts", engine.recommend, facts),
        measure("recommend, no missing_facts", without_missing, facts),
        measure("parse + recommend (dicts)", engine.recommend_data, raw),
    ]
    print(percentile_note())
    load1, _, _ = os.getloadavg()
    print(f"load average during the run: {load1:.2f} on {os.cpu_count()} cores")
    met = True
    for result, target in ((results[0], TARGET_WITH_MISSING), (results[1], TARGET_WITHOUT_MISSING)):
        ok_cpu = result["patients_per_second_cpu"] >= target
        ok_wall = result["patients_per_second_wall"] >= target
        met = met and ok_cpu
        print(
            f"{result['label']}: target >= {target:,} patients/s, full Plans, one core: "
            f"wall {'met' if ok_wall else 'NOT met'}, cpu {'met' if ok_cpu else 'NOT met'}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine_line(), "knowledge": kb.version, "results": results}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
