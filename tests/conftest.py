from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spinemets.knowledge.loader import DATA_DIR, load_kb

ROOT = Path(__file__).resolve().parent.parent
SPINEMETS = str(Path(sys.executable).with_name("spinemets"))


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
