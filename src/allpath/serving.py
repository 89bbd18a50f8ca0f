"""Worker processes that share the load evenly: one listening socket each, in a SO_REUSEPORT group.

uvicorn's supervisor gives every worker the same listening socket, so the kernel hands each new
connection to whichever worker wakes first. Clients that keep their connections (an EHR's CDS
client, a reverse proxy, a browser) then stay with the worker that happened to win: measured with
`make bench-http` and 32 kept connections, two workers did 22% and 78% of the work, so the second
core added little. With one socket per worker bound with SO_REUSEPORT (Linux), the kernel spreads
connections over the sockets by a hash of their addresses, as nginx's `reuseport` does.

uvicorn's supervisor (`uvicorn.supervisors.Multiprocess`: start, health checks, respawn of a dead
worker, SIGHUP restarts) is kept as it is; only the socket each worker process receives changes:
`BalancedProcess` picks, for each process uvicorn makes, the socket held by the fewest live
processes (a respawned worker takes the dead one's socket; during a SIGHUP restart the new worker
shares its predecessor's socket until that one stops). Where SO_REUSEPORT is missing (not Linux),
uvicorn's own shared socket is used.

Each worker starts listening on its socket when its app is ready (asyncio's `create_server`), so
while some workers are still starting the others take every new connection; a worker that dies
leaves its socket listening in the supervisor, and connections the kernel gives it wait there for
the respawned worker (uvicorn checks every half second) rather than being refused.

A second server started by mistake on a port already served is refused: the port is first bound
without SO_REUSEPORT, which fails while any socket listens there.
"""

from __future__ import annotations

import contextlib
import copyreg
import os
import socket
import sys
from typing import Any

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

# Per socket index, the worker processes given that socket (the supervisor's process only).
_HOLDERS: dict[int, list[BalancedProcess]] = {}


def reuseport_available() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class BalancedProcess(multiprocess.Process):
    """A uvicorn worker process given one socket of the group: the one the fewest live workers hold."""

    def __init__(self, config: Config, sockets: list[socket.socket]):
        def live(index: int) -> int:
            return sum(1 for p in _HOLDERS.get(index, []) if p.process.exitcode is None)

        index = min(range(len(sockets)), key=lambda i: (live(i), i))
        super().__init__(config, [sockets[index]])
        self.index = index
        _HOLDERS[index] = [p for p in _HOLDERS.get(index, []) if p.process.exitcode is None] + [self]

    def __reduce_ex__(self, protocol: Any) -> Any:
        # The worker gets uvicorn's own class back (its socket was chosen here), so unpickling it
        # imports nothing of allpath: the worker's health-check thread must answer the supervisor
        # within seconds, before the app (which imports everything) is loaded.
        return (copyreg.__newobj__, (multiprocess.Process,), self.__dict__)  # type: ignore[attr-defined]


class PinnedProcess(BalancedProcess):
    """A `BalancedProcess` kept on the CPU of its socket's index (`pin_to_cpu`) once started."""

    def start(self) -> None:
        super().start()
        if self.process.pid is not None:
            pin_to_cpu(self.process.pid, self.index)


def pin_to_cpu(pid: int, index: int) -> int | None:
    """Keep worker `index` (process `pid`, every thread it has and will make) on one CPU of those this
    process may use, round robin; the CPU, or None where affinity cannot be set.

    Measured with `make bench-http`, two workers on a 2-core host shared with the load generator:
    paired runs at 1,300 requests/s gave p99 10-15 ms pinned and 78-248 ms left to the scheduler
    (docs/service.md, "Worker processes"). nginx offers the same as `worker_cpu_affinity auto`."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        cpu = cpus[index % len(cpus)]
        # The main thread first: threads it makes from now on inherit its CPU.
        os.sched_setaffinity(pid, {cpu})
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task), {cpu})
    except (OSError, AttributeError):  # not Linux, or the process is gone
        return None
    return cpu


def bind_group(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to `host:port` in one SO_REUSEPORT group (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Without SO_REUSEPORT this fails if anything listens there, a server of ours included.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
    group = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        # Not listening yet: each worker listens when it is ready to serve, and until then the
        # kernel gives new connections to the sockets already listening, not to a queue no one reads.
        sock.set_inheritable(True)
        group.append(sock)
    return group


def run_workers(config: Config, *, pin_workers: bool = True) -> None:
    """Serve `config` (an import string app, `config.workers` > 1) with one socket per worker;
    `pin_workers`: each worker kept on a CPU of its own (`pin_to_cpu`)."""
    if not reuseport_available():
        sock = config.bind_socket()
        multiprocess.Multiprocess(config, sockets=[sock]).run()
        return
    try:
        group = bind_group(config.host, config.port, config.workers)
    except OSError as exc:
        multiprocess.logger.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        raise SystemExit(STARTUP_FAILURE) from None
    multiprocess.logger.info(
        "Uvicorn running on http://%s:%d with %d workers, one socket each",
        config.host,
        group[0].getsockname()[1],
        config.workers,
    )
    # uvicorn's supervisor names its process class at module level; this run uses ours.
    original: Any = multiprocess.Process
    multiprocess.Process = PinnedProcess if pin_workers else BalancedProcess  # type: ignore[misc]
    _HOLDERS.clear()
    try:
        multiprocess.Multiprocess(config, sockets=group).run()
    finally:
        multiprocess.Process = original  # type: ignore[misc]
        for sock in group:
            sock.close()
