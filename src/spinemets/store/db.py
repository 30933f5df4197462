"""Engine and sessions for the database named by ``SPINEMETS_DATABASE_URL``.

Default: ``sqlite:///<data folder>/spinemets.db`` where the data folder is ``$SPINEMETS_DATA_DIR`` or
``./data`` (created on demand).  SQLite runs in WAL mode with a busy timeout and ``synchronous=FULL``;
write transactions start with ``BEGIN IMMEDIATE`` so that writers queue instead of failing half-way (and so
that the audit chain, appended inside the same transaction, can never fork).  ``postgresql://`` URLs use
psycopg 3.  Engines hide bound parameters in their error messages: an exception never carries a patient
reference or a note into a log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from spinemets.errors import SpinemetsError

log = logging.getLogger("spinemets.store")
DEFAULT_FILE = "spinemets.db"
SQLITE_BUSY_MS = 30_000
PG_MIGRATION_LOCK = 0x5350_4D45  # pg_advisory_lock key of `db upgrade` ("SPME")


class StoreConfigError(SpinemetsError):
    """SPINEMETS_DATABASE_URL (or the data folder) is unusable; the message names it."""


def data_dir() -> Path:
    return Path(os.environ.get("SPINEMETS_DATA_DIR") or "data")


def database_url() -> str:
    """The configured database URL (the SQLite default when SPINEMETS_DATABASE_URL is unset)."""
    url = (os.environ.get("SPINEMETS_DATABASE_URL") or "").strip()
    if url:
        return url
    return f"sqlite:///{(data_dir() / DEFAULT_FILE).resolve()}"


def is_default_url() -> bool:
    return not (os.environ.get("SPINEMETS_DATABASE_URL") or "").strip()


def normalise_url(url: str) -> URL:
    try:
        u = make_url(url)
    except Exception:
        raise StoreConfigError("SPINEMETS_DATABASE_URL: not a database URL; use sqlite:///PATH or "
                               "postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from None
    backend = u.drivername.split("+", 1)[0]
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not u.database or u.database == ":memory:":
            raise StoreConfigError("SPINEMETS_DATABASE_URL: an in-memory SQLite database is not supported; "
                                   "use sqlite:///PATH/TO/FILE.db")
        return u.set(drivername="sqlite+pysqlite")
    raise StoreConfigError(f"SPINEMETS_DATABASE_URL: unsupported database {backend!r}; use sqlite or postgresql")


def safe_url(url: URL | str) -> str:
    """The URL without its password (for messages and logs)."""
    u = make_url(url) if isinstance(url, str) else url
    return u.render_as_string(hide_password=True)


class Store:
    """One database: its engine, read and write sessions, and migrations."""

    def __init__(self, url: str | None = None) -> None:
        self.url = normalise_url(url or database_url())
        self.backend = "sqlite" if self.url.drivername.startswith("sqlite") else "postgresql"
        if self.backend == "sqlite":
            path = Path(str(self.url.database)).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreConfigError(f"data folder {path.parent}: cannot create it ({exc.strerror})") from None
            self.path: Path | None = path.resolve()
            self.url = self.url.set(database=str(self.path))
            engine = create_engine(
                self.url, hide_parameters=True, pool_size=8, max_overflow=56, pool_timeout=60,
                connect_args={"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False},
            )
            _sqlite_events(engine)
        else:
            self.path = None
            engine = create_engine(self.url, hide_parameters=True, pool_size=8, max_overflow=32, pool_timeout=60,
                                   pool_pre_ping=True)
        self.engine: Engine = engine
        # SQLite: writers of this process queue on a lock (woken at once) rather than on SQLite's busy handler
        # (which polls with sleeps and gives long tail latencies); other processes still meet the busy timeout.
        self._write_lock = threading.Lock() if self.backend == "sqlite" else None
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(engine.execution_options(spinemets_write=True), expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Store({safe_url(self.url)!r})"

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A session in one transaction, committed on success and rolled back on error.

        ``write=True`` takes the database's write lock at the start (SQLite: BEGIN IMMEDIATE).
        """
        if write and self._write_lock is not None:
            with self._write_lock, self._write.begin() as s:
                yield s
        else:
            with (self._write if write else self._read).begin() as s:
                yield s

    def dispose(self) -> None:
        self.engine.dispose()

    # --- migrations -----------------------------------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> str | None:
        """Run the Alembic migrations up to *revision*; safe when several processes start at once."""
        from alembic import command

        from spinemets.store.migrations import alembic_config

        with self._migration_lock(), self.engine.connect() as conn:
            cfg = alembic_config(conn)
            command.upgrade(cfg, revision)
            conn.commit()
        return self.current_revision()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        from spinemets.store.migrations import alembic_config

        return ScriptDirectory.from_config(alembic_config(None)).get_current_head()

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.backend == "sqlite":
            import fcntl

            assert self.path is not None
            with open(str(self.path) + ".migrate-lock", "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        else:
            with self.engine.connect() as lock:
                lock.exec_driver_sql(f"SELECT pg_advisory_lock({PG_MIGRATION_LOCK})")
                try:
                    yield
                finally:
                    lock.exec_driver_sql(f"SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})")
                    lock.commit()


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("spinemets_write") else "BEGIN")
