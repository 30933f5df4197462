"""Benchmarks for spinemets.  Run with `make bench`; results go to docs/benchmarks.md.

Measures:
* in-process `assess` on the full example case (median and p95 over many runs, after warm-up);
* in-process `sins` alone;
* CLI start-up: `spinemets --help` wall time over repeated runs (new process each time).
Targets (issue 2): median assess < 200 us; `spinemets --help` < 0.5 s.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from machine import machine  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks.md"


def timeit(fn, n: int) -> tuple[float, float]:
    for _ in range(min(200, n)):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(0.95 * len(samples))] / 1000


def main() -> None:
    from spinemets import assess, sins
    from spinemets.knowledge.loader import load_kb

    t0 = time.perf_counter()
    load_kb()
    kb_load_ms = (time.perf_counter() - t0) * 1000
    case = json.loads((ROOT / "examples" / "full_case.json").read_text())
    sins_in = case["sins"]
    rows = []
    core = {k: v for k, v in case.items() if k != "pathway"}
    med, p95 = timeit(lambda: assess(core), 3000)
    rows.append(("assess: SINS + ESCC + NOMS + probability (issue 2's full case)", med, p95, "median < 200 us"))
    med, p95 = timeit(lambda: assess(case), 3000)
    rows.append(("assess: the same plus the imaging pathway", med, p95, ""))
    med, p95 = timeit(lambda: assess({"escc": case["escc"]}), 5000)
    rows.append(("escc (findings)", med, p95, ""))
    med, p95 = timeit(lambda: sins(sins_in), 5000)
    rows.append(("sins (complete)", med, p95, ""))

    exe = str(Path(sys.executable).with_name("spinemets"))
    walls = []
    for _ in range(15):
        t = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        walls.append((time.perf_counter() - t) * 1000)
    walls.sort()

    lines = [
        "# Benchmarks",
        "",
        f"Run `make bench` (this file is rewritten by `bench/run.py`). Last run: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"on {machine()}.",
        "",
        "| what | median | p95 | target |",
        "|---|---|---|---|",
    ]
    for name, m, p, target in rows:
        lines.append(f"| {name} | {m:.1f} us | {p:.1f} us | {target} |")
    lines.append(f"| `spinemets --help` (new process) | {statistics.median(walls):.1f} ms | {walls[int(0.95 * len(walls))]:.1f} ms | < 500 ms |")
    lines.append(f"| knowledge-base load (once per process) | {kb_load_ms:.1f} ms | | |")
    lines.append("")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
