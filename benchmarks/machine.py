"""Name the machine a benchmark ran on, so every figure says where it was measured."""

from __future__ import annotations

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
