"""The policy for real components (docs/testing.md): a missing one is a failure in CI and a loud skip elsewhere;
one that is installed but fails to set up is always a failure.  Also: markers and the fast subset.

Nothing of the product is replaced: the PostgreSQL set-up runs the real ``pgcluster`` against a temporary
folder its server user cannot use, and the CI rule runs in a real pytest subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import BROWSER, ROOT, SLOW, listed
from tests.store_support import PgState, Verdict, enforce, in_ci, missing, start_pg, verdict

CI = {"CI": "true"}
LOCAL: dict[str, str] = {}


@pytest.mark.parametrize(("env", "expected"), [
    ({"CI": "true"}, True), ({"CI": "TRUE"}, True), ({"CI": "1"}, True), ({"CI": "yes"}, True),
    ({"CI": "false"}, False), ({"CI": ""}, False), ({"CI": "0"}, False), ({}, False),
])
def test_ci_is_read_from_the_environment(env, expected):
    assert in_ci(env) is expected


def test_not_installed_skips_locally_and_fails_in_ci():
    local = verdict("PostgreSQL", "missing", "no initdb", LOCAL)
    assert local.action == "skip" and local.reason.startswith("!!! PostgreSQL is not installed") and "no initdb" in local.reason
    ci = verdict("PostgreSQL", "missing", "no initdb", CI)
    assert ci.action == "fail" and "CI=true" in ci.reason and "no initdb" in ci.reason


@pytest.mark.parametrize("env", [LOCAL, CI])
def test_a_failed_set_up_fails_everywhere(env):
    v = verdict("Chromium", "setup", "launch timed out", env)
    assert v == Verdict("fail", "!!! Chromium is installed but its set-up FAILED: launch timed out")


def test_enforce_skips_or_fails_the_test():
    with pytest.raises(pytest.skip.Exception, match="gone"):
        enforce(Verdict("skip", "gone"))
    with pytest.raises(pytest.fail.Exception, match="broken"):
        enforce(Verdict("fail", "broken"))


def test_missing_postgresql_follows_the_environment(monkeypatch):
    state = PgState()
    state.missing = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        state.require()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        state.require()


@pytest.mark.pg
def test_a_cluster_that_cannot_initialise_fails_even_locally(tmp_path, monkeypatch):
    """initdb in a folder the server cannot use: the old fixture skipped every PostgreSQL case; now they fail."""
    from spinemets.store.pgcluster import Unavailable, bindir

    try:
        bindir()
    except Unavailable as exc:
        missing("PostgreSQL", str(exc))
    locked = tmp_path / "locked"
    locked.mkdir()
    # As root the server runs as `postgres`, which cannot enter a root-only folder (initdb fails); as anyone
    # else the folder is read-only, so the cluster's own folder cannot even be made.
    locked.chmod(0o700 if os.geteuid() == 0 else 0o500)
    monkeypatch.setattr(tempfile, "tempdir", str(locked))
    monkeypatch.delenv("CI", raising=False)
    state = start_pg()
    locked.chmod(0o700)
    assert state.missing is None and state.cluster is None
    assert state.failed is not None
    if os.geteuid() == 0:
        assert state.failed.startswith("Unavailable: initdb failed")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is installed but its set-up FAILED"):
        state.require()


# --- the CI rule for every skip, in a real pytest run -------------------------------------------------------

SAMPLE = '''
import pytest

def test_skipped_in_the_body():
    pytest.skip("chromium is not here")

@pytest.mark.skipif(True, reason="no postgres here")
def test_skipped_by_a_mark():
    pass

@pytest.mark.xfail(reason="a known defect", strict=False)
def test_expected_failure():
    assert False

def test_passes():
    pass
'''


def run_sample(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = str(ROOT)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "tests.conftest", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "test_sample.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_every_skip_fails_a_ci_run(tmp_path):
    r = run_sample(tmp_path, ci=True)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "CI=true: a skipped test is a failure in CI (docs/testing.md); it was skipped because: chromium is not here" in out
    assert "it was skipped because: no postgres here" in out
    assert re.search(r"1 failed, 1 passed, 1 xfailed, 1 error", out), out  # the mark skips at set-up: an error
    assert "skipped" not in out.splitlines()[-1]


@pytest.mark.slow
def test_skips_stay_skips_outside_ci(tmp_path):
    r = run_sample(tmp_path, ci=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"1 passed, 2 skipped, 1 xfailed", out), out


# --- markers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", SLOW + BROWSER)
def test_each_marked_entry_still_names_a_test(entry):
    """A renamed test would silently leave the slow or browser list; this fails instead."""
    path, _, name = entry.partition("::")
    source = (ROOT / path).read_text()
    if name:
        assert re.search(rf"^def {re.escape(name)}\(", source, re.M), entry


def test_listed_matches_a_file_a_test_and_its_parameters_only():
    entries = ("tests/test_a.py", "tests/test_b.py::test_x")
    assert listed("tests/test_a.py::test_anything[1]", entries)
    assert listed("tests/test_b.py::test_x", entries) and listed("tests/test_b.py::test_x[sqlite]", entries)
    assert not listed("tests/test_b.py::test_x_longer", entries)
    assert not listed("tests/test_a.py.bak::test_y", entries)


@pytest.mark.slow
def test_pg_marks_exactly_the_postgresql_cases():
    def collect(expr: str) -> list[str]:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                            "-p", "no:xdist", "-m", expr, "tests/test_store.py"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"})
        assert r.returncode == 0, r.stdout + r.stderr
        return [line for line in r.stdout.splitlines() if "::" in line]

    pg, other = collect("pg"), collect("not pg")
    assert pg and other
    assert all("postgresql" in t and "sqlite" not in t for t in pg), pg
    assert not any("postgresql" in t for t in other), other
