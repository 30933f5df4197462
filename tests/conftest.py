"""Test set-up: a throwaway environment, marks that follow from what a test uses, and the CI rule for skips.

The helpers and fixtures themselves are in ``tests/support.py`` (shared helpers, the server, the command line,
the knowledge base) and ``tests/store_support.py`` (the store and the real components); the fixtures are
imported below so that every test module sees them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Never touch a real database from the tests: saved assessments go to a throwaway data folder (the app
# opens its SQLite default there at start-up), whatever the environment says.
for _name in ("SPINEMETS_DATABASE_URL", "SPINEMETS_ADMIN_PASSWORD", "SPINEMETS_ADMIN_USER", "SPINEMETS_USER"):
    os.environ.pop(_name, None)
# The ask embedding cache is not patient data: keep it where it survives test runs (computing it takes ~12 s).
os.environ.setdefault(
    "SPINEMETS_CACHE_DIR", str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spinemets")
)
os.environ["SPINEMETS_DATA_DIR"] = tempfile.mkdtemp(prefix="spinemets-test-data-")
atexit.register(shutil.rmtree, os.environ["SPINEMETS_DATA_DIR"], True)

# The fixtures (pytest finds a fixture by name in this module); ROOT, SPINEMETS and run_cli are still imported
# from here by some test modules: new code imports them from tests.support.
from tests.store_support import backend, db_url, in_ci, pg, sqlite_template, store  # noqa: E402,F401
from tests.support import (  # noqa: E402,F401
    ROOT,
    SPINEMETS,
    cli,
    http,
    kb,
    kb_copy,
    live_server,
    live_server_process,
    run_cli,
)

# --- markers (registered in pyproject.toml, described in docs/testing.md) ------------------------------------
# pytest cannot mark a fixture, so the marks that follow from what a test uses are added at collection:
#   pg       a PostgreSQL case (a `postgresql` parameter, or the `pg` cluster fixture without a `sqlite` one);
#   browser  a test driving chromium (the `browser` fixture, or listed below);
#   slow     a `spinemets serve` subprocess (the `live_server*` fixtures, or listed below), an evaluation set,
#            schemathesis, the browser, the Orthanc DICOMweb server.
# A module may also mark itself with `pytestmark` (test_web_browser.py does).  Entries are a file, or a file and
# a test name; tests/test_ci_policy.py checks that each still names something.
SLOW_FIXTURES = {"live_server_process", "live_server", "browser", "orthanc"}
SLOW = (
    "tests/test_schemathesis.py",  # every operation of the OpenAPI document, ~40 s
    "tests/test_store_http.py",  # a server subprocess per test
    "tests/test_readme.py",  # every docs example as a `spinemets` subprocess
    "tests/test_api.py::test_serve_with_two_workers",
    "tests/test_ask.py::test_lexical_eval_floors",  # the development set of questions
    "tests/test_ask.py::test_hybrid_eval_floors",
    "tests/test_extract.py::test_quality_floors_at_the_measured_values",  # the annotated report sets
    "tests/test_extract.py::test_extract_eval_command",
    "tests/test_store_hardening.py::test_sign_in_flood_does_not_slow_a_signed_in_user",  # server subprocesses
    "tests/test_store_hardening.py::test_serve_prints_a_one_time_set_up_link",
    "tests/test_ask.py::test_numpy_and_torch_backends_give_the_same_vectors",  # loads torch, ~10 s
    "tests/test_install.py",  # builds a fresh virtual environment, ~1 min
    # Dask local clusters of two worker processes, 3-10 s each
    "tests/test_archive.py::test_parquet_and_jsonl_parts_hold_the_batch_rows_in_order",
    "tests/test_archive.py::test_a_rerun_resumes_and_another_run_into_the_same_folder_is_refused",
    "tests/test_archive.py::test_parquet_input_is_read_by_the_batch_and_on_dask",
    "tests/test_archive.py::test_the_command_line",
    "tests/test_archive.py::test_a_worker_killed_mid_run_loses_no_report",
    "tests/test_archive.py::test_two_runs_on_one_cluster_never_share_results_and_a_resumed_run_counts_earlier_errors",
    "tests/test_archive.py::test_a_changed_rules_file_is_another_run",
    # CLI subprocesses and password hashing in a row: 4-65 s each (measured with --durations)
    "tests/test_store.py::test_cli_end_to_end",
    "tests/test_store.py::test_authenticate_disable_and_last_admin",
    "tests/test_store_hardening.py::test_failed_sign_ins_are_one_audit_row_per_account_and_window",
    "tests/test_store_hardening.py::test_audit_verify_refuses_a_missing_database",
    "tests/test_store_hardening.py::test_cli_password_reset_ends_tokens",
    "tests/test_store_hardening.py::test_api_sign_in_answers_429_with_retry_after",
    "tests/test_store_hardening.py::test_password_reset_ends_sessions_and_tokens",
    "tests/test_store_hardening.py::test_an_unreachable_database_is_one_line_exit_2",
)
BROWSER = ("tests/test_store_http.py::test_in_a_browser_sign_in_save_and_compare",)


def listed(nodeid: str, entries: tuple[str, ...]) -> bool:
    """Is the test with this node id one of the entries (a file, or a file::test with any parameters)?"""
    return any(nodeid == e or nodeid.startswith((e + "::", e + "[")) for e in entries)


def is_pg_case(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    values = [v for v in params.values() if isinstance(v, str)]
    if "postgresql" in values:
        return True
    return "pg" in getattr(item, "fixturenames", ()) and "sqlite" not in values


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if is_pg_case(item):
            item.add_marker(pytest.mark.pg)
        if "browser" in names or listed(item.nodeid, BROWSER):
            item.add_marker(pytest.mark.browser)
        if names & SLOW_FIXTURES or listed(item.nodeid, SLOW + BROWSER):
            item.add_marker(pytest.mark.slow)


# --- no silent skips in CI ------------------------------------------------------------------------------------
# Under CI=true every component the suite needs is installed (scripts/system-deps.sh, the dev extra), so a skip
# can only mean a broken machine or a wrong test: it is turned into a failure, whatever raised it (a
# `skipif`, `pytest.skip`, `importorskip`).  Expected failures (xfail) stay as they are.  The fixtures of the
# real components say so themselves with a clearer reason (tests/store_support.py: missing, setup_failed).
CI_SKIP_FAILS = "CI=true: a skipped test is a failure in CI (docs/testing.md); it was skipped because: "


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and in_ci():
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        report.outcome = "failed"
        report.longrepr = CI_SKIP_FAILS + reason.removeprefix("Skipped: ")


def pytest_configure(config: pytest.Config) -> None:
    """Fill ask's embedding cache once, in the controlling process, before any test server needs it.

    On a fresh machine the statement embeddings take ~12 s to compute; without this, the first live
    server asked a question (in whichever worker) would spend that time inside a request and time out.
    """
    if hasattr(config, "workerinput"):  # an xdist worker: the controller has done it
        return
    try:
        from spinemets.api import ask as ask_adapter
    except ImportError:  # pragma: no cover
        return
    if ask_adapter.available():
        ask_adapter.warm()
