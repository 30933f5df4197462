"""``spinemets extract`` and ``spinemets extract-eval``: registered by the CLI's plugin hook.

Import-light on purpose (argparse only): spaCy and medspaCy are imported inside the commands.

``spinemets extract REPORT.txt`` (or ``-``/no argument for standard input) reads one report and prints its
findings and pre-filled scores (``--json`` for the result document).  A folder of ``.txt`` files, a ``.csv``
or a ``.jsonl`` file is a batch: one JSONL (or CSV) row per report on standard output or ``--output FILE``,
with a progress bar on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_KB, EXIT_INVALID, EXIT_INSUFFICIENT = 0, 1, 2, 3
NOT_REPORTS = {".pdf", ".doc", ".docx", ".rtf", ".odt", ".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".dcm",
               ".zip", ".gz", ".xlsx", ".xls", ".html", ".htm", ".xml", ".json", ".yaml", ".yml", ".exe", ".bin"}


def _print(text: str) -> None:
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # pragma: no cover - spinemets extract ... | head
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def read_report_file(path: str | None) -> str:
    """The text of one report (a text file, or standard input for None / '-'); errors name ``report``."""
    from spinemets.errors import InvalidInputError
    from spinemets.reports.extract import MAX_CHARS

    if path in (None, "-"):
        data = sys.stdin.buffer.read(MAX_CHARS * 4 + 1)
        name = "standard input"
    else:
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in NOT_REPORTS or (suffix and suffix not in (".txt", ".text", ".md", ".report")):
            raise InvalidInputError("report", f"{p.name}: {suffix} is not a text report; give a .txt file, "
                                    "a folder of .txt files, a .csv or a .jsonl file")
        try:
            with p.open("rb") as fh:
                data = fh.read(MAX_CHARS * 4 + 1)
        except FileNotFoundError:
            raise InvalidInputError("report", f"{path}: no such file") from None
        except IsADirectoryError:  # pragma: no cover - folders are batches
            raise InvalidInputError("report", f"{path}: is a folder") from None
        except OSError as exc:
            raise InvalidInputError("report", f"{path}: cannot read it: {exc.strerror}") from None
        name = p.name
    if b"\x00" in data:
        raise InvalidInputError("report", f"{name}: a binary file, not a text report")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError("report", f"{name}: not UTF-8 text") from None


def cmd_extract(a: argparse.Namespace) -> int:
    from spinemets.reports.batch import format_for, is_batch, run_batch

    if a.report not in (None, "-") and is_batch(a.report):
        from spinemets.errors import InvalidInputError

        if a.level:
            raise InvalidInputError("level", "--level is for one report; a batch pre-fills each report's most affected level")
        if a.every_level:
            raise InvalidInputError("every_level", "--every-level is for one report; a batch pre-fills each report's "
                                                   "most affected level")
        if a.dask or a.scheduler:
            return _extract_on_dask(a)
        if a.format == "parquet":
            raise InvalidInputError("format", "parquet output is written in part files by --dask; without it choose "
                                              "jsonl or csv")
        fmt = format_for(a.output, a.format)
        out = open(a.output, "w", encoding="utf-8", newline="") if a.output else None
        try:
            summary = run_batch(a.report, out, fmt, pain=a.pain, rules=a.rules, text_column=a.text_column,
                                id_column=a.id_column, progress=not a.no_progress, workers=a.workers)
        finally:
            if out is not None:
                out.close()
        where = f" to {a.output}" if a.output else ""
        print(f"extract: {summary.reports} reports{where}, {summary.errors} with errors", file=sys.stderr)
        return EXIT_INVALID if summary.reports and summary.errors == summary.reports else EXIT_OK

    from spinemets.reports.extract import extract

    result = extract(read_report_file(a.report), pain=a.pain, level=a.level, rules=a.rules, every_level=a.every_level)
    _print(result.model_dump_json(indent=2) if a.json else result.to_text())
    return EXIT_OK if result.status == "complete" else EXIT_INSUFFICIENT


def _extract_on_dask(a: argparse.Namespace) -> int:
    from spinemets.errors import InvalidInputError
    from spinemets.reports.archive import run_archive

    if not a.output:
        raise InvalidInputError("output", "--dask writes part files: give the output folder with -o FOLDER")
    out = Path(a.output)
    if out.suffix.lower() in (".csv", ".jsonl", ".ndjson", ".parquet") and not out.is_dir():
        # never guess: a name like findings.csv asks for one file, and the format from the name would be a guess
        raise InvalidInputError("output", f"{a.output} looks like a file, but --dask writes part files into a folder: "
                                          "give a folder, and the format with --format (parquet, jsonl or csv)")
    summary = run_archive(a.report, a.output, a.format or "parquet", pain=a.pain, rules=a.rules,
                          text_column=a.text_column, id_column=a.id_column, partition_size=a.partition_size,
                          workers=a.workers, scheduler=a.scheduler, progress=not a.no_progress)
    resumed = f", {summary.skipped} of {summary.partitions} partitions already done" if summary.skipped else ""
    print(f"extract: {summary.reports} reports to {a.output} in {summary.partitions} part files{resumed}, "
          f"{summary.errors} with errors", file=sys.stderr)
    return EXIT_INVALID if summary.reports and summary.errors == summary.reports else EXIT_OK


def cmd_extract_eval(a: argparse.Namespace) -> int:
    from spinemets.reports.evaluate import FIELDS, evaluate, evaluate_levels

    if a.per_level:
        levels = evaluate_levels(a.set, data_dir=a.data)
        if a.json:
            _print(levels.model_dump_json(indent=2, exclude=set() if a.verbose else {"misses"}))
        else:
            _print(levels.to_text(verbose=a.verbose))
        return EXIT_OK

    report = evaluate(a.set, data_dir=a.data, rules=a.rules)
    if a.json:
        _print(json.dumps(report.as_dict(verbose=a.verbose), indent=2))
    else:
        _print(report.to_text(verbose=a.verbose))
    if a.fail_under is not None:
        low = [f.field for f in report.fields if f.field in FIELDS and f.f1 is not None and f.f1 < a.fail_under]
        if low:
            print(f"extract-eval: F1 under {a.fail_under} for {', '.join(low)}", file=sys.stderr)
            return EXIT_KB
    return EXIT_OK


def register(sub: Any, add: Any) -> None:
    e = add("extract", cmd_extract, "read a spine MRI/CT report: findings and pre-filled SINS, ESCC and fracture inputs")
    e.add_argument("report", nargs="?", help="report text file (- or nothing: standard input); a folder, .csv or .jsonl "
                   "is a batch")
    e.add_argument("--pain", metavar="mechanical|occasional|none", help="SINS pain (clinical; never read from the report)")
    e.add_argument("--level", help="pre-fill for this level instead of the most affected one, e.g. T7")
    e.add_argument("--every-level", action="store_true",
                   help="also pre-fill each other level with a finding, from the findings that name that level")
    e.add_argument("--rules", metavar="FILE", help="a site's extra phrasing rules, YAML or JSON "
                   "(default $SPINEMETS_REPORT_RULES)")
    b = e.add_argument_group("batch (a folder, .csv, .jsonl or .parquet)")
    b.add_argument("--output", "-o", metavar="FILE", help="write here (default standard output; with --dask a folder)")
    b.add_argument("--format", choices=("jsonl", "csv", "parquet"),
                   help="output format (default from --output's suffix, else jsonl; parquet, the --dask default, only "
                        "with --dask)")
    b.add_argument("--text-column", default="text", help="CSV column or JSON key holding the report (default text)")
    b.add_argument("--id-column", default="id", help="CSV column or JSON key holding its id (default id)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar on standard error")
    b.add_argument("--workers", type=int, metavar="N", help="processes sharing the batch (default: every core)")
    d = e.add_argument_group("archive scale on Dask (the archive extra)")
    d.add_argument("--dask", action="store_true", help="run on a Dask cluster: a local one with --workers processes, "
                   "or --scheduler's; part files in the -o folder, resumable")
    d.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="an existing Dask scheduler (implies --dask)")
    d.add_argument("--partition-size", type=int, default=500, metavar="N",
                   help="reports per partition and part file (default 500)")

    v = add("extract-eval", cmd_extract_eval, "score the report extractor on an annotated report set (per-field P/R/F1)")
    v.add_argument("--set", default="dev", help="dev (default) or holdout, or another set in --data")
    v.add_argument("--data", metavar="DIR", help="folder with <set>/ and <set>.gold.yaml (default tests/data/reports "
                   "of the source tree)")
    v.add_argument("--rules", metavar="FILE", help="a site's extra phrasing rules")
    v.add_argument("--verbose", action="store_true", help="list every disagreement with the gold annotations")
    v.add_argument("--per-level", action="store_true",
                   help="score the pre-fill of every lesion level (a set annotated lesion by lesion)")
    v.add_argument("--fail-under", type=float, metavar="F1", help="exit 1 when a field's F1 is below this")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run through the spinemets command")
