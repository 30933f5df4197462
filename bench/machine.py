"""What every benchmark records beside its figures: the machine it ran on, and memory."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def rss_mb() -> float:
    """Resident memory of this process in MB (NaN where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def publish(lines: list[str], out: Path, write: bool) -> None:
    """Print a benchmark's Markdown and, unless told not to, write it to its file in docs/."""
    text = "\n".join(lines)
    print(text)
    if write:
        out.write_text(text, encoding="utf-8")
