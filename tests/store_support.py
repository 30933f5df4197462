"""Fixtures of the store tests: real SQLite files and a real, throwaway PostgreSQL cluster.

The cluster is started once per test process (each xdist worker has its own) by
``spinemets.store.pgcluster`` from Debian's ``postgresql`` package, and stopped at the end.  When it cannot
be started, every PostgreSQL case is skipped with a reason starting with ``!!!`` and the reason is written
to ``.pytest_cache/spinemets-pg-unavailable.txt``, which ``.ci/run`` prints loudly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKER = ROOT / ".pytest_cache" / "spinemets-pg-unavailable.txt"
BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "correct horse battery"


class PgState:
    def __init__(self) -> None:
        self.cluster: Any = None
        self.reason: str | None = None
        self.template: str | None = None


@pytest.fixture(scope="session")
def pg() -> Iterator[PgState]:
    """The throwaway cluster (or the reason it is unavailable), with a migrated template database."""
    from spinemets.store.db import Store
    from spinemets.store.pgcluster import Cluster, Unavailable

    state = PgState()
    try:
        state.cluster = Cluster().start()
        state.template = state.cluster.create_database("spinemets_template")
        st = Store(state.cluster.url(state.template))
        st.upgrade()
        st.dispose()
    except (Unavailable, OSError, Exception) as exc:  # noqa: BLE001 - any failure means: skip loudly
        state.reason = f"!!! PostgreSQL unavailable, PostgreSQL store tests SKIPPED: {exc}"
        try:
            MARKER.parent.mkdir(parents=True, exist_ok=True)
            MARKER.write_text(state.reason + "\n")
        except OSError:
            pass
        if state.cluster is not None:
            state.cluster.stop()
            state.cluster = None
    yield state
    if state.cluster is not None:
        state.cluster.stop()


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
    if pg.cluster is None:
        pytest.skip(pg.reason or "!!! PostgreSQL unavailable")
    name = pg.cluster.create_database(template=pg.template if migrated else None)
    return pg.cluster.url(name), lambda: pg.cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, pg: PgState, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
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
