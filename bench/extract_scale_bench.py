"""Benchmark report reading at start-up and at scale: the first extraction in a fresh process, and a batch on one
process against every core.

Run:  .venv/bin/python bench/extract_scale_bench.py [--reports 2400] [--runs 5] [--no-write]
Writes docs/benchmarks-extract-scale.md (machine, date, figures) and prints the same table.

* Fresh process: `python -c "from spinemets.reports.extract import extract; extract(TEXT)"`, each of `--runs`
  runs with a different report (no cache between runs: each is a new interpreter); wall time and peak memory,
  median over the runs; which heavy modules the process imported.  Baseline of the same run: a fresh
  interpreter that only imports `json` (the cost of starting Python).
* Batch: `spinemets extract FOLDER -o out.jsonl --workers N` on `--reports` varied reports (every report of
  tests/data/reports, development, hold-out and the real-style sets, repeated with a serial number appended so
  no two texts are the same), wall time; the ratio is workers=1 (the baseline) over workers=all cores, and the
  two outputs are checked to be identical.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks-extract-scale.md"
PY = sys.executable
HEAVY = ("torch", "quickumls", "nltk", "sklearn", "PyRuSH")


def texts() -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from spinemets.reports.evaluate import report_text

    return [report_text(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "tests" / "data" / "reports").glob("*/*.txt"))]


def fresh(code: str) -> tuple[float, float, str]:
    """(wall seconds, peak MB, stdout) of one fresh interpreter running *code*."""
    wrapped = code + "\nimport resource\nprint('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    t = time.perf_counter()
    out = subprocess.run([PY, "-c", wrapped], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    wall = time.perf_counter() - t
    rss = next(int(line.split()[1]) for line in out.splitlines() if line.startswith("RSS")) / 1024
    return wall, rss, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=2400)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch-runs", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    corpus = texts()

    base = [fresh("import json")[:2] for _ in range(a.runs)]
    first = []
    heavy_seen: set[str] = set()
    for i in range(a.runs):
        text = corpus[(i * 37) % len(corpus)]
        code = (f"import sys\nfrom spinemets.reports.extract import extract\nextract({text!r})\n"
                f"print('HEAVY', ','.join(m for m in {HEAVY!r} if m in sys.modules))")
        wall, rss, out = fresh(code)
        first.append((wall, rss))
        heavy = next(line for line in out.splitlines() if line.startswith("HEAVY"))[6:]
        heavy_seen |= {m for m in heavy.split(",") if m}
    base_wall = statistics.median(w for w, _ in base)
    first_wall = statistics.median(w for w, _ in first)
    first_rss = statistics.median(r for _, r in first)

    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i in range(a.reports):
            (folder / f"r{i:05d}.txt").write_text(corpus[i % len(corpus)] + f"\n\nSerial {i}.\n", encoding="utf-8")
        runs: dict[int | str, list[float]] = {1: [], cores: [], "dask": []}
        outputs = {}
        for r in range(a.batch_runs):  # interleaved, so that a slow spell of the machine hits all alike
            for n in (1, cores, "dask"):
                if n == "dask":  # a local Dask cluster of one worker process per core, JSONL part files
                    out = Path(tmp) / f"dask{r}"
                    cmd = [PY, "-m", "spinemets", "extract", str(folder), "--dask", "--workers", str(cores),
                           "--format", "jsonl", "--partition-size", "200", "-o", str(out), "--no-progress"]
                else:
                    out = Path(tmp) / f"out{n}.jsonl"
                    cmd = [PY, "-m", "spinemets", "extract", str(folder), "-o", str(out), "--workers", str(n),
                           "--no-progress"]
                t = time.perf_counter()
                subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
                runs[n].append(time.perf_counter() - t)
                outputs[n] = (b"".join(p.read_bytes() for p in sorted(out.glob("part-*.jsonl"))) if n == "dask"
                              else out.read_bytes())
        walls = {n: statistics.median(w) for n, w in runs.items()}
        identical = outputs[1] == outputs[cores] == outputs["dask"]

    lines = [
        "# Benchmarks: report reading at start-up and at scale",
        "",
        f"Run `.venv/bin/python bench/extract_scale_bench.py` (this file is rewritten). Last run: "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        f"| fresh process ({a.runs} runs, each a different report; median) | wall | peak memory | ratio |",
        "|---|---|---|---|",
        f"| baseline: start Python and import json | {base_wall:.2f} s | {statistics.median(r for _, r in base):.0f} MB | 1.00x |",
        f"| first extraction: import spinemets' reader and read one report | {first_wall:.2f} s | {first_rss:.0f} MB | "
        f"{first_wall / base_wall:.1f}x |",
        "",
        f"Heavy modules imported by the first extraction: {', '.join(sorted(heavy_seen)) or 'none'} "
        f"(checked: {', '.join(HEAVY)}). Target (issue): first extraction within 1.5 s.",
        "",
        f"| batch: {a.reports} different reports, JSONL out ({a.batch_runs} runs each, interleaved; median) | wall | "
        f"reports/s | ratio to one process |",
        "|---|---|---|---|",
        f"| one process (baseline) | {walls[1]:.2f} s | {a.reports / walls[1]:.0f} | 1.00x |",
        f"| {cores} worker processes | {walls[cores]:.2f} s | {a.reports / walls[cores]:.0f} | "
        f"{walls[1] / walls[cores]:.2f}x |",
        f"| Dask local cluster, {cores} worker processes (partitions of 200, part files) | {walls['dask']:.2f} s | "
        f"{a.reports / walls['dask']:.0f} | {walls[1] / walls['dask']:.2f}x |",
        "",
        f"Every run includes starting the command (about {first_wall:.1f} s; the Dask run also starts its cluster, "
        "and each of its workers builds the pipeline). The outputs (the Dask part files joined) are "
        f"{'byte-identical' if identical else 'NOT identical'}. Target (issue): at least 1.6x on 2 cores.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        OUT.write_text(text, encoding="utf-8")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
