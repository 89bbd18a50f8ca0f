"""Name the machine a benchmark ran on, and the measuring helpers every benchmark shares."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path


def describe_machine() -> dict[str, str]:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def machine_line() -> str:
    m = describe_machine()
    return f"{m['cpu']}, {m['cores']} cores, {m['memory']} RAM, Python {m['python']}, {m['os']}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), or NaN where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (uvicorn's worker processes under its supervisor)."""
    found = [pid]
    for parent in found:
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                found += [int(c) for c in children.read_text().split()]
            except (OSError, ValueError):
                continue
    return found


def thread_cpu_ns(pid: int) -> dict[tuple[int, int], int]:
    """Nanoseconds on a CPU so far of every thread of `pid` and of the processes below it.

    Read from `/proc/<pid>/task/<tid>/schedstat` (the scheduler's own account, exact to the
    nanosecond) rather than `/proc/<pid>/stat` (clock ticks of 10 ms): a few hundred requests of
    well under a millisecond each are then measured to better than a percent.
    """
    out: dict[tuple[int, int], int] = {}
    for proc in process_tree(pid):
        for task in Path(f"/proc/{proc}/task").glob("*"):
            try:
                out[(proc, int(task.name))] = int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return out


def cpu_ns_between(before: dict[tuple[int, int], int], after: dict[tuple[int, int], int]) -> int:
    """CPU used between two `thread_cpu_ns` snapshots: threads present in both count their
    difference, threads born in between all they used (a thread that ended in between is lost:
    the thread pool's idle threads end only after 10 s without work)."""
    return sum(ns - before.get(key, 0) for key, ns in after.items())
