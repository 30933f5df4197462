"""Helpers shared by the tests, and the fixtures built from them (``tests/conftest.py`` imports the fixtures).

- the example case (``CASE``, ``case_with``);
- the knowledge base: the session ``kb`` fixture, a writable copy (``kb_copy``) and ``from_kb`` for hypothesis
  strategies drawn from its rows; nothing here or in a test module loads it at import time, so a broken
  knowledge base fails the tests that need it instead of stopping the collection;
- HTTP answers: ``problem`` (RFC 9457 problem details) and ``check_page`` (what every HTML page must have);
- ``spinemets serve`` in a subprocess: ``server``, and the session fixtures ``live_server_process``,
  ``live_server`` and ``http`` built on it;
- the command line: ``cli`` runs ``spinemets.cli.main`` in this process; ``run_cli`` runs the installed console
  script in a subprocess, for what needs a real process (pipes, the environment, the entry point itself).

The store fixtures and the policy for real components (PostgreSQL, Chromium) are in ``tests/store_support.py``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import pytest
from hypothesis import strategies as st

from spinemets.knowledge.loader import DATA_DIR, KnowledgeBase, load_kb

ROOT = Path(__file__).resolve().parent.parent
SPINEMETS = str(Path(sys.executable).with_name("spinemets"))
DISCLAIMER = "Decision support for healthcare professionals"
PROBLEM = "application/problem+json"
KB_VERSION_LINE = re.compile(r"Knowledge base <strong class=\"kb-version\">\d{4}\.\d+\.\d+</strong>")


# --- the example case ---------------------------------------------------------------------------------------

CASE: dict[str, Any] = json.loads((ROOT / "examples" / "full_case.json").read_text())


def case_with(**sections: dict[str, Any]) -> dict[str, Any]:
    """The example case with some sections changed (a copy: ``CASE`` itself is never changed)."""
    c = copy.deepcopy(CASE)
    for k, v in sections.items():
        c[k] = {**c.get(k, {}), **v}
    return c


# --- the knowledge base -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The packaged knowledge base (loaded once per process; a broken one fails each test that asks for it)."""
    return load_kb()


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A writable copy of the packaged knowledge base, for error-path tests."""
    dest = tmp_path / "kb"
    shutil.copytree(DATA_DIR, dest)
    return dest


def from_kb(build: Callable[[KnowledgeBase], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A hypothesis strategy built from the packaged knowledge base when a test first draws from it.

    ``build`` gets the knowledge base and returns the strategy, e.g.
    ``from_kb(lambda kb: st.sampled_from(feature_ids(kb)))``: the rows are read while the test runs, never
    at import, so a knowledge base that does not load is that test's failure, not a collection error.
    """
    return st.deferred(lambda: build(load_kb()))


def check_arbitrary_input(fn: Callable[[Any], Any], data: Any, section: str, kb: KnowledgeBase) -> Any:
    """What an interpretation function owes any input: our error naming the field, or a readable result.

    - not an object (and not None): ``InvalidInputError`` on *section* itself, saying what it got;
    - an error: one of the input errors, every field it names inside *section* and, for a named key, a key of
      *data*; its message is more than the field name;
    - a result: complete or insufficient data (then each missing field is in *section* and was not given a
      value), the same result on a second call, text with the disclaimer and no internal ids.
    Returns the result, or None after an error.
    """
    from spinemets.errors import ContradictoryInputError, InsufficientDataError, InvalidInputError
    from spinemets.wording import internal_ids

    try:
        r = fn(data)
    except (InvalidInputError, InsufficientDataError, ContradictoryInputError) as exc:
        fields = [exc.field] if isinstance(exc, InvalidInputError) else exc.fields
        assert fields, exc
        for f in fields:
            assert f == section or f.startswith(section + "."), (f, exc)
            rest = f[len(section) + 1:]
            if rest and isinstance(data, dict) and isinstance(exc, InvalidInputError):
                # the key as given (a long one clipped), or the normalised spelling of a known field
                assert any(rest == str(k) or rest.startswith((f"{k}.", f"{k}[")) or rest[:20] == str(k)[:20]
                           or rest == str(k).strip().lower().replace(" ", "_").replace("-", "_") for k in data), \
                    (rest, data, exc)
        assert len(str(exc)) > len(", ".join(fields)) + 3, exc
        if data is not None and not isinstance(data, dict):
            assert isinstance(exc, InvalidInputError) and exc.field == section
            assert str(exc) == f"{section}: expected an object, got {type(data).__name__}"
        return None
    assert data is None or isinstance(data, dict), f"{section} accepted a {type(data).__name__}"
    assert r.status in ("complete", "insufficient_data"), r.status
    if r.status == "insufficient_data":
        assert r.missing
        for m in r.missing:
            assert m.startswith(section + "."), m
    assert fn(data) == r
    text = r.to_text()
    assert DISCLAIMER in text
    assert internal_ids(text, kb) == [], internal_ids(text, kb)
    return r


# --- HTTP answers ------------------------------------------------------------------------------------------


def problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """Check that *r* is an RFC 9457 problem of *status* (naming *field*, when given); return its body."""
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"].startswith("/problems/"), body
    assert body["title"] and body["detail"] and body["kb_version"], body
    if field is not None:
        assert body["field"] == field, body
    return body


def check_page(r: Any) -> None:
    """What every HTML page must have: security headers, no inline code, a label for every input, the
    decision-support disclaimer and the knowledge-base version."""
    from tests.test_security import _Scan, assert_security_headers

    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    assert_security_headers(r)
    scan = _Scan()
    scan.feed(r.text)
    assert scan.inline_scripts == 0, "JavaScript lives in /static files only"
    assert not scan.handlers, scan.handlers
    assert scan.styles == 0 and scan.style_blocks == 0, "inline styles are blocked by the CSP"
    assert scan.blank_targets_without_noopener == 0
    unlabelled = [i for i, wrapped in scan.inputs if not wrapped and i not in scan.labels_for]
    assert not unlabelled, f"inputs without a label: {unlabelled}"
    assert DISCLAIMER in r.text
    assert KB_VERSION_LINE.search(r.text), "the page names its knowledge-base version"


# --- `spinemets serve` in a subprocess ------------------------------------------------------------------------


class Served(NamedTuple):
    """A running server: its base URL and its process."""

    base: str
    proc: subprocess.Popen[str]


def _wait_until_ready(base: str, proc: subprocess.Popen[str], log: IO[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"spinemets serve exited with {proc.returncode}:\n{log.read()[-4000:]}")
        try:
            with urllib.request.urlopen(base + "/api/v1/ping", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"spinemets serve did not answer on {base} within {timeout} s")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def server(env: Mapping[str, str] | None = None, *args: str, log: Path | None = None,
           timeout: float = 60.0) -> Iterator[Served]:
    """`spinemets serve` on a free loopback port, *env* added to the environment and *args* after the port.

    Waits until ``/api/v1/ping`` answers, yields ``(base URL, process)``, stops the server.  Its output goes to
    *log* (a file, never a pipe, so a chatty server never blocks); when it does not start, the error shows it.
    """
    from spinemets.api.devserver import HOST, free_port

    port = free_port()
    cmd = [SPINEMETS, "serve", "--host", HOST, "--port", str(port), *args]
    out = open(log, "w+") if log else tempfile.TemporaryFile(mode="w+")  # closed in the finally below
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    base = f"http://{HOST}:{port}"
    try:
        _wait_until_ready(base, proc, out, timeout)
        yield Served(base, proc)
    finally:
        _stop(proc)
        out.close()


QUIET = ("--no-access-log", "--log-level", "warning")


@pytest.fixture(scope="session")
def live_server_process() -> Iterator[Served]:
    """One quiet `spinemets serve` for the session (one per xdist worker); tests that read its memory use it."""
    with server({}, *QUIET) as served:
        yield served


@pytest.fixture(scope="session")
def live_server(live_server_process: Served) -> str:
    """The base URL of the session's server."""
    return live_server_process.base


@pytest.fixture(scope="session")
def http(live_server: str) -> Iterator[Any]:
    """An httpx client bound to the session's server."""
    import httpx

    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


# --- the command line ---------------------------------------------------------------------------------------


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script in a subprocess, as a user would."""
    return subprocess.run(
        [SPINEMETS, *args], input=stdin, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@dataclass(frozen=True)
class CliRun:
    """One run of the command line in this process, named as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


def exit_code(exc: SystemExit) -> int:
    """The exit code the interpreter would give for *exc* (``None`` is 0; a message is printed, code 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliRun]:
    """Run ``spinemets.cli.main(argv)`` in this process: ``cli("sins", "--level", "T12", stdin=...)``.

    Standard input is the given text or bytes (empty if none), output and errors are captured, and argparse's
    ``SystemExit`` (``--help``, a usage error) becomes the exit code.  Help is formatted for 80 columns, as it
    is when the output is a pipe.  Much faster than ``run_cli``; what needs a real process stays there.
    """
    from spinemets.cli import main

    monkeypatch.setenv("COLUMNS", "80")

    def run(*args: str, stdin: str | bytes | None = None) -> CliRun:
        raw = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
        capsys.readouterr()  # what came before is not this run's output
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exit_code(exc)
        out, err = capsys.readouterr()
        return CliRun(code, out, err)

    return run
