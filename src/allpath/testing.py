"""Run a real `allpath serve` in a subprocess, for integration tests, benchmarks and scripts.

Starting the server as its own process (rather than an in-process test client) is what the
durability test (SIGKILL mid-write), the browser tests and the load benchmarks need: the server
owns its event loop, its database connections and its CPU time. Uses only the standard library
and httpx (a `web` extra dependency).
"""

from __future__ import annotations

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

    `port` defaults to a free one; pass it when the environment must name the server's own URL
    (the CDS Hooks service checks that each JWT's `aud` is exactly its URL).

    Output goes to `log_path` (appended) or is discarded. On exit the server gets SIGINT (a clean
    uvicorn shutdown) when `graceful_stop`, else SIGKILL; either way it is reaped.
    """
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "allpath.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *serve_args]
    log: IO[bytes] | int = log_path.open("ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            command,
            env={"PYTHONUNBUFFERED": "1", **(env if env is not None else os.environ)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        if not isinstance(log, int):
            log.close()
    try:
        deadline = time.monotonic() + timeout
        while not ready(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:] if log_path else "(no log kept)"
                raise ServerStartError(f"allpath serve did not become ready on {base_url}:\n{tail}")
            time.sleep(0.2)
        yield RunningServer(process, base_url, port)
    finally:
        _stop(process, graceful_stop)


def _stop(process: subprocess.Popen[bytes], graceful: bool) -> None:
    if process.poll() is None:
        if graceful:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
                return
            except subprocess.TimeoutExpired:
                pass
        process.kill()
    process.wait(timeout=30)
