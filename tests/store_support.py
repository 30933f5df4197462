"""Fixtures of the store tests (real SQLite files and a real, throwaway PostgreSQL cluster), and the policy
for every real component the suite drives (PostgreSQL, Chromium, Playwright).

The policy (docs/testing.md):

- a component that is **not installed** skips the tests that need it with a reason starting with ``!!!``,
  except under ``CI=true``, where it FAILS them: CI installs everything, so a missing component there is a
  broken CI machine, never a reason to pass;
- a component that is installed but whose **set-up failed** (initdb, pg_ctl, the migrations, a browser that
  does not launch) always FAILS the tests that need it, locally too: that is a defect, not an absence.

The cluster is started once per test process (each xdist worker has its own) by
``spinemets.store.pgcluster`` from Debian's ``postgresql`` package, only when a PostgreSQL case first needs
it, and stopped at the end.  A reason the PostgreSQL cases could not run is also written to
``.pytest_cache/spinemets-pg-unavailable.txt``, which ``.ci/run`` repeats at the end of the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import pytest

from tests.support import CASE, ROOT, case_with  # noqa: F401  (case_with: for the store tests)

MARKER = ROOT / ".pytest_cache" / "spinemets-pg-unavailable.txt"
BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "correct horse battery"
CI_TRUE = ("1", "true", "yes")


# --- policy for real components -----------------------------------------------------------------------------


def in_ci(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment says this is a CI run (``CI=true``, as CI services and ``.ci/run`` set it)."""
    return (os.environ if env is None else env).get("CI", "").strip().lower() in CI_TRUE


@dataclass(frozen=True)
class Verdict:
    """What a test that needs a component does when the component cannot be used: ``skip`` or ``fail``."""

    action: Literal["skip", "fail"]
    reason: str


def verdict(component: str, problem: Literal["missing", "setup"], detail: str,
            env: Mapping[str, str] | None = None) -> Verdict:
    """The policy: a set-up failure always fails; a missing component skips locally and fails under CI."""
    if problem == "setup":
        return Verdict("fail", f"!!! {component} is installed but its set-up FAILED: {detail}")
    if in_ci(env):
        return Verdict("fail", f"!!! {component} is not installed and CI=true, where every component the "
                               f"suite needs must be present (scripts/system-deps.sh): {detail}")
    return Verdict("skip", f"!!! {component} is not installed, tests that need it SKIPPED: {detail}")


def enforce(v: Verdict) -> NoReturn:
    """Skip or fail the current test as the verdict says."""
    if v.action == "fail":
        pytest.fail(v.reason, pytrace=False)
    pytest.skip(v.reason)


def missing(component: str, detail: str) -> NoReturn:
    """The current test needs ``component``, which is not installed: skip locally, fail under CI."""
    enforce(verdict(component, "missing", detail))


def setup_failed(component: str, detail: str) -> NoReturn:
    """The current test needs ``component``, which is installed but could not be set up: always fail."""
    enforce(verdict(component, "setup", detail))


# --- PostgreSQL ---------------------------------------------------------------------------------------------


class PgState:
    """A running cluster with a migrated template database, or why there is none."""

    def __init__(self) -> None:
        self.cluster: Any = None
        self.template: str | None = None
        self.missing: str | None = None  # not installed
        self.failed: str | None = None  # installed, but initdb, pg_ctl or the migrations failed

    @property
    def reason(self) -> str | None:
        return self.failed or self.missing

    def require(self) -> None:
        """Return when the cluster is up; otherwise skip or fail the current test as the policy says."""
        if self.failed is not None:
            setup_failed("PostgreSQL", self.failed)
        if self.missing is not None:
            missing("PostgreSQL", self.missing)
        if self.cluster is None:  # pragma: no cover - start_pg always sets one of the three
            setup_failed("PostgreSQL", "no cluster and no reason recorded")

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


def start_pg() -> PgState:
    """Start a throwaway cluster and migrate a template database; never raises, the state says what failed.

    "Not installed" is only the absence of the binaries (``pgcluster.bindir``); anything that goes wrong
    once they are found (initdb, pg_ctl, creating the template, a migration) is a set-up failure.
    """
    from spinemets.store.db import Store
    from spinemets.store.pgcluster import Cluster, Unavailable, bindir

    state = PgState()
    try:
        bindir()
    except Unavailable as exc:
        state.missing = str(exc)
        return state
    try:
        state.cluster = Cluster().start()
        state.template = state.cluster.create_database("spinemets_template")
        st = Store(state.cluster.url(state.template))
        try:
            st.upgrade()
        finally:
            st.dispose()
    except Exception as exc:  # noqa: BLE001 - whatever it is, the installed cluster could not be set up
        state.failed = f"{type(exc).__name__}: {exc}"
        state.stop()
    return state


@pytest.fixture(scope="session")
def pg() -> Iterator[PgState]:
    """The throwaway cluster, or the reason it is unavailable (``new_database`` skips or fails on it)."""
    state = start_pg()
    if state.reason is not None:
        try:
            MARKER.parent.mkdir(parents=True, exist_ok=True)
            MARKER.write_text(f"{'set-up FAILED' if state.failed else 'not installed'}: {state.reason}\n")
        except OSError:
            pass
    yield state
    state.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spinemets.store.db import Store

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    st = Store(f"sqlite:///{path}")
    st.upgrade()
    st.dispose()
    return path


def new_database(backend: str, pg: PgState, sqlite_template: Path, where: Path, migrated: bool = True) -> tuple[str, Any]:
    """(url, cleanup) of a fresh database: migrated (from a template) or empty."""
    if backend == "sqlite":
        path = where / f"store-{os.urandom(4).hex()}.db"
        if migrated:
            shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}", lambda: None
    pg.require()
    name = pg.cluster.create_database(template=pg.template if migrated else None)
    return pg.cluster.url(name), lambda: pg.cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, sqlite_template: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    # The cluster only for PostgreSQL cases: SQLite cases (and `-m "not pg"`) never start it.
    pg = request.getfixturevalue("pg") if backend == "postgresql" else PgState()
    url, cleanup = new_database(backend, pg, sqlite_template, tmp_path)
    yield url
    cleanup()


@pytest.fixture
def store(db_url: str) -> Iterator[Any]:
    from spinemets.store.db import Store

    st = Store(db_url)
    yield st
    st.dispose()


def add_user(store: Any, username: str, role: str = "clinician", password: str = PASSWORD) -> Any:
    from spinemets.store import repository as repo

    with store.session(write=True) as s:
        u = repo.create_user(s, repo.system("test"), {"username": username, "password": password, "role": role})
        return repo.Actor.of(u, "test")


def add_token(store: Any, username: str) -> str:
    from spinemets.store import repository as repo

    with store.session(write=True) as s:
        secret, _ = repo.create_token(s, repo.system("test"), repo.get_user(s, username), {"name": "test"})
        return secret


# --- the example case, saved as an assessment (shared by the store tests) ---------------------------------------
# CASE and case_with live in tests/support.py; they are imported here too because the store tests take them
# from this module with the store helpers.


def save(store, actor, ref="P-001", **kw):
    """Save an assessment of the example case (or ``case=``) and return its id."""
    from spinemets.store import repository as repo

    with store.session(write=True) as s:
        return repo.save(s, actor, {"case": kw.pop("case", CASE), "patient_ref": ref, **kw}).id


def watched_page(context: Any, allowed: tuple[str, ...] = ("401",)) -> tuple[Any, list[str]]:
    """A new page of a Playwright browser context and the list its console errors (other than the *allowed* status
    codes) and uncaught exceptions go to: a test asserts the list is empty at its end."""
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and not any(
        code in m.text for code in allowed) else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_default_timeout(15_000)
    return page, problems


def sign_in_page(page: Any, start: str, username: str = "admin", password: str = PASSWORD) -> None:
    """Sign in through the page at *start* (a page that asks for it), landing back on it."""
    page.goto(start)
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.click("[data-testid=login-form] button[type=submit]")
    page.wait_for_url("**" + start.split("?next=")[-1])
