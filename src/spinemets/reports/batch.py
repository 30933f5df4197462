"""Extract many reports: a folder of ``.txt`` files, a CSV or a JSONL file in; JSONL or CSV out.

Reports are read, processed and written one at a time (memory stays flat however many there are), with a
tqdm progress bar on standard error.  A report that cannot be read or processed (empty, too long, not
UTF-8, not valid JSON) gives an output row with ``error`` set; the others go on.

* folder: every ``*.txt`` file, sorted by name; the id is the file name without ``.txt``;
* CSV: one report per row, text in the ``text`` column (``--text-column``), id in ``id`` (``--id-column``,
  default the row number);
* JSONL: one JSON object per line with ``text`` and optionally ``id`` (or a bare JSON string).

JSONL output has one :class:`~spinemets.reports.extract.ExtractResult` per line (plus ``id`` and ``error``);
CSV output has one flat row per report: levels, diagnoses, the pre-filled SINS, ESCC, fracture and marrow
values, the ESCC grade, the findings in short, the knowledge-base version and the disclaimer.
"""

from __future__ import annotations

import csv
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from spinemets.errors import InvalidInputError, SpinemetsError

BATCH_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")
TEXT_SUFFIXES = (".txt", ".text", "")
FORMATS = ("jsonl", "csv")


@dataclass
class BatchSummary:
    reports: int = 0
    errors: int = 0
    output: str = "-"


def is_batch(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in BATCH_SUFFIXES


def _csv_reader(fh: TextIO) -> Any:
    csv.field_size_limit(max(csv.field_size_limit(), 10_000_000))
    return csv.DictReader(fh)


def count_reports(path: str | Path, text_column: str = "text") -> int | None:
    """How many reports the input holds (a streaming first pass; None when it cannot tell cheaply)."""
    p = Path(path)
    if p.is_dir():
        return sum(1 for f in p.iterdir() if f.is_file() and f.suffix.lower() == ".txt")
    if p.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        except Exception:  # noqa: BLE001 - not readable here: the reading itself says why
            return None
    try:
        with p.open(encoding="utf-8", errors="replace", newline="") as fh:
            if p.suffix.lower() == ".csv":
                return sum(1 for _ in _csv_reader(fh))
            return sum(1 for line in fh if line.strip())
    except OSError:
        return None


def iter_reports(path: str | Path, text_column: str = "text", id_column: str = "id") -> Iterator[tuple[str, str | None, str | None]]:
    """(id, text, error) for each report of a folder, CSV or JSONL file, read lazily."""
    p = Path(path)
    if p.is_dir():
        for f in sorted(x for x in p.iterdir() if x.is_file() and x.suffix.lower() == ".txt"):
            try:
                yield f.stem, f.read_text(encoding="utf-8"), None
            except UnicodeDecodeError:
                yield f.stem, None, "not UTF-8 text"
            except OSError as exc:
                yield f.stem, None, f"cannot read it: {exc.strerror}"
        return
    suffix = p.suffix.lower()
    if suffix not in BATCH_SUFFIXES:
        raise InvalidInputError("input", f"{p.name}: give a folder of .txt reports, a .csv, .jsonl or .parquet file")
    if suffix == ".parquet":
        yield from _iter_parquet(p, text_column, id_column)
        return
    try:
        fh = p.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise InvalidInputError("input", f"{path}: no such file or folder") from None
    except OSError as exc:
        raise InvalidInputError("input", f"{path}: cannot read it: {exc.strerror}") from None
    with fh:
        try:
            if suffix == ".csv":
                reader = _csv_reader(fh)
                fields = reader.fieldnames or []
                if text_column not in fields:
                    raise InvalidInputError("text_column", f"{p.name} has no column {text_column!r}; its columns: "
                                            f"{', '.join(fields) or '(none)'}")
                for i, row in enumerate(reader, start=1):
                    rid = (row.get(id_column) or "").strip() or str(i)
                    yield rid, row.get(text_column) or "", None
            else:
                for i, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        yield str(i), None, f"line {i}: not valid JSON ({exc.msg})"
                        continue
                    if isinstance(obj, str):
                        yield str(i), obj, None
                    elif isinstance(obj, dict):
                        rid = str(obj.get(id_column) if obj.get(id_column) is not None else i)
                        text = obj.get(text_column)
                        if not isinstance(text, str):
                            yield rid, None, f"line {i}: no text in {text_column!r}"
                        else:
                            yield rid, text, None
                    else:
                        yield str(i), None, f"line {i}: expected an object with {text_column!r} or a string"
        except UnicodeDecodeError:
            raise InvalidInputError("input", f"{p.name}: not UTF-8 text") from None


def _iter_parquet(p: Path, text_column: str, id_column: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(id, text, error) per row of a Parquet file, read a record batch at a time (needs pyarrow)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInputError("input", f"{p.name}: reading Parquet needs pyarrow (pip install 'spinemets[archive]')") from None
    try:
        f = pq.ParquetFile(p)
    except FileNotFoundError:
        raise InvalidInputError("input", f"{p}: no such file or folder") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow's own errors: not a Parquet file, damaged ...
        raise InvalidInputError("input", f"{p.name}: not a readable Parquet file ({str(exc)[:200]})") from None
    names = f.schema_arrow.names
    if text_column not in names:
        raise InvalidInputError("text_column", f"{p.name} has no column {text_column!r}; its columns: {', '.join(names)}")
    columns = [text_column] + ([id_column] if id_column in names and id_column != text_column else [])
    i = 0
    for batch in f.iter_batches(columns=columns, batch_size=4096):
        data = batch.to_pydict()
        for k, text in enumerate(data[text_column]):
            i += 1
            given = data[id_column][k] if id_column in data else None
            rid = str(given) if given is not None and str(given).strip() else str(i)
            if not isinstance(text, str):
                yield rid, None, f"row {i}: no text in {text_column!r}"
            else:
                yield rid, text, None


def csv_columns(kb: Any) -> list[str]:
    from spinemets.interpret.fracture import TABLE
    from spinemets.interpret.marrow import DISC, SEQUENCES
    from spinemets.scores.escc import FINDINGS

    cols = ["id", "error", "status", "index_level", "levels", "regions", "diagnoses", "uncertain_diagnoses",
            "negated_diagnoses", "sins_level", "sins_pain", "sins_lesion", "sins_collapse", "sins_alignment",
            "sins_posterolateral", "escc_grade_stated", *[f"escc_{f}" for f in FINDINGS], "escc_grade"]
    cols += [f"fracture_{r.id}" for r in kb.table(TABLE).rows]
    cols += [f"marrow_{s}" for s in (*SEQUENCES, DISC)]
    cols += ["findings", "impression", "kb_version", "disclaimer"]
    return cols


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def csv_row(rid: str, result: Any | None, error: str | None, kb: Any) -> dict[str, str]:
    row = {"id": rid, "error": error or "", "kb_version": kb.version, "disclaimer": kb.manifest.disclaimer}
    if result is None:
        return row
    pre = result.prefill
    row.update({
        "status": result.status, "index_level": result.index_level or "", "levels": ";".join(result.levels),
        "regions": ";".join(result.regions), "diagnoses": ";".join(result.diagnoses),
        "uncertain_diagnoses": ";".join(result.uncertain_diagnoses), "negated_diagnoses": ";".join(result.negated_diagnoses),
        "escc_grade": pre.escc_grade or "",
        "findings": " | ".join(f"{f.assertion} {','.join(f.levels) or '-'} {f.concept}={f.value} \"{f.text}\"" for f in result.findings),
        "impression": result.impression.text if result.impression else "",
    })
    for k, v in pre.sins.items():
        row[f"sins_{k}"] = _cell(v.value)
    for k, v in pre.escc.items():
        row["escc_grade_stated" if k == "grade" else f"escc_{k}"] = _cell(v.value)
    for k, v in pre.fracture.items():
        row[f"fracture_{k}"] = _cell(v.value)
    for k, v in pre.marrow.items():
        row[f"marrow_{k}"] = _cell(v.value)
    return row


# The worker processes' state: set in the parent before the pool is started (fork), so every worker inherits the
# pipeline already built instead of building its own.
_STATE: dict[str, Any] = {}
WINDOW = 256  # reports in flight at most, per worker: memory stays flat, order is kept
CHUNK = 16  # reports a worker takes at a time (small enough that the workers finish together)


def read_one(text: str | None, error: str | None, kb: Any, rs: Any, pipe: Any, pain: str | None) -> tuple[Any, str | None]:
    """One report of a batch -> (its result or None, the error that stopped it or None)."""
    from spinemets.reports.extract import check_text, read_text

    if error is not None:
        return None, error
    try:
        check_text(text)  # type: ignore[arg-type]
        return read_text(text, pipe, rs, kb, pain=pain), None  # type: ignore[arg-type]
    except SpinemetsError as exc:
        return None, str(exc)


def jsonl_line(rid: str, result: Any | None, error: str | None, kb: Any) -> str:
    """One report's JSON line: its id and error, then the whole result (or the version and disclaimer)."""
    record: dict[str, Any] = {"id": rid, "error": error}
    if result is not None:
        record.update(result.model_dump(mode="json"))
    else:
        record.update(kb_version=kb.version, disclaimer=kb.manifest.disclaimer)
    return json.dumps(record, ensure_ascii=False) + "\n"


def _one(item: tuple[str, str | None, str | None]) -> tuple[str | dict[str, str], bool]:
    """One report -> (its JSON line or CSV row, whether it failed); each result is serialised once."""
    rid, text, error = item
    kb, rs, pipe, pain, fmt = (_STATE[k] for k in ("kb", "rs", "pipe", "pain", "fmt"))
    result, error = read_one(text, error, kb, rs, pipe, pain)
    if fmt == "csv":
        return csv_row(rid, result, error, kb), error is not None
    return jsonl_line(rid, result, error, kb), error is not None


def default_workers() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_batch(
    path: str | Path,
    out: TextIO | None = None,
    fmt: str = "jsonl",
    *,
    pain: str | None = None,
    rules: str | None = None,
    text_column: str = "text",
    id_column: str = "id",
    progress: bool = True,
    progress_file: TextIO | None = None,
    workers: int | None = None,
) -> BatchSummary:
    """Extract every report of *path* and write one output row per report to *out* (default stdout).

    ``workers`` processes (default: every core this process may use) share the work; the pipeline is built once
    in this process and inherited by the workers.  Reports go to the pool in windows, in order, so the output
    keeps the input's order and memory stays flat; ``workers=1`` runs in this process."""
    from tqdm import tqdm

    from spinemets.knowledge.loader import load_kb
    from spinemets.reports.pipeline import get_pipeline
    from spinemets.reports.rules import load_rules

    if fmt not in FORMATS:
        raise InvalidInputError("format", f"{fmt!r} is not allowed; allowed values: {', '.join(FORMATS)}")
    p = Path(path)
    if not p.exists():
        raise InvalidInputError("input", f"{path}: no such file or folder")
    out = out or sys.stdout
    kb = load_kb()
    rs = load_rules(kb, rules)
    pipe = get_pipeline(rs)
    if pain is not None:
        from spinemets.scores.sins import normalise

        try:
            normalise("pain", pain)
        except ValueError as exc:
            raise InvalidInputError("pain", str(exc)) from None
    reports = iter_reports(p, text_column=text_column, id_column=id_column)
    first = next(reports, None)  # fail fast on a bad input (missing column ...) before any output
    summary = BatchSummary()
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=csv_columns(kb), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
    total = count_reports(p, text_column) if progress else None
    bar = tqdm(total=total, unit="report", file=progress_file or sys.stderr, disable=not progress, dynamic_ncols=True,
               desc="extract")
    if workers is not None and workers < 1:
        raise InvalidInputError("workers", f"{workers} is not allowed; give 1 or more")
    n = workers or default_workers()
    _STATE.update(kb=kb, rs=rs, pipe=pipe, pain=pain, fmt=fmt)
    pool = None
    try:
        items = iter(()) if first is None else _chain(first, reports)
        if n > 1:
            import gc
            import multiprocessing

            # one report read here first fills the lazily built caches (knowledge-base lookups, citations) that
            # the forked workers then share instead of each building its own
            _one(("warm-up", "Lytic lesion at T7 with epidural extension; no cord compression.", None))
            # the pipeline, rules and knowledge base move out of the collector's reach, so that no worker's garbage
            # collection touches (and copies) the pages it inherited (what is garbage already is collected first)
            gc.collect()
            gc.freeze()
            pool = multiprocessing.get_context("fork").Pool(n)
        if pool is None:
            done: Iterator[Any] = map(_one, items)
        else:
            # at most WINDOW reports per worker in flight: the pool is fed while the results are written (no pause
            # at the end of a window), memory stays flat and the output keeps the input's order
            room = threading.BoundedSemaphore(WINDOW * n)

            def fed() -> Iterator[Any]:
                for item in items:
                    room.acquire()
                    yield item

            done = pool.imap(_one, fed(), chunksize=CHUNK)
        for row, failed in done:
            if pool is not None:
                room.release()
            summary.reports += 1
            summary.errors += failed
            if writer is not None:
                writer.writerow(row)
            else:
                out.write(row)  # type: ignore[arg-type]
            bar.update(1)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
            import gc

            gc.unfreeze()
        _STATE.clear()
        bar.close()
    out.flush()
    return summary


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def format_for(output: str | None, fmt: str | None) -> str:
    """The output format: given, else from the output file's suffix, else JSONL."""
    if fmt:
        return fmt.lower()
    if output and Path(output).suffix.lower() == ".csv":
        return "csv"
    return "jsonl"


__all__ = ["run_batch", "iter_reports", "count_reports", "is_batch", "format_for", "BatchSummary"]
