"""Server CPU per request of allpath's endpoints, as multiples of a minimal FastAPI endpoint (`make bench-floor`).

Starts two servers under the same uvicorn settings, one worker each: the floor
(`benchmarks/floor_app.py`, one JSON route) and `allpath serve` over a fresh SQLite database seeded
with the demo, with CDS Hooks on (JWT authentication, a key of its own). Then, in each of
`--rounds` rounds, it sends each endpoint a run of sequential requests on one keep-alive connection
interleaved with as many requests to the floor (one each in turn), and reads both servers' CPU
time (every thread of the process, `/proc/<pid>/task/*/schedstat`) before and after the run. So
each ratio compares two figures taken over the same seconds, under the same load; the table gives
each figure's median over the rounds.

The floor is a `def` endpoint, which FastAPI runs in its thread pool like allpath's routes: the
issue's measured floor (0.34 to 0.40 ms) is that kind, and it is about twice an `async def` one
(also measured, and shown), the difference being the thread-pool hop.

Targets (issue 16): every authenticated REST read and CDS patient-view at most 4x the floor,
`POST /recommend` at most 2x, in the same run.

    python benchmarks/bench_floor.py [--rounds 3] [--scale 1.0] [--json bench-results/floor.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `benchmarks.*` when run as a script

from allpath.testing import free_port, running_server  # noqa: E402
from benchmarks.bench_cds import ISSUER, prefetch  # noqa: E402
from benchmarks.machine import cpu_ns_between, machine_line, thread_cpu_ns  # noqa: E402

CDS_PATH = "/cds-services/allpath-patient-view"
WARM_UP = 20


@dataclass(frozen=True)
class Endpoint:
    name: str
    requests: int  # per round, before --scale
    limit: float | None  # the target, as a multiple of the floor; None: reported only
    group: str


FLOOR = "GET /floor-sync (minimal FastAPI, def)"
ENDPOINTS = (
    Endpoint(FLOOR, 400, None, "floor"),
    Endpoint("GET /floor (minimal FastAPI, async def)", 400, None, "other"),
    Endpoint("GET /healthz", 600, None, "other"),
    Endpoint("POST /recommend", 400, 2.0, "recommend"),
    Endpoint("GET /patients", 300, 4.0, "rest"),
    Endpoint("GET /patients/{id}", 300, 4.0, "rest"),
    Endpoint("GET /patients/{id}/plan", 300, 4.0, "rest"),
    Endpoint("GET /clinic/patients/{id} (web page)", 150, None, "other"),
    Endpoint("GET /plan/{id}/plan.pdf (family PDF)", 10, None, "other"),
    Endpoint("POST CDS patient-view", 200, 4.0, "cds"),
)


def measure_pair(
    floor: tuple[int, Callable[[int], httpx.Response]],
    endpoint: tuple[int, Callable[[int], httpx.Response]],
    count: int,
) -> tuple[float, float]:
    """Server CPU milliseconds per request of the floor and of an endpoint, their requests interleaved.

    One floor request, one endpoint request, and so on (after a warm-up of each): the two servers
    are measured over the same seconds, so whatever else the machine runs weighs on both alike.
    """
    (floor_pid, floor_send), (pid, send) = floor, endpoint
    for i in range(min(WARM_UP, count)):
        _ok(floor_send(i))
        _ok(send(i))
    floor_before, before = thread_cpu_ns(floor_pid), thread_cpu_ns(pid)
    for i in range(count):
        # Either goes first in turn: a server woken right after the other may pay for it.
        if i % 2:
            _ok(send(i))
            _ok(floor_send(i))
        else:
            _ok(floor_send(i))
            _ok(send(i))
    floor_ns = cpu_ns_between(floor_before, thread_cpu_ns(floor_pid))
    ns = cpu_ns_between(before, thread_cpu_ns(pid))
    return floor_ns / count / 1e6, ns / count / 1e6


def _ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:300]}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every endpoint's requests per round")
    parser.add_argument("--json", type=Path, default=ROOT / "bench-results" / "floor.json")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 10 or not 0.05 <= args.scale <= 5:
        parser.error("keep it bounded: --rounds 1..10, --scale 0.05..5")

    workdir = Path(tempfile.mkdtemp(prefix="allpath-floor-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "bench", "alg": "RS384", "use": "sig"})
    (workdir / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ALLPATH_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "ALLPATH_SECRET_KEY": "bench-only-key",
        "ALLPATH_CDS_JWKS": str(workdir / "jwks.json"),
        "ALLPATH_CDS_ALLOWED_ISSUERS": ISSUER,
        "ALLPATH_CDS_SERVICE_URL": base,
    }
    env.pop("ALLPATH_CDS_INSECURE_DEV", None)
    subprocess.run(
        [sys.executable, "-m", "allpath.cli", "db", "seed-demo"], check=True, env=env, stdout=subprocess.DEVNULL
    )

    # Two floor servers: the first is the partner every measurement is paired with; the second is
    # measured like an endpoint (its `def` route should come out at 1x: the noise of the method).
    floor_ports = (free_port(), free_port())
    floor_base, twin_base = (f"http://127.0.0.1:{p}" for p in floor_ports)
    floors = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "floor_app.py"), "--port", str(p)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        for p in floor_ports
    ]
    floor, twin = floors
    facts = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    bodies = [
        json.dumps(
            {
                "hook": "patient-view",
                "hookInstance": str(uuid.uuid4()),
                "context": {"userId": "Practitioner/bench", "patientId": f"pt{v}"},
                "prefetch": prefetch(f"pt{v}", v),
            }
        ).encode()
        for v in range(8)
    ]

    def cds_tokens(count: int) -> list[str]:
        now = int(time.time())
        return [
            jwt.encode(
                {"iss": ISSUER, "aud": base + CDS_PATH, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())},
                key,
                algorithm="RS384",
                headers={"kid": "bench", "typ": "JWT"},
            )
            for _ in range(count)
        ]

    samples: dict[str, list[float]] = {e.name: [] for e in ENDPOINTS}
    ratios: dict[str, list[float]] = {e.name: [] for e in ENDPOINTS}
    load_start = os.getloadavg()
    try:
        deadline = time.monotonic() + 60
        while not (floor_ready(floor_base) and floor_ready(twin_base)):
            if any(f.poll() is not None for f in floors) or time.monotonic() > deadline:
                raise SystemExit("the floor app did not start")
            time.sleep(0.2)
        with (
            running_server(
                ["--log-level", "warning", "--workers", "1"], env=env, port=port, log_path=workdir / "server.log"
            ) as server,
            httpx.Client(base_url=base, timeout=30) as api,
            httpx.Client(base_url=base, timeout=60) as browser,
        ):
            login = {"username": "demo-clinician", "password": "demo-clinician-password"}
            token = api.post("/auth/token", data=login).json()["access_token"]
            api.headers["Authorization"] = f"Bearer {token}"
            listed = api.get("/patients").json()
            # A page of the list since the web work (`{"items": [...]}`); a plain list before it.
            patients = [p["id"] for p in (listed["items"] if isinstance(listed, dict) else listed)]
            csrf = browser.get("/auth/csrf").json()["csrf_token"]
            _ok(browser.post("/auth/session", data={**login, "csrf_token": csrf}))
            anonymous = httpx.Client(base_url=base, timeout=30)
            floor_client = httpx.Client(base_url=floor_base, timeout=30)
            twin_client = httpx.Client(base_url=twin_base, timeout=30)
            tokens: list[str] = []  # refilled each round, taken one per CDS call
            try:
                for _round in range(args.rounds):
                    cds_count = max(1, round(ENDPOINTS[-1].requests * args.scale))
                    tokens[:] = cds_tokens(cds_count + WARM_UP)
                    senders: dict[str, tuple[int, Callable[[int], httpx.Response]]] = {
                        FLOOR: (twin.pid, lambda i: twin_client.get("/floor-sync")),
                        ENDPOINTS[1].name: (twin.pid, lambda i: twin_client.get("/floor")),
                        "GET /healthz": (server.process.pid, lambda i: anonymous.get("/healthz")),
                        "POST /recommend": (
                            server.process.pid,
                            lambda i: anonymous.post("/recommend", json=facts[i % len(facts)]),
                        ),
                        "GET /patients": (server.process.pid, lambda i: api.get("/patients")),
                        "GET /patients/{id}": (
                            server.process.pid,
                            lambda i: api.get(f"/patients/{patients[i % len(patients)]}"),
                        ),
                        "GET /patients/{id}/plan": (
                            server.process.pid,
                            lambda i: api.get(f"/patients/{patients[i % len(patients)]}/plan"),
                        ),
                        ENDPOINTS[7].name: (
                            server.process.pid,
                            lambda i: browser.get(f"/clinic/patients/{patients[i % len(patients)]}"),
                        ),
                        ENDPOINTS[8].name: (
                            server.process.pid,
                            lambda i: browser.get(f"/plan/{patients[i % len(patients)]}/plan.pdf"),
                        ),
                        ENDPOINTS[9].name: (
                            server.process.pid,
                            lambda i: anonymous.post(
                                CDS_PATH,
                                content=bodies[i % len(bodies)],
                                headers={
                                    "Authorization": f"Bearer {tokens.pop()}",
                                    "Content-Type": "application/json",
                                },
                            ),
                        ),
                    }
                    partner = (floor.pid, lambda i: floor_client.get("/floor-sync"))
                    for endpoint in ENDPOINTS:
                        floor_ms, ms = measure_pair(
                            partner, senders[endpoint.name], max(1, round(endpoint.requests * args.scale))
                        )
                        samples[endpoint.name].append(ms)
                        ratios[endpoint.name].append(ms / floor_ms)
            finally:
                anonymous.close()
                floor_client.close()
                twin_client.close()
    finally:
        for f in floors:
            f.terminate()
            f.wait(timeout=20)
    load_end = os.getloadavg()

    rows = []
    for e in ENDPOINTS:
        ratio = statistics.median(ratios[e.name])
        verdict = "-" if e.limit is None else ("met" if ratio <= e.limit else "NOT met")
        rows.append(
            {
                "endpoint": e.name,
                "cpu_ms": round(statistics.median(samples[e.name]), 3),
                "cpu_ms_rounds": [round(x, 3) for x in samples[e.name]],
                "x_floor": round(ratio, 2),
                "x_floor_rounds": [round(x, 2) for x in ratios[e.name]],
                "limit": e.limit,
                "verdict": verdict,
            }
        )
    result = {
        "machine": machine_line(),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "rounds": args.rounds,
        "scale": args.scale,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"machine: {result['machine']}")
    print(f"load average (1, 5, 15 min): start {result['load_average_start']}, end {result['load_average_end']}")
    print(f"{args.rounds} rounds; one uvicorn worker each; server CPU per request, median over the rounds")
    print("| endpoint | CPU ms/request | x floor | rounds (x floor) | target | verdict |")
    print("|---|---:|---:|---|---:|---|")
    for r in rows:
        target = f"<= {r['limit']:g}x" if r["limit"] else "-"
        rounds = ", ".join(f"{x:g}" for x in r["x_floor_rounds"])
        print(f"| {r['endpoint']} | {r['cpu_ms']:.3f} | {r['x_floor']:.2f} | {rounds} | {target} | {r['verdict']} |")
    targets = [r for r in rows if r["limit"] is not None]
    met = all(r["verdict"] == "met" for r in targets)
    print(f"targets (REST reads and CDS <= 4x, POST /recommend <= 2x): {'ALL MET' if met else 'NOT MET'}")
    return 0


def floor_ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/floor", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
