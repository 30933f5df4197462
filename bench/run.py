"""Benchmarks for spinemets.  Run with `make bench`; results go to docs/benchmarks.md.

Measures, each beside a baseline measured in the same run:
* in-process `assess` on the full example case (median and p95 over many runs, after warm-up), against validating
  the same case with pydantic (the least any call must do);
* in-process `sins` alone, against validating its input;
* the knowledge-base load in a fresh process from the compiled snapshot, against validating it from the YAML files
  (the parsed-JSON path) and parsing the YAML alone;
* CLI start-up: `spinemets --help` wall time over repeated runs (new process each time), against `python -c pass`.
Targets (issues 2 and 17): median assess <= 150 us; knowledge-base load <= 20 ms; `spinemets --help` < 0.5 s.
The other benchmarks (install size, report reading, workers, the web, ask, the store) have their own files; the
table ends with where to find them.
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


def cycle(fn, items):
    """A call of *fn* on the next of *items* each time (varied inputs: no result is computed twice in a row)."""
    state = {"i": 0}

    def call() -> None:
        i = state["i"]
        state["i"] = (i + 1) % len(items)
        fn(items[i])

    return call


REFUSED: list[str] = []


def varied_cases(core: dict, n: int) -> list[dict]:
    """*n* variations of the example case: SINS components, ESCC findings, NOMS inputs, pre-test probability, test
    results and the histology's spelling drawn at random (seeded). The histology lookup is memoised per spelling
    and knowledge base (a bounded cache), so 12 spellings measure it mostly as cache hits, as in a clinic."""
    import random

    from spinemets.levels import ORDER
    from spinemets.scores.sins import COMPONENTS, ENUMS

    rng = random.Random(17)
    histologies = ["renal cell carcinoma", "prostate cancer", "breast carcinoma", "multiple myeloma", "melanoma",
                   "lymphoma", "lung adenocarcinoma", "thyroid cancer", "colorectal carcinoma", "hepatocellular carcinoma",
                   "myeloma", "small cell lung cancer"]
    findings = ("epidural_disease", "thecal_sac_deformed", "cord_abutted", "cord_compressed", "csf_visible")
    out = []
    for _ in range(n):
        case = json.loads(json.dumps(core))
        case["sins"] = {"level": rng.choice(ORDER), **{c: rng.choice([m.value for m in ENUMS[c]])
                                                       for c in COMPONENTS if c != "location"}}
        step = rng.randint(0, 4)  # the findings of one grade, from epidural disease alone to no CSF around the cord
        case["escc"] = dict(zip(findings, (True, step >= 1, step >= 2, step >= 3, step < 4)))
        case["patient"] = {"histology": rng.choice(histologies), "myelopathy": rng.random() < 0.3,
                           "fit_for_surgery": rng.random() < 0.7}
        case["probability"] = {"pre_test": round(rng.uniform(0.05, 0.95), 3),
                               "tests": [{"modality": rng.choice(["mri", "ct", "bone_scan"]),
                                          "result": rng.choice(["positive", "negative"])}]}
        out.append(case)
    from spinemets import assess
    from spinemets.errors import SpinemetsError

    kept = []
    for case in out:  # (a random case the core refuses, e.g. a contradictory one, is left out)
        try:
            assess(case)
        except SpinemetsError as exc:
            REFUSED.append(str(exc))
            continue
        kept.append(case)
    return kept


def fresh_ms(code: str, runs: int = 7) -> float:
    """Median wall time of a fresh interpreter running *code* (ms)."""
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        walls.append((time.perf_counter() - t) * 1000)
    return statistics.median(walls)


KB_SNAPSHOT = ("import time; from spinemets.knowledge import loader; t=time.perf_counter(); loader.load_kb(); "
               "print((time.perf_counter()-t)*1000)")
KB_FILES = ("import time; from spinemets.knowledge import loader; t=time.perf_counter(); "
            "loader._PARSED = loader._parsed_snapshot(loader.DATA_DIR); loader._load(loader.DATA_DIR); "
            "print((time.perf_counter()-t)*1000)")
KB_YAML = ("import time, yaml; from spinemets.knowledge import loader; t=time.perf_counter(); "
           "[yaml.load(f.read_text(), Loader=loader._Loader) for f in sorted(loader.DATA_DIR.rglob('*.yaml'))]; "
           "print((time.perf_counter()-t)*1000)")


def in_process_ms(code: str, runs: int = 7) -> float:
    """Median of the time a fresh interpreter reports for the timed part of *code* (ms)."""
    out = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        out.append(float(r.stdout.strip().splitlines()[-1]))
    return statistics.median(out)


def main() -> None:
    from spinemets import assess, sins
    from spinemets.assess import CaseDocument
    from spinemets.knowledge.loader import load_kb
    from spinemets.scores.sins import SinsInput

    load_kb()
    case = json.loads((ROOT / "examples" / "full_case.json").read_text())
    sins_in = case["sins"]
    core = {k: v for k, v in case.items() if k != "pathway"}
    rows = []
    base, _ = timeit(lambda: CaseDocument.model_validate(core), 3000)
    med, p95 = timeit(lambda: assess(core), 3000)
    rows.append(("validate the case (baseline)", base, None, 1.0, ""))
    rows.append(("assess: SINS + ESCC + NOMS + probability (the full example case)", med, p95, med / base,
                 "median <= 150 us"))
    med, p95 = timeit(lambda: assess(case), 1000)
    rows.append(("assess: the same plus the imaging pathway", med, p95, med / base, ""))
    varied = varied_cases(core, 240)
    vbase, _ = timeit(cycle(lambda c: CaseDocument.model_validate(c), varied), 3000)
    med, p95 = timeit(cycle(assess, varied), 3000)
    rows.append((f"validate {len(varied)} varied cases in turn (baseline)", vbase, None, 1.0, ""))
    rows.append((f"assess: {len(varied)} varied cases in turn (SINS, ESCC, NOMS, probability; 12 histology spellings; "
                 f"{240 - len(varied)} drawn cases the core refuses left out)", med, p95, med / vbase, "median <= 150 us"))
    sbase, _ = timeit(lambda: SinsInput.model_validate(sins_in), 5000)
    med, p95 = timeit(lambda: sins(sins_in), 5000)
    rows.append(("validate a SINS input (baseline)", sbase, None, 1.0, ""))
    rows.append(("sins (complete)", med, p95, med / sbase, ""))
    med, p95 = timeit(lambda: assess({"escc": case["escc"]}), 5000)
    rows.append(("escc (findings), through assess", med, p95, med / base, ""))

    load_kb()  # the compiled snapshot exists for this version
    kb_snapshot = in_process_ms(KB_SNAPSHOT)
    kb_files = in_process_ms(KB_FILES)
    kb_yaml = in_process_ms(KB_YAML)
    exe = str(Path(sys.executable).with_name("spinemets"))
    walls = []
    for _ in range(15):
        t = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        walls.append((time.perf_counter() - t) * 1000)
    walls.sort()
    bare = fresh_ms("pass")

    lines = [
        "# Benchmarks",
        "",
        f"Run `make bench` (this file is rewritten by `bench/run.py`). Last run: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"on {machine()}. Each figure beside a baseline measured in the same run.",
        "",
        "| what | median | p95 | ratio to its baseline | target |",
        "|---|---|---|---|---|",
    ]
    for name, m, p, ratio, target in rows:
        lines.append(f"| {name} | {m:.1f} us | {'' if p is None else f'{p:.1f} us'} | {ratio:.1f}x | {target} |")
    lines += [
        "",
        "| fresh process | median | ratio | target |",
        "|---|---|---|---|",
        f"| `python -c pass` (baseline) | {bare:.1f} ms | 1.0x | |",
        f"| `spinemets --help` | {statistics.median(walls):.1f} ms | {statistics.median(walls) / bare:.1f}x | < 500 ms |",
        "",
        "| knowledge-base load in a fresh process (7 runs, median) | time | ratio | target |",
        "|---|---|---|---|",
        f"| parse the YAML files alone (baseline) | {kb_yaml:.1f} ms | 1.00x | |",
        f"| validate every item again from the parsed-JSON snapshot (the load before the compiled snapshot) | "
        f"{kb_files:.1f} ms | "
        f"{kb_files / kb_yaml:.2f}x | |",
        f"| load (the compiled snapshot, what every process does) | {kb_snapshot:.1f} ms | {kb_snapshot / kb_yaml:.2f}x | "
        "<= 20 ms |",
        "",
        "Elsewhere: the install ([benchmarks-install.md](benchmarks-install.md)), report reading "
        "([benchmarks-extract.md](benchmarks-extract.md), [benchmarks-extract-scale.md](benchmarks-extract-scale.md): "
        "first extraction, pool and Dask), several workers ([benchmarks-workers.md](benchmarks-workers.md)), the web "
        "([benchmarks-web.md](benchmarks-web.md)), ask ([benchmarks-ask.md](benchmarks-ask.md)), the store "
        "([benchmarks-store.md](benchmarks-store.md)), CDS Hooks calls ([benchmarks-cds.md](benchmarks-cds.md)). What is kept between calls and what is built without "
        "validating again: [performance.md](performance.md).",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
