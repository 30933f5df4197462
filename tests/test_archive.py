"""Archive-scale report reading on Dask distributed (`spinemets extract --dask`): real local clusters of two worker
processes; the rows equal the batch's, a re-run resumes, a worker killed mid-run loses nothing, and every error
path says what to do."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from spinemets.errors import InvalidInputError
from spinemets.reports.archive import MANIFEST, read_parts, run_archive
from spinemets.reports.batch import run_batch
from tests.conftest import ROOT, run_cli

REPORTS = ROOT / "tests" / "data" / "reports"


def _folder(tmp_path: Path, n: int) -> Path:
    """*n* report files (the evaluation reports in turn, each with a serial so that no two are the same)."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(REPORTS.glob("*/*.txt"))]
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(n):
        (folder / f"r{i:05d}.txt").write_text(texts[i % len(texts)] + f"\n\nSerial {i}.\n", encoding="utf-8")
    return folder


def _batch_rows(folder: Path, fmt: str) -> list:
    buf = io.StringIO()
    run_batch(folder, buf, fmt, progress=False, workers=1)
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(buf.getvalue())))
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_parquet_and_jsonl_parts_hold_the_batch_rows_in_order(tmp_path):
    folder = _folder(tmp_path, 90)
    s = run_archive(folder, tmp_path / "pq", "parquet", partition_size=20, workers=2, progress=False)
    assert (s.reports, s.partitions, s.skipped, s.errors) == (90, 5, 0, 0)
    assert sorted(p.name for p in (tmp_path / "pq").glob("part-*")) == [f"part-{i:06d}.parquet" for i in range(5)]
    rows = list(read_parts(tmp_path / "pq"))
    expected = _batch_rows(folder, "csv")
    assert [{k: v for k, v in r.items() if k != "result_json"} for r in rows] == expected
    assert json.loads(rows[3]["result_json"])["index_level"] == (expected[3]["index_level"] or None)
    run_archive(folder, tmp_path / "jl", "jsonl", partition_size=35, workers=2, progress=False)
    assert list(read_parts(tmp_path / "jl")) == _batch_rows(folder, "jsonl")


def test_a_rerun_resumes_and_another_run_into_the_same_folder_is_refused(tmp_path):
    folder = _folder(tmp_path, 60)
    out = tmp_path / "out"
    run_archive(folder, out, "csv", partition_size=10, workers=2, progress=False)
    first = list(read_parts(out))
    for name in ("part-000001.csv", "part-000004.csv"):
        (out / name).unlink()
    s = run_archive(folder, out, "csv", partition_size=10, workers=2, progress=False)
    assert (s.partitions, s.skipped, s.reports) == (6, 4, 60)
    assert list(read_parts(out)) == first
    with pytest.raises(InvalidInputError, match="holds the parts of another run"):
        run_archive(folder, out, "csv", partition_size=20, workers=2, progress=False)
    (folder / "r00000.txt").write_text("Lytic lesion at T7.", encoding="utf-8")  # the input changed
    with pytest.raises(InvalidInputError, match="holds the parts of another run"):
        run_archive(folder, out, "csv", partition_size=10, workers=2, progress=False)
    (out / MANIFEST).unlink()
    with pytest.raises(InvalidInputError, match="part files but no record"):
        run_archive(folder, out, "csv", partition_size=10, workers=2, progress=False)


def test_two_runs_on_one_cluster_never_share_results_and_a_resumed_run_counts_earlier_errors(tmp_path):
    from distributed import Client, LocalCluster

    folder = _folder(tmp_path, 40)
    (folder / "r00003.txt").write_bytes(b"\xff\xfe not text")  # an error row
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster):
            a = run_archive(folder, tmp_path / "a", "jsonl", partition_size=5, scheduler=cluster.scheduler_address,
                            progress=False)
            b = run_archive(folder, tmp_path / "b", "csv", partition_size=5, scheduler=cluster.scheduler_address,
                            progress=False)
            again = run_archive(folder, tmp_path / "a", "jsonl", partition_size=5,
                                scheduler=cluster.scheduler_address, progress=False)
    finally:
        cluster.close()
    for out, fmt in ((tmp_path / "a", "jsonl"), (tmp_path / "b", "csv")):
        assert sorted(p.name for p in out.glob("part-*")) == [f"part-{i:06d}.{fmt}" for i in range(8)]
        assert [r["id"] for r in read_parts(out)] == [f"r{i:05d}" for i in range(40)]
    assert (a.errors, b.errors) == (1, 1)
    assert (again.skipped, again.reports, again.errors) == (8, 40, 1)  # the error of a skipped partition counts


def test_a_changed_rules_file_is_another_run(tmp_path):
    folder = _folder(tmp_path, 4)
    rules = tmp_path / "rules.yaml"
    row = "context:\n  - {id: my-hedge, category: POSSIBLE_EXISTENCE, direction: FORWARD, phrases: [%s]}\n"
    rules.write_text(row % "cannot be securely excluded", encoding="utf-8")
    run_archive(folder, tmp_path / "out", "csv", rules=str(rules), workers=1, progress=False)
    rules.write_text(row % "cannot be excluded with confidence", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="holds the parts of another run"):
        run_archive(folder, tmp_path / "out", "csv", rules=str(rules), workers=1, progress=False)


def test_a_worker_killed_mid_run_loses_no_report(tmp_path):  # slow (conftest): a cluster of its own, killed in part
    from distributed import Client, LocalCluster

    folder = _folder(tmp_path, 600)
    out = tmp_path / "out"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster) as client:
            pids = list(client.run(os.getpid).values())
            done: dict = {}

            def run() -> None:
                try:
                    done["summary"] = run_archive(folder, out, "parquet", partition_size=5,
                                                  scheduler=cluster.scheduler_address, progress=False)
                except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                    done["error"] = exc

            t = threading.Thread(target=run)
            t.start()
            deadline = time.monotonic() + 120
            while len(list(out.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            written_before = len(list(out.glob("part-*.parquet")))
            os.kill(pids[0], signal.SIGKILL)  # mid-run: partitions are in flight on it
            t.join(timeout=300)
            assert not t.is_alive() and "error" not in done, done.get("error")
    finally:
        cluster.close()
    assert written_before < 120, "the kill came while the run was going on"
    s = done["summary"]
    assert (s.reports, s.partitions, s.errors) == (600, 120, 0)
    ids = [r["id"] for r in read_parts(out)]
    assert ids == [f"r{i:05d}" for i in range(600)]  # every report once, in input order
    assert not list(out.glob(".*.tmp")), "no half-written file is left"


def test_parquet_input_is_read_by_the_batch_and_on_dask(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["Lytic lesion at T7 with 30% loss of height.", "Normal MRI of the lumbar spine.", None]
    pq.write_table(pa.table({"accession": ["A1", "A2", "A3"], "report": texts}), tmp_path / "in.parquet")
    buf = io.StringIO()
    s = run_batch(tmp_path / "in.parquet", buf, "jsonl", text_column="report", id_column="accession", progress=False,
                  workers=1)
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert (s.reports, s.errors) == (3, 1)
    assert [x["id"] for x in lines] == ["A1", "A2", "A3"] and lines[0]["index_level"] == "T7"
    assert lines[2]["error"] == "row 3: no text in 'report'"
    run_archive(tmp_path / "in.parquet", tmp_path / "out", "jsonl", text_column="report", id_column="accession",
                workers=1, progress=False)
    assert [x["id"] for x in read_parts(tmp_path / "out")] == ["A1", "A2", "A3"]
    with pytest.raises(InvalidInputError, match="has no column 'text'; its columns: accession, report"):
        run_batch(tmp_path / "in.parquet", io.StringIO(), "jsonl", progress=False)
    (tmp_path / "bad.parquet").write_text("not parquet", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not a readable Parquet file"):
        run_batch(tmp_path / "bad.parquet", io.StringIO(), "jsonl", progress=False)


@pytest.mark.parametrize("kwargs, field, message", [
    ({"fmt": "xml"}, "format", "allowed values: parquet, jsonl, csv"),
    ({"partition_size": 0}, "partition_size", "give 1 or more"),
    ({"workers": 0}, "workers", "give 1 or more"),
    ({"pain": "sometimes"}, "pain", ""),
])
def test_bad_options_are_errors_naming_the_option(tmp_path, kwargs, field, message):
    folder = _folder(tmp_path, 2)
    with pytest.raises(InvalidInputError, match=message) as exc:
        run_archive(folder, tmp_path / "out", progress=False, **kwargs)
    assert exc.value.field == field
    assert not (tmp_path / "out").exists(), "nothing written, no cluster started"


def test_the_command_line(tmp_path):
    folder = _folder(tmp_path, 12)
    r = run_cli("extract", str(folder), "--dask", "--workers", "2", "--partition-size", "5", "-o", str(tmp_path / "o"),
                "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "extract: 12 reports to" in r.stderr and "in 3 part files, 0 with errors" in r.stderr
    r = run_cli("extract", str(folder), "--dask", "--workers", "2", "--partition-size", "5", "-o", str(tmp_path / "o"),
                "--no-progress")
    assert "3 of 3 partitions already done" in r.stderr
    r = run_cli("extract", str(folder), "--dask", "--no-progress")
    assert r.returncode == 2 and "give the output folder with -o FOLDER" in r.stderr
    r = run_cli("extract", str(folder), "--dask", "-o", str(tmp_path / "findings.csv"), "--no-progress")
    assert r.returncode == 2 and "looks like a file, but --dask writes part files into a folder" in r.stderr
    assert not (tmp_path / "findings.csv").exists()
    r = run_cli("extract", str(folder), "--format", "parquet", "-o", str(tmp_path / "x.parquet"))
    assert r.returncode == 2 and "parquet output is written in part files by --dask" in r.stderr
    r = run_cli("extract", str(folder), "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path / "s"), "--no-progress")
    assert r.returncode == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in r.stderr
