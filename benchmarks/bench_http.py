"""HTTP benchmark: a bounded, open-loop load on POST /recommend and GET /patients/{id}/plan.

Starts `allpath serve` on a free loopback port over a fresh SQLite database seeded with the
demo patients, then sends requests at a fixed rate (default 200 requests/s for 20 s, half to
each endpoint) and reports requests/s, p50/p95/p99/max latency and errors. Latency is measured
from the moment each request was *due*, so a server that falls behind is charged for the
queueing (no coordinated omission). Target: p99 <= 25 ms at 200 requests/s, zero errors.

    python benchmarks/bench_http.py [--rate 200] [--seconds 20] [--json bench-results/http.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `benchmarks.machine` when run as a script

from allpath.testing import running_server  # noqa: E402
from benchmarks.machine import cpu_seconds, machine_line, percentile  # noqa: E402

MAX_SECONDS = 120
MAX_RATE = 1000
WORKERS = 32
GRACE = 30.0
WARM_UP = 50  # pairs of requests before the clock starts


def summarise(name: str, latencies: list[float], errors: int, wall: float) -> dict[str, float | int | str]:
    ms = [x * 1000 for x in latencies]
    return {
        "endpoint": name,
        "requests": len(latencies) + errors,
        "errors": errors,
        "rps": round((len(latencies) + errors) / wall, 1),
        "p50_ms": round(percentile(ms, 50), 2) if ms else float("nan"),
        "p95_ms": round(percentile(ms, 95), 2) if ms else float("nan"),
        "p99_ms": round(percentile(ms, 99), 2) if ms else float("nan"),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


async def load(base: str, token: str, patients: list[str], facts: list[dict], rate: float, seconds: float) -> dict:
    """Open loop with a bounded client: WORKERS tasks take the next due slot, wait for it, send.

    Latency counts from the slot's due time, so when the server falls behind, the waiting is
    charged to it. Slots still unsent GRACE seconds after the run's end count as errors.
    """
    total = int(rate * seconds)
    results: dict[str, list[float]] = {"POST /recommend": [], "GET /patients/{id}/plan": []}
    errors: dict[str, int] = dict.fromkeys(results, 0)
    error_samples: list[str] = []
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) as client:
        # Warm-up: connections, the engine's first call, SQLite's page cache.
        for i in range(WARM_UP):
            await client.post("/recommend", json=facts[i % len(facts)])
            await client.get(f"/patients/{patients[i % len(patients)]}/plan")

        start = time.perf_counter() + 0.5
        give_up = start + seconds + GRACE
        next_slot = 0

        async def worker() -> None:
            nonlocal next_slot
            while next_slot < total:
                i = next_slot
                next_slot += 1
                due = start + i / rate
                name = "POST /recommend" if i % 2 == 0 else "GET /patients/{id}/plan"
                if time.perf_counter() > give_up:
                    errors[name] += 1
                    continue
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                try:
                    if i % 2 == 0:
                        response = await client.post("/recommend", json=facts[i % len(facts)])
                    else:
                        response = await client.get(f"/patients/{patients[i % len(patients)]}/plan")
                    ok, detail = response.status_code == 200, f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, repr(exc)
                if ok:
                    results[name].append(time.perf_counter() - due)
                else:
                    errors[name] += 1
                    if len(error_samples) < 5:
                        error_samples.append(detail)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        wall = time.perf_counter() - start
    rows = [summarise(name, results[name], errors[name], wall) for name in results]
    rows.append(summarise("both", [x for v in results.values() for x in v], sum(errors.values()), wall))
    return {"rows": rows, "wall_seconds": round(wall, 2), "error_samples": error_samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (both endpoints together)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the measured run")
    parser.add_argument("--json", type=Path, default=ROOT / "bench-results" / "http.json")
    args = parser.parse_args()
    if not 0 < args.rate <= MAX_RATE or not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--rate must be in (0, {MAX_RATE}] and --seconds in (0, {MAX_SECONDS}]: the load stays bounded")

    facts = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    workdir = Path(tempfile.mkdtemp(prefix="allpath-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    env = {**os.environ, "ALLPATH_DATABASE_URL": url, "ALLPATH_SECRET_KEY": "bench-only-key"}
    allpath = [sys.executable, "-m", "allpath.cli"]
    subprocess.run([*allpath, "db", "seed-demo"], check=True, env=env, stdout=subprocess.DEVNULL)
    with running_server(["--log-level", "warning"], env=env, log_path=workdir / "server.log") as server:
        base = server.base_url
        login = {"username": "demo-clinician", "password": "demo-clinician-password"}
        token = httpx.post(f"{base}/auth/token", data=login).json()["access_token"]
        patients = [p["id"] for p in httpx.get(f"{base}/patients", headers={"Authorization": f"Bearer {token}"}).json()]
        cpu_before = cpu_seconds(server.process.pid)
        result = asyncio.run(load(base, token, patients, facts, args.rate, args.seconds))
        # Includes the 100 warm-up requests, which is why it is divided by every request sent.
        cpu_used = cpu_seconds(server.process.pid) - cpu_before
    sent = result["rows"][-1]["requests"] + 2 * WARM_UP
    result["server_cpu_ms_per_request"] = round(cpu_used * 1000 / sent, 2)

    result.update(
        {
            "rate": args.rate,
            "seconds": args.seconds,
            "machine": machine_line(),
            "database": "SQLite (WAL, synchronous=FULL)",
        }
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"machine: {result['machine']}")
    print(f"offered load: {args.rate:g} requests/s for {args.seconds:g} s, {result['database']}")
    print("| endpoint | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in result["rows"]:
        print(
            f"| {r['endpoint']} | {r['requests']} | {r['errors']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['p99_ms']} | {r['max_ms']} |"
        )
    print(f"server CPU time per request: {result['server_cpu_ms_per_request']} ms (one uvicorn worker)")
    for sample in result["error_samples"]:
        print("error:", sample)
    both = result["rows"][-1]
    met = both["errors"] == 0 and both["p99_ms"] <= 25
    print(f"target p99 <= 25 ms with zero errors: {'MET' if met else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
