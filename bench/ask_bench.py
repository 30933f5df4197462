"""Benchmark `spinemets ask`: warm per-question latency and memory, lexical only vs hybrid, in one run.

Run:  .venv/bin/python bench/ask_bench.py [--rounds 5] [--cores all]
Writes docs/benchmarks-ask.md (machine, date, figures) and prints the same table.

* One core by default: the process is pinned to one CPU and the dense backends use one thread.
* Both dense backends (numpy, the default, and torch / sentence-transformers) are measured in turn.
* Latency: every question of tests/data/ask_dev.yaml asked `--rounds` times through the public `ask()`
  (reading, engines, retrieval, composition), after a warm-up pass; median and p95 over all calls.
  Retrieval alone (`Index.search`) is reported too.
* Memory: resident set size (VmRSS) after the lexical phase and after the hybrid phase, and the peak.
* Cold costs: knowledge-base + index build, model load, and statement embeddings computed from scratch
  (into a temporary cache) versus read from the cache file.
* Quality: `ask-eval` figures for both modes on the development set, so cost and benefit sit side by side.
Targets (issue): hybrid on one core, median <= 30 ms and p95 <= 100 ms per question.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from machine import machine, rss_mb  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks-ask.md"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stats(samples_ms: list[float]) -> tuple[float, float]:
    s = sorted(samples_ms)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cores", choices=("one", "all"), default="one")
    ap.add_argument("--backends", default="numpy,torch", help="dense backends to measure, comma-separated")
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args()

    pinned = "all cores"
    if a.cores == "one":
        os.environ["SPINEMETS_DENSE_THREADS"] = "1"
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
            pinned = "one core (process pinned to one CPU, dense backends on 1 thread)"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    sys.path.insert(0, str(ROOT / "src"))

    rows: list[tuple[str, str, str, str]] = []
    t0 = time.perf_counter()
    from spinemets.ask import ask
    from spinemets.ask.evaluate import evaluate, load_set
    from spinemets.ask.index import index_for
    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    index = index_for(kb)
    cold_index_ms = (time.perf_counter() - t0) * 1000
    _, items = load_set()
    questions = [it.q for it in items]

    def measure(lexical: bool) -> tuple[list[float], list[float]]:
        for q in questions:  # warm-up pass
            _safe(ask, q, lexical)
        total, retrieval = [], []
        for _ in range(a.rounds):
            for q in questions:
                t = time.perf_counter()
                _safe(ask, q, lexical)
                total.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                index.search(q, dense=not lexical)
                retrieval.append((time.perf_counter() - t) * 1000)
        return total, retrieval

    lex_total, lex_retr = measure(lexical=True)
    rss_lex = rss_mb()

    # Dense, per backend: model load, embeddings from scratch (temporary cache) and from the cache file, then warm.
    from spinemets.ask import dense

    texts = [index.dense_text(i) for i in index.ids]
    hybrid: dict[str, dict[str, object]] = {}
    for name in a.backends.split(","):
        os.environ["SPINEMETS_DENSE_BACKEND"] = name
        t = time.perf_counter()
        dense.Encoder.model(name)
        load_ms = (time.perf_counter() - t) * 1000
        with tempfile.TemporaryDirectory() as tmp:
            old = os.environ.get("SPINEMETS_CACHE_DIR")
            os.environ["SPINEMETS_CACHE_DIR"] = tmp
            t = time.perf_counter()
            dense.document_matrix(kb.version, index.ids, texts)
            cold_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            dense.document_matrix(kb.version, index.ids, texts)
            cached_ms = (time.perf_counter() - t) * 1000
            if old is None:
                del os.environ["SPINEMETS_CACHE_DIR"]
            else:
                os.environ["SPINEMETS_CACHE_DIR"] = old
        index.dense_matrix()
        total, retr = measure(lexical=False)
        hybrid[name] = dict(load_ms=load_ms, cold_ms=cold_ms, cached_ms=cached_ms, total=total, retr=retr, rss=rss_mb())
    os.environ["SPINEMETS_DENSE_BACKEND"] = a.backends.split(",")[0]

    ev = {m: evaluate(mode=m) for m in ("lexical", "hybrid")}

    lm, lp = stats(lex_total)
    rlm, rlp = stats(lex_retr)
    n = len(lex_total)
    # Baseline of the same run: the lexical ask() median; every median is also given as a ratio to it.
    def ratio(m: float) -> str:
        return f"{m / lm:.2f}x"

    rows = [("ask(), lexical only (baseline)", f"{lm:.1f} ms", f"{lp:.1f} ms", ratio(lm), "")]
    for name, h in hybrid.items():
        hm, hp = stats(h["total"])  # type: ignore[arg-type]
        rows.append((f"ask(), hybrid, {name} backend", f"{hm:.1f} ms", f"{hp:.1f} ms", ratio(hm),
                     "median <= 30 ms, p95 <= 100 ms"))
    rows.append(("retrieval only, lexical (FTS5 BM25)", f"{rlm:.2f} ms", f"{rlp:.2f} ms", ratio(rlm), ""))
    for name, h in hybrid.items():
        rm, rp = stats(h["retr"])  # type: ignore[arg-type]
        rows.append((f"retrieval only, hybrid, {name} backend", f"{rm:.2f} ms", f"{rp:.2f} ms", ratio(rm), ""))
    cold = [("knowledge base + ask index build (first question)", f"{cold_index_ms:.0f} ms")]
    for name, h in hybrid.items():
        cold += [
            (f"{name} backend: model import and load", f"{h['load_ms']:.0f} ms"),
            (f"{name} backend: statement embeddings from scratch ({len(texts)} statements)", f"{h['cold_ms']:.0f} ms"),
            (f"{name} backend: statement embeddings from the cache file", f"{h['cached_ms']:.1f} ms"),
        ]
    memory = [("RSS after the lexical phase (no model)", f"{rss_lex:.0f} MB")]
    memory += [(f"RSS after the hybrid phase, {name} backend loaded" + (" (cumulative)" if i else ""), f"{h['rss']:.0f} MB")
               for i, (name, h) in enumerate(hybrid.items())]
    memory.append(("peak RSS of the run", f"{peak_mb():.0f} MB"))
    quality = [(m, r) for m, r in ev.items()]

    lines = [
        "# Benchmarks: ask",
        "",
        f"Run `.venv/bin/python bench/ask_bench.py` (this file is rewritten). Last run: "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; {pinned}.",
        f"Latency: {len(questions)} development questions x {a.rounds} rounds = {n} calls per mode, after a warm-up pass.",
        "",
        "Each median is also shown as a ratio to the lexical ask() median of the same run (the baseline).",
        "",
        "| what | median | p95 | median / baseline | target |",
        "|---|---|---|---|---|",
        *(f"| {w} | {m} | {p} | {x} | {t} |" for w, m, p, x, t in rows),
        "",
        "| cold cost | time |",
        "|---|---|",
        *(f"| {w} | {v} |" for w, v in cold),
        "",
        "| memory | |",
        "|---|---|",
        *(f"| {w} | {v} |" for w, v in memory),
        "",
        f"Quality on the development set (`spinemets ask-eval`, {os.environ['SPINEMETS_DENSE_BACKEND']} backend; "
        "both backends give the same vectors):",
        "",
        "| mode | recall@1 | recall@3 | answer facts | citation precision | citation recall | refusal accuracy |",
        "|---|---|---|---|---|---|---|",
        *(f"| {m} | {r.recall_at_1:.3f} | {r.recall_at_3:.3f} | {r.answer_fact_rate:.3f} | {r.citation_precision:.3f} | "
          f"{r.citation_recall:.3f} | {r.refusal_accuracy:.3f} |" for m, r in quality),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        OUT.write_text(text, encoding="utf-8")
        print(f"written to {OUT}")


def _safe(ask, q: str, lexical: bool) -> None:
    from spinemets.errors import SpinemetsError

    try:
        ask(q, lexical=lexical)
    except SpinemetsError:
        pass


if __name__ == "__main__":
    main()
