#!/usr/bin/env python
"""Score spinemets against hold-out set 1.

    python score.py [--keep DIR] [--spinemets PATH]

Makes a fresh OUTDIR with make.py (a temporary folder unless --keep), checks
that the regenerated expectations equal the stored cases.json, runs every case
and prints PASS/FAIL per case with actual against expected, then the summary
line "holdout1: N passed, M failed of T".  Exit status 0 when all pass.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path("/work/main/.venv/bin")


def lookup(doc, dotted):
    cur = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(dotted)
        cur = cur[part]
    return cur


def in_process(args):
    """The command run by spinemets' own main() in this process (added by the project for the test suite's speed:
    the same command line, without a new interpreter per case)."""
    import contextlib
    import io
    import types

    from spinemets.cli import main as spinemets_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = spinemets_main(args)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def run_case(exe, case, outdir):
    args = [a.replace("{out}", str(outdir)) for a in case["args"]]
    if exe == "in-process":
        return check_case(in_process(args), case)
    try:
        p = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False, ["timed out after 120 s"]
    return check_case(p, case)


def check_case(p, case):
    exp = case["expect"]
    problems = []
    if p.returncode != exp["exit"]:
        msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
        problems.append(f"exit {p.returncode} != expected {exp['exit']}" + (f" ({msg[-1][:200]})" if msg else ""))
        return False, problems
    if exp["exit"] != 0:
        text = (p.stderr + "\n" + p.stdout).lower()
        words = exp.get("message_any", [])
        if words and not any(w.lower() in text for w in words):
            problems.append(f"message {(p.stderr.strip() or p.stdout.strip())[:200]!r} has none of {words}")
            return False, problems
        return True, [f"exit {p.returncode}: {(p.stderr.strip() or p.stdout.strip()).splitlines()[-1][:120] if (p.stderr.strip() or p.stdout.strip()) else ''}"]
    try:
        doc = json.loads(p.stdout)
    except json.JSONDecodeError as e:
        return False, [f"stdout is not JSON ({e})"]
    notes = []
    ok = True
    for key, want in exp["values"].items():
        try:
            got = lookup(doc, key)
        except KeyError:
            ok = False
            notes.append(f"{key}: missing (expected {want['value']:.6g})")
            continue
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            ok = False
            notes.append(f"{key}: {got!r} is not a number (expected {want['value']:.6g})")
            continue
        diff = abs(got - want["value"])
        good = diff <= want["tol"] + 1e-12
        ok &= good
        notes.append(f"{key}: {'ok' if good else 'BAD'} actual {got:.6g} expected {want['value']:.6g}"
                     f" (|diff| {diff:.3g}, tol {want['tol']:g})")
    return ok, notes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="make the series in this folder (kept) instead of a temporary one")
    ap.add_argument("--spinemets", default=str(VENV_BIN / "spinemets"),
                    help="the spinemets command, or in-process (spinemets' main() in this interpreter)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the details of passing cases too")
    opt = ap.parse_args()

    stored = json.loads((HERE / "cases.json").read_text())
    tmp = None
    if opt.keep:
        outdir = Path(opt.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="holdout1-")
        outdir = Path(tmp.name)
    env = dict(os.environ, HOLDOUT1_NO_WRITE_CASES="1")
    python = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
    subprocess.run([str(python), str(HERE / "make.py"), str(outdir)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    fresh = json.loads((outdir / "cases.json").read_text())
    if fresh != stored:
        print("WARNING: make.py now gives expectations different from the stored cases.json; scoring the stored ones")

    passed = failed = 0
    for case in stored["cases"]:
        ok, notes = run_case(opt.spinemets, case, outdir)
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {case['name']}")
        if not ok or opt.verbose:
            for n in notes:
                print(f"    {n}")
            if not ok:
                print(f"    why expected: {case['rationale']}")
    total = passed + failed
    print(f"holdout1: {passed} passed, {failed} failed of {total}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
