from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from spinemets.knowledge.loader import DATA_DIR, load_kb

ROOT = Path(__file__).resolve().parent.parent
SPINEMETS = str(Path(sys.executable).with_name("spinemets"))

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

from tests.store_support import backend, db_url, pg, sqlite_template, store  # noqa: E402,F401  (store fixtures)


@pytest.fixture(scope="session")
def kb():
    return load_kb()


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    return subprocess.run(
        [SPINEMETS, *args], input=stdin, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A writable copy of the packaged knowledge base, for error-path tests."""
    dest = tmp_path / "kb"
    shutil.copytree(DATA_DIR, dest)
    return dest


@pytest.fixture(scope="session")
def live_server():
    """`spinemets serve` in a subprocess on a free loopback port (one per xdist worker); yields its base URL."""
    from spinemets.api.devserver import running_server

    with running_server() as base:
        yield base


@pytest.fixture(scope="session")
def http(live_server):
    """An httpx client bound to the live server."""
    import httpx

    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


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
