"""Benchmark `spinemets serve --workers N`: throughput of the calculators with one worker process (the baseline)
and with one per core, measured side by side in one run.

    .venv/bin/python bench/workers_bench.py [--seconds 8] [--no-write]

Each server gets the same closed loop of requests from a separate load process (asyncio, 64 keep-alive
connections, so that every worker gets its share: a worker keeps the connections it accepts): POST /api/v1/sins and
POST /api/v1/assess with 240 different bodies in turn (bench/web_bench.py's varied_requests), with the response
cache off (every request computed) and on (the default; the 240 bodies fit, so those rows measure hits).  The load
process needs a core of its own, so on a 2-core machine the servers share the cores with it: the figure is what this
machine gives, not the servers' ceiling.  Writes docs/benchmarks-workers.md.  Target (issue): from 1 to 2 workers at
least 1.6x on 2 cores.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine, publish  # bench/machine.py
from web_bench import HOST, _closed_loop, varied_requests  # bench/web_bench.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks-workers.md"
SPINEMETS = str(Path(sys.executable).with_name("spinemets"))
CONNS = 64  # keep-alive connections: enough that both workers get a fair share (each keeps the ones it accepts)


def load_main(argv: list[str]) -> int:
    port, kind, seconds = int(argv[0]), argv[1], float(argv[2])
    print(json.dumps(asyncio.run(_closed_loop(port, varied_requests(kind), seconds, CONNS))))
    return 0


def serve(workers: int, tmp: Path, cache: bool) -> tuple[subprocess.Popen[bytes], int]:
    from spinemets.api.devserver import free_port

    port = free_port()
    env = {**os.environ, "SPINEMETS_DATA_DIR": str(tmp / f"data{workers}{cache}"),
           "SPINEMETS_ADMIN_PASSWORD": "Bench-pass-2026!", **({} if cache else {"SPINEMETS_RESPONSE_CACHE": "0"})}
    proc = subprocess.Popen([SPINEMETS, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers),
                             "--no-access-log", "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    import urllib.request

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/api/v1/ping", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    time.sleep(2.0)  # every worker up
    return proc, port


def measure(port: int, kind: str, seconds: float) -> dict:
    r = subprocess.run([sys.executable, __file__, "--load", str(port), kind, str(seconds)], capture_output=True,
                       text=True, timeout=seconds * 4 + 60, check=True)
    return json.loads(r.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    results: dict[tuple[int, str, bool], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cache in (False, True):
            for workers in (1, cores):
                proc, port = serve(workers, Path(tmp), cache)
                try:
                    for kind in ("sins", "assess"):
                        measure(port, kind, 2.0)  # warm every worker (and, with the cache, fill it)
                        results[(workers, kind, cache)] = measure(port, kind, a.seconds)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    lines = [
        "# Benchmarks: several worker processes",
        "",
        f"Run `.venv/bin/python bench/workers_bench.py` (this file is rewritten). Last run: "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        f"Closed loop, {CONNS} keep-alive connections from one load process, {a.seconds:g} s per figure after a 2 s "
        "warm-up; 240 different request bodies in turn. Without the response cache (`SPINEMETS_RESPONSE_CACHE=0`) "
        "every request is computed; with it (the default), the 240 bodies fit in the cache and the warm-up fills "
        "it, so those rows measure cache hits of varied bodies (each worker has its own cache). The load process "
        f"shares the {cores} cores with the servers.",
        "",
        "| endpoint | response cache | 1 worker (baseline) | " + f"{cores} workers | ratio |",
        "|---|---|---|---|---|",
    ]
    for cache in (False, True):
        for kind in ("sins", "assess"):
            one, many = results[(1, kind, cache)], results[(cores, kind, cache)]
            errors = one["errors"] + many["errors"]
            lines.append(f"| POST /api/v1/{kind} | {'on (hits)' if cache else 'off'} | {one['rps']:.0f} req/s | "
                         f"{many['rps']:.0f} req/s | "
                         f"{many['rps'] / one['rps']:.2f}x{' (' + str(errors) + ' errors)' if errors else ''} |")
    lines += ["", f"Target (issue): from 1 to 2 workers at least 1.6x on 2 cores.", ""]
    publish(lines, OUT, not a.no_write)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        sys.exit(load_main(sys.argv[2:]))
    sys.exit(main())
