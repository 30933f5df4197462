"""Benchmark the install: a fresh virtual environment with spinemets alone (what `make run` installs) against one
with the `dense` extra (torch, sentence-transformers: what `make run` installed before the encoder's weights
shipped inside spinemets), built side by side from the project's own files; size on disk and the first `ask` in
a fresh process (hybrid retrieval, statement embeddings from a warm cache so that only start-up and the question
are timed).  Writes docs/benchmarks-install.md.

    .venv/bin/python bench/install_bench.py
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

from machine import machine, publish  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks-install.md"
QUESTIONS = ["Do I need contrast for a spine MRI for metastases?", "What is a SINS score of 9?",
             "Bone island or sclerotic metastasis?", "MRI or bone scan for suspected spinal metastases?",
             "What does Bilsky grade 2 mean?"]


def size_mb(folder: Path) -> float:
    return sum((Path(d) / f).stat().st_size for d, _, fs in os.walk(folder) for f in fs
               if not (Path(d) / f).is_symlink()) / 1e6


def build(target: Path, spec: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    spec], check=True, capture_output=True)
    return time.perf_counter() - t


def first_ask(env_dir: Path, question: str, backend: str, cache: Path) -> float:
    env = {**os.environ, "SPINEMETS_DENSE_BACKEND": backend, "SPINEMETS_CACHE_DIR": str(cache)}
    t = time.perf_counter()
    done = subprocess.run([str(env_dir / "bin" / "spinemets"), "ask", "--json", question], capture_output=True,
                          text=True, env=env, check=True)
    wall = time.perf_counter() - t
    assert '"mode": "hybrid"' in done.stdout, done.stdout[:300]
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        light, heavy, cache = Path(tmp) / "light", Path(tmp) / "heavy", Path(tmp) / "cache"
        cache.mkdir()
        t_light = build(light, str(ROOT))
        t_heavy = build(heavy, f"{ROOT}[dense]")
        s_light, s_heavy = size_mb(light), size_mb(heavy)
        # warm the statement-embedding caches of both backends, then time a fresh process per question
        first_ask(light, QUESTIONS[0], "numpy", cache)
        first_ask(heavy, QUESTIONS[0], "torch", cache)
        ask_light = statistics.median(first_ask(light, q, "numpy", cache) for q in QUESTIONS)
        ask_heavy = statistics.median(first_ask(heavy, q, "torch", cache) for q in QUESTIONS)
    lines = [
        "# Benchmarks: the install",
        "",
        f"Run `.venv/bin/python bench/install_bench.py` (this file is rewritten). Last run: "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        "Two fresh virtual environments built side by side from the project's files (pip, the package index this "
        "machine is configured with, its wheel cache warm): spinemets alone, as `make run` installs it, and with "
        "the `dense` extra (torch, sentence-transformers), which `make run` installed before the sentence "
        "encoder's weights shipped inside spinemets (float16, converted by `scripts/convert_minilm.py`).",
        "",
        "| environment | size on disk | ratio | build time | first `ask` in a fresh process (median of "
        f"{len(QUESTIONS)} questions) | ratio |",
        "|---|---|---|---|---|---|",
        f"| with the dense extra (baseline, torch backend) | {s_heavy:.0f} MB | 1.00x | {t_heavy:.0f} s | "
        f"{ask_heavy:.2f} s | 1.00x |",
        f"| spinemets alone (`make run`, NumPy backend) | {s_light:.0f} MB | {s_light / s_heavy:.2f}x | "
        f"{t_light:.0f} s | {ask_light:.2f} s | {ask_light / ask_heavy:.2f}x |",
        "",
        f"Target (issue): a fresh `make run` environment of at most 600 MB, without torch or transformers: "
        f"{s_light:.0f} MB. tests/test_install.py builds the same environment in the suite and checks both.",
        "The first `ask` reads the statement embeddings from a cache both environments warmed with one question "
        "first (a new knowledge-base version recomputes them once); it times start-up, loading the model and the "
        "answer.",
        "",
    ]
    publish(lines, OUT, not a.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
