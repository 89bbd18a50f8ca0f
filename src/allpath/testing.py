"""Run a real `allpath serve` in a subprocess, for integration tests, benchmarks and scripts.

Starting the server as its own process (rather than an in-process test client) is what the
durability test (SIGKILL mid-write), the browser tests and the load benchmarks need: the server
owns its event loop, its database connections and its CPU time. Uses only the standard library
and httpx (a `web` extra dependency).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

START_TIMEOUT = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the server binds it soon after)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    port: int


class ServerStartError(RuntimeError):
    pass


def healthz_ready(base_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_server(
    serve_args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    ready: Callable[[str], bool] = healthz_ready,
    graceful_stop: bool = True,
    timeout: float = START_TIMEOUT,
    port: int | None = None,
) -> Iterator[RunningServer]:
    """`allpath serve --host 127.0.0.1 --port <port> *serve_args`, yielded once `ready(base_url)` holds.

    One worker process unless `serve_args` says `--workers` (`allpath serve` itself defaults to
    the machine's cores). The server runs in a process group of its own, so stopping it stops
    its worker processes too, even with SIGKILL.

    `port` defaults to a free one; pass it when the environment must name the server's own URL
    (the CDS Hooks service checks that each JWT's `aud` is exactly its URL).

    Output goes to `log_path` (appended) or is discarded. On exit the server gets SIGINT (a clean
    uvicorn shutdown) when `graceful_stop`, else SIGKILL; either way it is reaped.
    """
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    workers = [] if "--workers" in serve_args else ["--workers", "1"]
    command = [
        sys.executable,
        "-m",
        "allpath.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *workers,
        *serve_args,
    ]
    log: IO[bytes] | int = log_path.open("ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            command,
            env={"PYTHONUNBUFFERED": "1", **(env if env is not None else os.environ)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if not isinstance(log, int):
            log.close()
    try:
        deadline = time.monotonic() + timeout
        # With N workers, each listens on a socket of its own once ready (`allpath.serving`):
        # wait for all N, or the first to start would get every connection the caller opens now.
        wanted = _workers_asked(serve_args)
        while not (ready(base_url) and listening_sockets(port) >= wanted):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:] if log_path else "(no log kept)"
                raise ServerStartError(f"allpath serve did not become ready on {base_url}:\n{tail}")
            time.sleep(0.2)
        yield RunningServer(process, base_url, port)
    finally:
        _stop(process, graceful_stop)


def _workers_asked(serve_args: Sequence[str]) -> int:
    args = list(serve_args)
    if "--workers" in args and args.index("--workers") + 1 < len(args):
        with contextlib.suppress(ValueError):
            return int(args[args.index("--workers") + 1])
    return 1


def listening_sockets(port: int) -> int:
    """How many TCP sockets listen on `port` (Linux `/proc/net/tcp*`; 1 where that cannot be read)."""
    found, readable = 0, False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            lines = Path(table).read_text().splitlines()[1:]
            readable = True
            for line in lines:
                fields = line.split()
                # local address "ADDR:PORT" in hex; state 0A is LISTEN
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    found += 1
    return found if readable else 1


def _stop(process: subprocess.Popen[bytes], graceful: bool) -> None:
    if process.poll() is None and graceful:
        process.send_signal(signal.SIGINT)  # uvicorn's supervisor stops its workers, then itself
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            pass
    # The whole group, while its leader is not yet reaped (so the group id cannot have been reused):
    # a killed supervisor's workers would otherwise live on, holding the port.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def worker_pids(process: subprocess.Popen[bytes]) -> list[int]:
    """The worker processes of a server started with `--workers N` (N > 1): its children."""
    pids: list[int] = []
    for children in Path(f"/proc/{process.pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(c) for c in children.read_text().split()]
    # multiprocessing's resource tracker is a child too, and serves nothing.
    return [pid for pid in pids if b"resource_tracker" not in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
