"""`allpath serve --workers N` spreads kept connections over its workers (one SO_REUSEPORT socket
each, `allpath.serving`), keeps the connections meant for a dead worker until uvicorn respawns it, and
refuses to start on a port another server already listens on.

Which worker holds a connection is read from Linux's own tables: each worker's socket inodes
(`/proc/<pid>/fd`) against the established connections on the port (`/proc/net/tcp`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from allpath.serving import reuseport_available
from allpath.testing import RunningServer, running_server, worker_pids

pytestmark = pytest.mark.skipif(not reuseport_available(), reason="SO_REUSEPORT balancing is Linux only")

CONNECTIONS = 32


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("balance")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALLPATH_")},
        "ALLPATH_DATABASE_URL": f"sqlite:///{work / 'balance.db'}",
        "ALLPATH_SECRET_KEY": "balance-test-key",
    }
    with running_server(["--workers", "2", "--log-level", "warning"], env=env, log_path=work / "server.log") as server:
        yield server


def _healthz(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    return data.split(b"\r\n", 1)[0]


def _open(port: int, count: int, timeout: float = 30) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        assert _healthz(sock) == b"HTTP/1.1 200 OK"
        opened.append(sock)
    return opened


def _owners(server: RunningServer, clients: list[socket.socket]) -> dict[int, int]:
    """How many of `clients` each worker process holds the server end of."""
    inode_of_peer: dict[int, int] = {}  # client's port -> inode of the server-side socket
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            if int(local.rsplit(":", 1)[1], 16) == server.port and state == "01":
                inode_of_peer[int(remote.rsplit(":", 1)[1], 16)] = inode
    counts: dict[int, int] = {}
    for pid in worker_pids(server.process):
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
        counts[pid] = sum(1 for c in clients if inode_of_peer.get(c.getsockname()[1]) in inodes)
    return counts


def test_kept_connections_are_spread_over_both_workers(two_workers: RunningServer) -> None:
    clients = _open(two_workers.port, CONNECTIONS)
    try:
        counts = _owners(two_workers, clients)
    finally:
        for c in clients:
            c.close()
    assert len(counts) == 2 and sum(counts.values()) == CONNECTIONS, counts
    # A hash of each connection's addresses picks the socket: an even split is not promised, but
    # one worker with 3 or fewer of 32 happens about once in 400,000 runs.
    assert min(counts.values()) >= 4, counts


def test_a_second_server_on_the_same_port_is_refused(two_workers: RunningServer, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALLPATH_")},
        "ALLPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}",
    }
    command = [sys.executable, "-m", "allpath.cli", "serve", "--port", str(two_workers.port), "--workers", "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{two_workers.port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_connections_to_a_killed_workers_socket_wait_for_its_replacement(two_workers: RunningServer) -> None:
    victim = worker_pids(two_workers.process)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while victim in worker_pids(two_workers.process):
        assert time.monotonic() < deadline, "the killed worker was not reaped"
        time.sleep(0.1)
    # Opened at once: those the kernel hashes to the dead worker's socket (still listening, in the
    # supervisor) wait for the new worker rather than being refused. Each asserts a 200.
    clients = _open(two_workers.port, CONNECTIONS, timeout=120)
    try:
        workers = worker_pids(two_workers.process)
        assert len(workers) == 2 and victim not in workers
        assert min(_owners(two_workers, clients).values()) >= 4
    finally:
        for c in clients:
            c.close()


def _cpus_of(pid: int) -> set[frozenset[int]]:
    """The CPU sets the threads of a process may run on (one set when they all share it)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.add(frozenset(os.sched_getaffinity(int(task.name))))
        except OSError:
            continue  # the thread ended meanwhile
    return found


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin two workers apart")
def test_each_worker_and_every_thread_it_runs_stays_on_a_cpu_of_its_own(two_workers: RunningServer) -> None:
    # Threads made after the start (the route thread pool) too: serve a few requests first.
    clients = _open(two_workers.port, 8)
    for c in clients:
        c.close()
    per_worker = [_cpus_of(pid) for pid in worker_pids(two_workers.process)]
    assert len(per_worker) == 2
    assert all(len(sets) == 1 and len(next(iter(sets))) == 1 for sets in per_worker), per_worker
    assert per_worker[0] != per_worker[1]


def test_no_pin_workers_leaves_the_workers_to_the_scheduler(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALLPATH_")},
        "ALLPATH_DATABASE_URL": f"sqlite:///{tmp_path / 'nopin.db'}",
        "ALLPATH_SECRET_KEY": "balance-test-key",
    }
    args = ["--workers", "2", "--no-pin-workers", "--log-level", "warning"]
    with running_server(args, env=env, log_path=tmp_path / "server.log") as server:
        everywhere = frozenset(os.sched_getaffinity(0))
        assert all(_cpus_of(pid) == {everywhere} for pid in worker_pids(server.process))
