"""Hold-out set 1 of the DICOM measurements (tests/data/dicom/holdout1): 37 cases written by another hand from the
documentation and the DICOM standard, without seeing the implementation; the expectations are its own.

Scored blind on 2026-12-07 after the viewer, polygons, structure sets and lazy reading were built: 36 of 37. The one
failure, `cs-rescale-differs` (an MR pair rescaled differently, expected refused), was first read as a documentation
error; a review then showed why the refusal is right (MR signal has no unit; a Philips private scale may have been
removed by de-identification), and the tool now refuses such a pair: 37 of 37, no longer blind for that case. The
expectations are left as written (never tuned on). Floor: every case passes."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re

from tests.support import ROOT

HOLDOUT = ROOT / "tests" / "data" / "dicom" / "holdout1"
KNOWN: dict[str, str] = {}


def test_the_dicom_hold_out_passes_every_case(monkeypatch):
    spec = importlib.util.spec_from_file_location("holdout1_score", HOLDOUT / "score.py")
    score = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score)
    monkeypatch.setattr("sys.argv", ["score.py", "--spinemets", "in-process"])  # the cases run by main() here
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        score.main()
    stdout = printed.getvalue()
    summary = re.search(r"holdout1: (\d+) passed, (\d+) failed of (\d+)", stdout)
    assert summary, stdout[-2000:]
    failed = set(re.findall(r"^FAIL (\S+)", stdout, flags=re.M))
    assert failed <= set(KNOWN), stdout
    assert int(summary.group(1)) >= int(summary.group(3)) - len(KNOWN) and int(summary.group(3)) == 37
    assert "WARNING" not in stdout  # the phantoms made again give the stored expectations
