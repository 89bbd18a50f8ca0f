"""Cohort benchmark: read, evaluate and write N synthetic patients, end to end.

    python benchmarks/bench_cohort.py [--patients 1000000] [--big 10000000] [--no-spark] [--no-big]

Compares, on the same Parquet facts table and in the same run: DuckDB (allpath cohort evaluate),
the Python engine looped over the same patients (PatientFacts.parse + Engine.recommend per row,
results written to Parquet too), and Spark in local mode. Then a DuckDB run over `--big`
patients in a child process, whose peak resident memory is reported (getrusage of the child).
Targets: DuckDB >= 20x the Python loop, <= 10 s for 1,000,000 patients, < 4 GB peak for 10,000,000.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `benchmarks.machine` when run as a script

from benchmarks.machine import describe_machine  # noqa: E402


def machine() -> dict[str, Any]:
    return {**describe_machine(), "load_average_at_start": os.getloadavg()}


def python_loop(facts: Path, out: Path) -> float:
    """The single-patient engine over every row: validate, recommend, collect ids, write Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from allpath.engine import default_engine
    from allpath.facts import FIELD_NAMES, PatientFacts

    engine = default_engine()
    started = time.perf_counter()
    seen: set[str] = set()  # the same duplicate-id check the cohort engines make
    ids: list[str] = []
    recs: list[list[str]] = []
    nots: list[list[str]] = []
    alerts: list[list[str]] = []
    for batch in pq.ParquetFile(facts).iter_batches(batch_size=100_000):
        for row in batch.to_pylist():
            if row["patient_id"] in seen:
                continue
            seen.add(row["patient_id"])
            plan = engine.recommend(
                PatientFacts.parse({k: v for k, v in row.items() if k in FIELD_NAMES and v is not None})
            )
            ids.append(row["patient_id"])
            recs.append([r.id for r in plan.recommendations])
            nots.append([n.id for n in plan.not_recommended])
            alerts.append([a.id for a in plan.alerts])
    table = pa.table({"patient_id": ids, "recommendations": recs, "not_recommended": nots, "alerts": alerts})
    pq.write_table(table, out, compression="zstd")
    return time.perf_counter() - started


CHILD = """
import json, resource, sys, time
from allpath.cohort.evaluate import evaluate_duckdb
from allpath.knowledge import load_kb
kb = load_kb()
started = time.perf_counter()
summary = evaluate_duckdb(sys.argv[1], sys.argv[2], kb)
seconds = time.perf_counter() - started
# VmHWM is this process's own high-water mark; ru_maxrss would carry the parent's over fork/exec.
peak_kib = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "rows": summary.rows, "evaluated": summary.evaluated, "peak_rss_kib": peak_kib}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "cohort.json")
    args = parser.parse_args()

    from allpath.cohort.evaluate import evaluate_duckdb, evaluate_spark, spark_session
    from allpath.cohort.synth import synthesize
    from allpath.knowledge import load_kb

    kb = load_kb()
    report: dict[str, Any] = {"machine": machine(), "patients": args.patients}
    with tempfile.TemporaryDirectory(prefix="allpath-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        cohort = synthesize(args.patients, 1, work / "cohort", kb, treatments=False)
        report["synth_seconds"] = time.perf_counter() - started
        print(f"synth {args.patients:,}: {report['synth_seconds']:.1f} s", flush=True)

        # One-time set-up is outside both timings: DuckDB's import here, the engine's build in python_loop.
        import duckdb  # noqa: F401

        started = time.perf_counter()
        summary = evaluate_duckdb(cohort.facts, work / "duckdb.parquet", kb)
        report["duckdb_seconds"] = time.perf_counter() - started
        assert summary.evaluated == args.patients
        print(f"duckdb end to end: {report['duckdb_seconds']:.2f} s", flush=True)

        report["python_seconds"] = python_loop(cohort.facts, work / "python.parquet")
        report["speedup"] = report["python_seconds"] / report["duckdb_seconds"]
        print(f"python loop: {report['python_seconds']:.1f} s ({report['speedup']:.0f}x)", flush=True)

        if not args.no_spark:
            started = time.perf_counter()
            spark = spark_session()
            spark.sparkContext.setLogLevel("ERROR")
            report["spark_session_seconds"] = time.perf_counter() - started
            started = time.perf_counter()
            evaluate_spark(cohort.facts, work / "spark", kb, spark=spark)
            report["spark_seconds"] = time.perf_counter() - started
            spark.stop()
            print(
                f"spark local[2]: {report['spark_seconds']:.1f} s (+{report['spark_session_seconds']:.1f} s start-up)",
                flush=True,
            )

        if not args.no_big:
            started = time.perf_counter()
            big = synthesize(args.big, 2, work / "big", kb, treatments=False)
            report["big_synth_seconds"] = time.perf_counter() - started
            print(f"synth {args.big:,}: {report['big_synth_seconds']:.1f} s", flush=True)
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(big.facts), str(work / "big-results.parquet")],
                capture_output=True,
                text=True,
                check=True,
            )
            big_run = json.loads(child.stdout.strip().splitlines()[-1])
            report["big"] = {"patients": args.big, **big_run, "peak_rss_gib": big_run["peak_rss_kib"] / 2**20}
            print(
                f"duckdb {args.big:,}: {big_run['seconds']:.1f} s, peak RSS {report['big']['peak_rss_gib']:.2f} GiB",
                flush=True,
            )
    report["self_peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
