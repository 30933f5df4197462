"""Archive-scale report reading on Dask distributed: `spinemets extract INPUT --dask -o FOLDER`.

A registry or a research group reads every spine report of an archive.  The reports are read here, in order, in
partitions of ``partition_size``; each partition is a Dask task that a worker process runs (the pipeline is built
once per worker) and that writes its own output file, ``part-000042.parquet`` (or ``.jsonl`` / ``.csv``), whole
or not at all (a temporary file renamed at the end).  So:

* a re-run on the same input and output folder skips the partitions whose file exists (resumable; the folder's
  ``_spinemets_run.json`` records the input and the options, and a different run into the same folder is refused);
* a worker that dies mid-partition loses nothing: Dask runs the task again on another worker (up to
  ``RETRIES`` times), and the half-written file was never renamed;
* at most a few partitions per worker are in flight, so memory stays flat whatever the archive's size.

The cluster is a local one (``workers`` processes, one thread each) unless ``scheduler`` names an existing one
(``tcp://HOST:PORT``); its workers need spinemets installed with the same knowledge base (a worker with another
refuses its partitions), and they read the rules file and write the part files at the absolute paths the driver
gives, so the input's rules and the output folder must be on a filesystem every worker shares.  Each run's tasks
have keys of their own, so two runs on one cluster never take each other's results.  Rows are the
batch's rows (`spinemets.reports.batch`): Parquet and CSV carry the flat columns plus, for Parquet, the whole
result as JSON in ``result_json``; JSONL carries the whole result per line.  Needs the ``archive`` extra
(dask[distributed], pyarrow).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from spinemets.errors import InvalidInputError

ARCHIVE_FORMATS = ("parquet", "jsonl", "csv")
MANIFEST = "_spinemets_run.json"
RETRIES = 3  # a partition whose worker died is run again, up to this many times
IN_FLIGHT_PER_WORKER = 3
RUN_FORMAT = 1


@dataclass
class ArchiveSummary:
    reports: int = 0
    errors: int = 0
    partitions: int = 0
    skipped: int = 0  # partitions already written by an earlier run


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed", "pyarrow"))


def _require() -> None:
    if not available():
        raise InvalidInputError("dask", "archive-scale reading needs the archive extra: "
                                        "pip install 'spinemets[archive]' (dask[distributed] and pyarrow)")


def _fingerprint(path: Path) -> dict[str, Any]:
    """What identifies the input cheaply: each file's name, size and modification time."""
    files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"input": str(path.resolve()), "files": len(files), "digest": h.hexdigest()[:20]}


def _check_manifest(outdir: Path, run: dict[str, Any]) -> None:
    """Record this run in the output folder; refuse a folder that holds another run's parts."""
    manifest = outdir / MANIFEST
    if manifest.exists():
        try:
            earlier = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if earlier != run:
            raise InvalidInputError("output", f"{outdir} holds the parts of another run (another input, options or "
                                              "knowledge base): choose an empty folder, or delete it to start again")
        return
    if any(outdir.glob("part-*")):
        raise InvalidInputError("output", f"{outdir} holds part files but no record of their run: choose an empty "
                                          "folder")
    manifest.write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")


def _partitions(records: Iterable[tuple[str, str | None, str | None]], size: int) -> Iterator[list[Any]]:
    it = iter(records)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def part_path(outdir: Path, index: int, fmt: str) -> Path:
    return outdir / f"part-{index:06d}.{fmt}"


# --- on the workers --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _worker_state(rules: str | None) -> tuple[Any, Any, Any]:
    """Knowledge base, rules and pipeline, built once per worker process."""
    from spinemets.knowledge.loader import load_kb
    from spinemets.reports.pipeline import get_pipeline
    from spinemets.reports.rules import load_rules

    kb = load_kb()
    rs = load_rules(kb, rules)
    return kb, rs, get_pipeline(rs)


def extract_partition(records: list[tuple[str, str | None, str | None]], target: str, fmt: str,
                      pain: str | None, rules: str | None, kb_version: str | None = None) -> tuple[int, int]:
    """Read one partition's reports and write its output file whole; returns (reports, errors).  A worker whose
    knowledge base is not *kb_version* (another installation) refuses, rather than mix results."""
    from spinemets.reports.batch import csv_columns, csv_row, jsonl_line, read_one

    kb, rs, pipe = _worker_state(rules)
    if kb_version is not None and kb.version != kb_version:
        raise InvalidInputError("scheduler", f"a worker has knowledge base {kb.version}, the run {kb_version}: "
                                             "install the same spinemets on every worker")
    rows: list[Any] = []
    errors = 0
    for rid, text, given_error in records:
        result, error = read_one(text, given_error, kb, rs, pipe, pain)
        errors += error is not None
        if fmt == "jsonl":
            rows.append(jsonl_line(rid, result, error, kb))
        else:
            row = csv_row(rid, result, error, kb)
            if fmt == "parquet":
                row["result_json"] = result.model_dump_json() if result is not None else ""
            rows.append(row)
    path = Path(target)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = [*csv_columns(kb), "result_json"]
            table = pa.table({c: pa.array([r.get(c, "") for r in rows], type=pa.string()) for c in columns})
            pq.write_table(table, tmp)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                if fmt == "csv":
                    import csv

                    writer = csv.DictWriter(fh, fieldnames=csv_columns(kb), extrasaction="ignore", lineterminator="\n")
                    writer.writeheader()
                    writer.writerows(rows)
                else:
                    fh.writelines(rows)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return len(records), errors


# --- the driver ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InvalidInputError("scheduler", f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    from spinemets.reports.batch import default_workers

    n = workers or default_workers()
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def run_archive(
    path: str | Path,
    outdir: str | Path,
    fmt: str = "parquet",
    *,
    pain: str | None = None,
    rules: str | None = None,
    text_column: str = "text",
    id_column: str = "id",
    partition_size: int = 500,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    progress_file: TextIO | None = None,
) -> ArchiveSummary:
    """Extract every report of *path* on a Dask cluster into part files in *outdir*; see the module docstring."""
    _require()
    from tqdm import tqdm

    from spinemets.knowledge.loader import load_kb
    from spinemets.reports.batch import count_reports, iter_reports
    from spinemets.reports.rules import load_rules

    if fmt not in ARCHIVE_FORMATS:
        raise InvalidInputError("format", f"{fmt!r} is not allowed; allowed values: {', '.join(ARCHIVE_FORMATS)}")
    if partition_size < 1:
        raise InvalidInputError("partition_size", f"{partition_size} is not allowed; give 1 or more")
    if workers is not None and workers < 1:
        raise InvalidInputError("workers", f"{workers} is not allowed; give 1 or more")
    p = Path(path)
    if not p.exists():
        raise InvalidInputError("input", f"{path}: no such file or folder")
    if pain is not None:
        from spinemets.scores.sins import normalise

        try:
            normalise("pain", pain)
        except ValueError as exc:
            raise InvalidInputError("pain", str(exc)) from None
    kb = load_kb()
    load_rules(kb, rules)  # a bad rules file fails here, before any cluster starts
    records = iter_reports(p, text_column=text_column, id_column=id_column)
    first = next(records, None)  # a bad input (missing column ...) fails here too
    out = Path(outdir).resolve()  # the workers get absolute paths (with --scheduler, on a shared filesystem)
    rules = str(Path(rules).resolve()) if rules else None
    if out.exists() and not out.is_dir():
        raise InvalidInputError("output", f"{out} is a file: give a folder for the part files")
    out.mkdir(parents=True, exist_ok=True)
    run = {"format": RUN_FORMAT, **_fingerprint(p), "output_format": fmt, "partition_size": partition_size,
           "text_column": text_column, "id_column": id_column, "pain": pain, "rules": rules,
           "rules_digest": hashlib.sha256(Path(rules).read_bytes()).hexdigest()[:20] if rules else None,
           "site_rules_env": os.environ.get("SPINEMETS_REPORT_RULES") if not rules else None,
           "kb_version": kb.version, "spinemets": _version()}
    _check_manifest(out, run)
    summary = ArchiveSummary()
    total = count_reports(p, text_column) if progress else None
    bar = tqdm(total=total, unit="report", file=progress_file or sys.stderr, disable=not progress,
               dynamic_ncols=True, desc="extract (dask)")
    chunks = _partitions(itertools.chain([first] if first is not None else [], records), partition_size)
    try:
        with _client(workers, scheduler) as client:
            from distributed import as_completed

            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or (workers or 1))
            limit = n_workers * IN_FLIGHT_PER_WORKER
            prefix = f"spinemets-extract-{uuid.uuid4().hex[:12]}"  # this run's tasks only, even on a shared cluster
            pending = as_completed()
            sizes: dict[str, int] = {}
            in_flight = 0
            index = 0
            for chunk in chunks:
                target = part_path(out, index, fmt)
                index += 1
                summary.partitions += 1
                if target.exists():
                    summary.skipped += 1
                    summary.reports += len(chunk)
                    summary.errors += _errors_in(target)
                    bar.update(len(chunk))
                    continue
                while in_flight >= limit:
                    in_flight -= _collect(next(pending), sizes, summary, bar)
                future = client.submit(extract_partition, chunk, str(target), fmt, pain, rules, kb.version,
                                       key=f"{prefix}-{index - 1:06d}", retries=RETRIES, pure=False)
                sizes[future.key] = len(chunk)
                pending.add(future)
                in_flight += 1
            for future in pending:
                _collect(future, sizes, summary, bar)
    finally:
        bar.close()
    return summary


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("spinemets")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def _errors_in(part: Path) -> int:
    """Reports with an error in a part file written by an earlier run (counted again when the run resumes)."""
    return sum(1 for row in _rows(part) if row.get("error"))


def _collect(future: Any, sizes: dict[str, int], summary: ArchiveSummary, bar: Any) -> int:
    reports, errors = future.result()
    summary.reports += reports
    summary.errors += errors
    bar.update(sizes.pop(future.key, reports))
    return 1


def read_parts(outdir: str | Path) -> Iterator[dict[str, Any]]:
    """Every row of a finished run's part files, in input order (for checks and small archives)."""
    for part in sorted(Path(outdir).glob("part-*")):
        yield from _rows(part)


def _rows(part: Path) -> Iterator[dict[str, Any]]:
    if part.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(part).to_pylist()
    elif part.suffix == ".jsonl":
        with part.open(encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)
    elif part.suffix == ".csv":
        import csv

        with part.open(encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)


__all__ = ["run_archive", "extract_partition", "read_parts", "ArchiveSummary", "available", "ARCHIVE_FORMATS"]
