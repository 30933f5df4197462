"""Mutation testing of the clinical core and the audit trail (mutmut), in a scratch copy of the tree.

    python scripts/mutation.py            # the CI-sized subset (the ESCC grade)
    python scripts/mutation.py --full     # every module the testing policy names
    python scripts/mutation.py --module spinemets/pathway.py

The tracked files of the working tree are copied to a scratch folder (so mutmut's `mutants/` never lands in the
repository), mutmut is configured there for the chosen modules and the tests that exercise them, and the score
per module is printed. Each module must reach the floor in MODULES (the measured score minus a small margin);
the exit status is 1 when one does not, so CI can run the subset.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module (under src/) -> (tests that exercise it, floor in %); floors are the measured score minus a margin
MODULES: dict[str, tuple[list[str], float]] = {
    "spinemets/scores/escc.py": (["tests/test_escc.py"], 90.0),
    "spinemets/scores/sins.py": (["tests/test_sins.py"], 90.0),
    "spinemets/scores/noms.py": (["tests/test_noms.py"], 90.0),
    "spinemets/pathway.py": (["tests/test_pathway.py", "tests/test_pathway_groups.py", "tests/test_pathway_text.py"], 90.0),
    "spinemets/interpret/fracture.py": (["tests/test_fracture.py"], 90.0),
    "spinemets/interpret/marrow.py": (["tests/test_marrow.py"], 90.0),
    "spinemets/interpret/primaries.py": (["tests/test_primaries.py"], 90.0),
    "spinemets/interpret/probability.py": (["tests/test_probability.py"], 90.0),
    "spinemets/interpret/quantitative.py": (["tests/test_quantitative.py"], 90.0),
    "spinemets/store/audit.py": (["tests/test_store.py", "tests/test_store_hardening.py", "tests/test_audit_mutation.py"], 90.0),
    "spinemets/reports/prefill.py": (["tests/test_extract.py", "tests/test_prefill.py"], 90.0),
}
# The CI subset: the ESCC grade (503 mutants, about two minutes). SINS runs hypothesis properties for every mutant and the
# audit trail its store tests (both minutes per hundred mutants on two cores), so they are in the full run, on demand;
# see docs/testing.md.
CI_SUBSET = ["spinemets/scores/escc.py"]

# Mutants accepted as equivalent or as not changing clinical meaning, one JSON file per module
# ({mutant name: reason}); listed in docs/testing.md.
EQUIVALENT_DIR = ROOT / "tests" / "data" / "mutation_equivalent"

STATUS_LINE = re.compile(r"^\s*(spinemets\.[\w.]+?)\.(x_\w+?|x\u01c1\w+?)__mutmut_(\d+): (\w[\w ]*)$")


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = raw.decode()
        src = ROOT / rel
        if not src.is_file():  # deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _configure(work: Path, modules: list[str]) -> None:
    tests = sorted({t for m in modules for t in MODULES[m][0]})
    lines = [
        "",
        "[tool.mutmut]",
        "source_paths = " + json.dumps([f"src/{m}" for m in modules]),
        "pytest_add_cli_args_test_selection = " + json.dumps(tests),
        # the PostgreSQL and browser variants exercise the same code as the SQLite ones; keep each mutant fast
        # the source scan for numbers in code reads the mutated files, whose mutants are numbers by design
        'pytest_add_cli_args = ["-m", "not pg and not browser", "-k", "not test_no_clinical_numbers_in_interpretation_code",'
        ' "-p", "no:cacheprovider", "-q"]',
        'also_copy = ["src/spinemets", "tests", "examples"]',
    ]
    with (work / "pyproject.toml").open("a") as fh:
        fh.write("\n".join(lines) + "\n")


def _module_of(dotted: str) -> str:
    return dotted.replace(".", "/") + ".py"


def parse_results(text: str) -> dict[str, Counter]:
    """Counts of mutant outcomes per module from `mutmut results --all true`."""
    per: dict[str, Counter] = {}
    for line in text.splitlines():
        m = STATUS_LINE.match(line)
        if not m:
            continue
        module = _module_of(m.group(1))
        per.setdefault(module, Counter())[m.group(4).strip()] += 1
    return per


def survivors(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        m = STATUS_LINE.match(line)
        if m and m.group(4).strip() in {"survived", "no tests"}:
            out.append(f"{m.group(1)}.{m.group(2)}__mutmut_{m.group(3)}")
    return out


def load_accepted() -> dict[str, str]:
    """Every accepted mutant with its reason."""
    out: dict[str, str] = {}
    for f in sorted(EQUIVALENT_DIR.glob("*.json")):
        out.update(json.loads(f.read_text(encoding="utf-8")))
    return out


def score(counts: Counter, accepted: int = 0) -> float:
    """Killed (caught by a test, a timeout or a crash) over all mutants less the accepted equivalents."""
    caught = counts["killed"] + counts["timeout"] + counts["segfault"] + counts["suspicious"]
    total = sum(counts.values()) - counts["skipped"] - accepted
    return 100.0 * caught / total if total else 100.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="every module, not only the CI subset")
    ap.add_argument("--module", action="append", default=[], help="one module under src/, repeatable")
    ap.add_argument("--workdir", type=Path, help="scratch folder to use (kept); default: a temporary one")
    ap.add_argument("--children", type=int, default=2)
    ap.add_argument("--survivors", type=Path, help="write the surviving mutants with their diffs here")
    args = ap.parse_args(argv)

    modules = args.module or (list(MODULES) if args.full else CI_SUBSET)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s): {', '.join(unknown)}; known: {', '.join(MODULES)}")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="spinemets-mutation-"))
    if work.exists() and any(work.iterdir()) and not (work / "mutants").exists():
        shutil.rmtree(work)
    if not (work / "pyproject.toml").exists():
        work.mkdir(parents=True, exist_ok=True)
        _copy_tree(work)
        _configure(work, modules)
    mutmut = [sys.executable, "-m", "mutmut"]
    run = subprocess.run([*mutmut, "run", "--max-children", str(args.children)], cwd=work)
    if run.returncode not in (0, 1):  # mutmut exits 1 when mutants survive
        print(f"mutmut run failed with exit status {run.returncode}", file=sys.stderr)
        return 2
    text = subprocess.run(
        [*mutmut, "results", "--all", "true"], cwd=work, capture_output=True, text=True, check=True
    ).stdout
    per = parse_results(text)
    accepted_all = load_accepted()
    left = survivors(text)
    accepted_left = [s for s in left if s in accepted_all]
    failed = False
    print(f"{'module':40} {'mutants':>8} {'killed':>7} {'equiv.':>7} {'survived':>9} {'score':>7} {'floor':>6}")
    for module in modules:
        counts = per.get(module, Counter())
        acc = sum(1 for s in accepted_left if _module_of(s.rsplit(".", 1)[0]) == module)
        sc = score(counts, acc)
        floor = MODULES[module][1]
        caught = counts["killed"] + counts["timeout"] + counts["segfault"] + counts["suspicious"]
        surv = counts["survived"] + counts["no tests"] - acc
        flag = "" if sc >= floor else "  BELOW FLOOR"
        failed |= sc < floor
        print(f"{module:40} {sum(counts.values()):8} {caught:7} {acc:7} {surv:9} {sc:6.1f}% {floor:5.0f}%{flag}")
    if args.survivors:
        with args.survivors.open("w") as fh:
            for name in left:
                if name in accepted_all:
                    continue
                diff = subprocess.run([*mutmut, "show", name], cwd=work, capture_output=True, text=True).stdout
                fh.write(f"### {name}\n{diff}\n")
    print(f"scratch copy: {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
