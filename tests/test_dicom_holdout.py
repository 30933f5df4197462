"""Hold-out set 1 of the DICOM measurements (tests/data/dicom/holdout1): 37 cases written by another hand from the
documentation and the DICOM standard, without seeing the implementation; the expectations are its own.

Scored blind on 2026-12-07 after the viewer, polygons, structure sets and lazy reading were built: 36 of 37. The one
failure, `cs-rescale-differs` (an MR pair rescaled differently, expected refused), was first read as a documentation
error; a review then showed why the refusal is right (MR signal has no unit; a Philips private scale may have been
removed by de-identification), and the tool now refuses such a pair: 37 of 37, no longer blind for that case. The
expectations are left as written (never tuned on). Floor: every case passes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

HOLDOUT = ROOT / "tests" / "data" / "dicom" / "holdout1"
KNOWN: dict[str, str] = {}


@pytest.mark.slow
def test_the_dicom_hold_out_passes_every_case_but_the_documented_one():
    spinemets = Path(sys.executable).parent / "spinemets"
    r = subprocess.run([sys.executable, str(HOLDOUT / "score.py"), "--spinemets", str(spinemets)],
                       capture_output=True, text=True, timeout=600)
    summary = re.search(r"holdout1: (\d+) passed, (\d+) failed of (\d+)", r.stdout)
    assert summary, r.stdout[-2000:] + r.stderr[-2000:]
    failed = set(re.findall(r"^FAIL (\S+)", r.stdout, flags=re.M))
    assert failed <= set(KNOWN), r.stdout
    assert int(summary.group(1)) >= int(summary.group(3)) - len(KNOWN)
    assert "WARNING" not in r.stdout  # the phantoms made again give the stored expectations
