#!/usr/bin/env python3
"""Store benchmark: write and read throughput of saved assessments on SQLite and on PostgreSQL.

    .venv/bin/python bench/store_bench.py [--seconds 4] [--no-write]

Two layers, each on both databases:
* HTTP: one `spinemets serve` (uvicorn, 1 worker) on a free loopback port, clients in threads of this
  process (httpx, keep-alive, API token).  Write = POST /api/v1/assessments (assess the example case, insert,
  append the audit row, commit); read = GET /api/v1/assessments/{id} and GET /api/v1/assessments?patient_ref=
  (both audited, so each read is also a small write).
* store layer: the repository functions in-process, one thread, no HTTP (what the database work costs).

SQLite: a file on the local disk (WAL, synchronous=FULL).  PostgreSQL: a throwaway cluster from Debian's
package (spinemets.store.pgcluster) with fsync and synchronous_commit on, its data on the same disk.
Results go to docs/benchmarks-store.md with the machine and the date.  Every loop is bounded in time and
request count; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from machine import machine  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "docs" / "benchmarks-store.md"
CASE = json.loads((ROOT / "examples" / "full_case.json").read_text())
PASSWORD = "benchmark password"
MAX_REQUESTS = 100_000


def versions() -> str:
    import importlib.metadata as md

    out = [f"{p} {md.version(p)}" for p in ("sqlalchemy", "alembic", "psycopg", "uvicorn")]
    import sqlite3

    out.append(f"SQLite {sqlite3.sqlite_version}")
    try:
        from spinemets.store.pgcluster import bindir

        v = subprocess.run([str(bindir() / "postgres"), "--version"], capture_output=True, text=True, timeout=10).stdout
        out.append(v.strip().replace("postgres (PostgreSQL) ", "PostgreSQL "))
    except Exception:
        pass
    return ", ".join(out)


def prepare(url: str) -> tuple[str, list[str]]:
    """Migrate, add a user and a token, save 200 assessments to read; returns (token, ids)."""
    from spinemets.store import repository as repo
    from spinemets.store.db import Store

    st = Store(url)
    st.upgrade()
    with st.session(write=True) as s:
        u = repo.create_user(s, repo.system("bench"), {"username": "bench", "password": PASSWORD})
        secret, _ = repo.create_token(s, repo.system("bench"), u, {"name": "bench"})
        actor = repo.Actor.of(u, "bench")
        inp = repo.SaveInput.model_validate({"case": CASE, "patient_ref": "BENCH-0"})
        ids = [repo.save(s, actor, inp.model_copy(update={"patient_ref": f"BENCH-{i % 20}"})).id for i in range(200)]
    st.dispose()
    return secret, ids


def http_run(base: str, token: str, kind: str, ids: list[str], clients: int, seconds: float) -> dict:
    import httpx

    counts = [0] * clients
    errors = [0] * clients
    lat: list[list[float]] = [[] for _ in range(clients)]
    stop_at = time.monotonic() + seconds

    def work(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60, headers={"authorization": f"Bearer {token}"}) as c:
            n = 0
            while time.monotonic() < stop_at and n < MAX_REQUESTS:
                t0 = time.perf_counter()
                if kind == "write":
                    r = c.post("/api/v1/assessments", json={"case": CASE, "patient_ref": f"W-{i}", "note": str(n)})
                    ok = r.status_code == 201
                elif kind == "read":
                    r = c.get(f"/api/v1/assessments/{ids[(i * 7919 + n) % len(ids)]}")
                    ok = r.status_code == 200
                else:
                    r = c.get("/api/v1/assessments", params={"patient_ref": f"BENCH-{n % 20}", "limit": 20})
                    ok = r.status_code == 200
                lat[i].append(time.perf_counter() - t0)
                counts[i] += ok
                errors[i] += not ok
                n += 1

    t0 = time.monotonic()
    ts = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    elapsed = time.monotonic() - t0
    all_lat = sorted(x for xs in lat for x in xs)
    p = (lambda q: all_lat[min(len(all_lat) - 1, int(q * len(all_lat)))] * 1000) if all_lat else (lambda q: float("nan"))
    return {"rate": sum(counts) / elapsed, "errors": sum(errors), "p50": p(0.5), "p99": p(0.99), "n": sum(counts)}


def layer_run(url: str, kind: str, ids: list[str], seconds: float) -> dict:
    from spinemets.store import repository as repo
    from spinemets.store.db import Store

    st = Store(url)
    with st.session() as s:
        actor = repo.Actor.of(repo.get_user(s, "bench"), "bench")
    inp = repo.SaveInput.model_validate({"case": CASE, "patient_ref": "L-1"})
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and n < MAX_REQUESTS:
        with st.session(write=True) as s:
            if kind == "write":
                repo.save(s, actor, inp)
            elif kind == "read":
                repo.full_dict(*repo.get(s, actor, ids[n % len(ids)]))
            else:
                repo.listing(s, actor, {"patient_ref": f"BENCH-{n % 20}", "limit": 20})
        n += 1
    rate = n / (time.monotonic() - t0)
    st.dispose()
    return {"rate": rate}


def serve(url: str) -> tuple[subprocess.Popen, str]:
    import httpx

    from spinemets.api.devserver import HOST, free_port

    port = free_port()
    exe = Path(sys.executable).with_name("spinemets")
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([str(exe), "serve", "--host", HOST, "--port", str(port), "--no-access-log", "--log-level",
                             "warning"], env={**os.environ, "SPINEMETS_DATABASE_URL": url}, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/api/v1/ping", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    log.seek(0)
    raise RuntimeError(f"spinemets serve did not start:\n{log.read()[-2000:]}")


def bench_backend(name: str, url: str, seconds: float) -> dict:
    token, ids = prepare(url)
    out: dict = {"layer": {}, "http": {}}
    for kind in ("write", "read", "list"):
        out["layer"][kind] = layer_run(url, kind, ids, seconds / 2)
        print(f"{name:<10} store layer {kind:<5} {out['layer'][kind]['rate']:8.1f}/s", flush=True)
    proc, base = serve(url)
    try:
        for clients in (1, 8):
            for kind in ("write", "read", "list"):
                r = http_run(base, token, kind, ids, clients, seconds)
                out["http"][(kind, clients)] = r
                print(f"{name:<10} HTTP {kind:<5} x{clients}  {r['rate']:8.1f}/s  p50 {r['p50']:6.1f} ms  "
                      f"p99 {r['p99']:6.1f} ms  errors {r['errors']}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return out


LABEL = {"write": "write: save an assessment", "read": "read: open one", "list": "read: search by patient (20 rows)"}


def report(results: dict, seconds: float, pg_note: str | None) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    lines = [
        "# Store benchmarks",
        "",
        f"Run `.venv/bin/python bench/store_bench.py` (this file is rewritten by it). Last run: {now}",
        f"on {machine()}; {versions()}. Load average before the run: {load}.",
        "",
        "Every save assesses the example case (`examples/full_case.json`), inserts it and appends an audit row in "
        "the same transaction; every read is audited too (so it is also a small write). SQLite: a file on the local "
        "disk in WAL mode with `synchronous=FULL`; PostgreSQL: a throwaway local cluster (Debian's package) with "
        "`fsync` and `synchronous_commit` on. Appends to the audit chain are serialised (SQLite's write lock, "
        "`SELECT ... FOR UPDATE` of the chain head on PostgreSQL), which bounds write throughput on both.",
        "",
    ]
    if pg_note:
        lines += [f"**PostgreSQL was not measured: {pg_note}**", ""]
    lines += ["## Over HTTP (`spinemets serve`, 1 worker; keep-alive clients with an API token)", "",
              f"{seconds:g} s per row.", "",
              "| database | operation | clients | per second | p50 | p99 | errors |", "|---|---|---|---|---|---|---|"]
    for db, res in results.items():
        for (kind, clients), r in res["http"].items():
            lines.append(f"| {db} | {LABEL[kind]} | {clients} | {r['rate']:.0f} | {r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['errors']} |")
    lines += ["", "## Store layer (repository functions in-process, one thread, no HTTP)", "",
              "| database | operation | per second |", "|---|---|---|"]
    for db, res in results.items():
        for kind, r in res["layer"].items():
            lines.append(f"| {db} | {LABEL[kind]} | {r['rate']:.0f} |")
    lines += ["", "A save runs `assess` on the full example case (about 1 ms; see benchmarks-web.md) and commits with "
              "an fsync; an HTTP save also parses the case and returns the saved assessment with every result. "
              "The clients run on the same machine as the server (and, for PostgreSQL, the database), so the "
              "8-client rows show saturation: throughput stays flat and the latency is the queue. More workers "
              "(`spinemets serve --workers N`) add CPU for `assess`, not for the commits, which queue on the audit "
              "chain.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="duration of each HTTP row (default 4)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not rewrite docs/benchmarks-store.md")
    a = ap.parse_args(argv)
    from spinemets.store.pgcluster import Cluster, Unavailable

    results: dict = {}
    work = Path(tempfile.mkdtemp(prefix="spinemets-store-bench-", dir="/var/tmp" if Path("/var/tmp").is_dir() else None))
    pg_note = None
    try:
        results["SQLite"] = bench_backend("SQLite", f"sqlite:///{work / 'bench.db'}", a.seconds)
        try:
            with Cluster(fsync=True) as c:
                results["PostgreSQL"] = bench_backend("PostgreSQL", c.url(c.create_database("bench")), a.seconds)
        except Unavailable as exc:
            pg_note = str(exc)
            print(f"!!! PostgreSQL not measured: {exc}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(results, a.seconds, pg_note)
    if a.no_write:
        print(text)
    else:
        OUT.write_text(text)
        print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
