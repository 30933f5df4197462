"""The command line under what a new user and the security review threw at it (issue 16).

Every case here printed a traceback, crashed or exited 0 before: a binary or non-UTF-8 case file, deeply
nested JSON, a `null` or `{}` case, `spinemets quantitative --help` (an unescaped %), a reader that closes the
pipe early (`| head`), an unreachable or unusable database, and `make run` that could not change port and
said "serving" before finding the port busy.  The answer is one line on standard error and the exit codes
of the README: 2 invalid input (or an unusable database), 3 insufficient data, 141 for a closed pipe.

Most tests run the command line in this process (the ``cli`` fixture); those that need a real process run the
installed console script or ``make`` and are marked slow: a closed or real pipe, a database named by the
environment, the console script's own --help, and the make targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spinemets.cli import EXIT_PIPE, MAX_DOCUMENT_BYTES, MAX_MESSAGE_CHARS, build_parser
from tests.support import ROOT, SPINEMETS, CliRun, run_cli


def one_error_line(r: subprocess.CompletedProcess[str] | CliRun) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


# --- --help of every command ------------------------------------------------------------------------------


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths.extend(command_paths(sub, (*prefix, name)))
    return paths


PATHS = command_paths(build_parser())


def test_every_command_is_reached():
    names = {" ".join(p) for p in PATHS}
    assert {"sins", "quantitative", "assess", "kb check", "kb show"} <= names
    assert len(PATHS) >= 20


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_command_has_working_help(path, cli):
    """Finding: `spinemets quantitative --help` crashed (ValueError: incomplete format, from "signal drop %")."""
    r = cli(*path, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: spinemets " + " ".join(path))


def test_main_help_states_the_exit_codes(cli):
    r = cli("--help")
    text = " ".join(r.stdout.split())
    assert r.returncode == 0 and "Exit codes: 0 success; 1 knowledge-base problem; 2 invalid" in text
    assert f"{EXIT_PIPE} output closed early" in text and "3 insufficient data (also a case with nothing to assess)" in text


@pytest.mark.slow  # a real process
def test_quantitative_help_as_a_user_runs_it():
    r = run_cli("quantitative", "--help")
    assert r.returncode == 0 and r.stderr == ""
    assert "signal drop %" in r.stdout and "Dixon fat fraction %" in r.stdout


def test_help_keeps_placeholders_and_escapes():
    from spinemets.cli import _Parser

    p = _Parser(prog="x")
    p.add_argument("--a", default=7, help="drop % of in-phase (default %(default)s), 100%% sure")
    assert "drop % of in-phase (default 7), 100% sure" in " ".join(p.format_help().split())


# --- case documents ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("content,message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "error: case: not UTF-8 text (byte 0x89 at offset 0); give a JSON document"),
    ('{"case_id": "caf\u00e9"}'.encode("latin-1"), "error: case: not UTF-8 text (byte 0xe9 at offset 16); give a JSON document"),
    (b"\x00\x01\x02", "error: case: not valid JSON: Expecting value at line 1 column 1"),
    (b"[" * 100_000 + b"]" * 100_000, "error: case: JSON nested too deeply to read"),
    (b'{"quantitative": {"sir": NaN}}', "error: case: not valid JSON: NaN is not a JSON number"),
    (b"null", "error: case: expected a JSON object, got null"),
    (b"[]", "error: case: expected a JSON object, got an array"),
    (b'"sins"', "error: case: expected a JSON object, got a string"),
    (b" " * (MAX_DOCUMENT_BYTES + 1), "error: case: larger than 1024 KiB; a case document is a small JSON object"),
])
def test_unusable_case_files(tmp_path, content, message, cli):
    """Finding: a binary or non-UTF-8 case file and deeply nested JSON printed tracebacks; `null` exited 0."""
    path = tmp_path / "case.json"
    path.write_bytes(content)
    r = cli("assess", str(path))
    assert r.returncode == 2
    assert one_error_line(r) == message


def test_unusable_case_on_standard_input(cli):
    r = cli("assess", "-", stdin=b"\xff\xfe{}")
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: case: not UTF-8 text (byte 0xff at offset 0); give a JSON document")


def test_a_byte_order_mark_is_fine(tmp_path, cli):
    path = tmp_path / "case.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"escc": {"grade": "0"}}).encode())
    assert cli("assess", str(path)).returncode == 0


def test_deep_json_the_parser_accepts_is_still_refused_cleanly(tmp_path, cli):
    path = tmp_path / "case.json"
    path.write_text('{"fracture": {"a": ' + "[" * 900 + "]" * 900 + "}}")
    r = cli("assess", str(path))
    assert r.returncode == 2 and one_error_line(r).startswith("error: case.fracture.a")


@pytest.mark.parametrize("case", [{}, {"case_id": "only-an-id"}])
def test_a_case_with_nothing_to_assess_is_insufficient_data(case, cli):
    """Finding: a `{}` case exited 0. Decision: nothing to assess is insufficient data (exit 3), sections named."""
    r = cli("assess", "-", stdin=json.dumps(case))
    assert r.returncode == 3
    assert one_error_line(r) == (
        "insufficient data: the case has nothing to assess; give at least one of: patient, sins, escc, "
        "probability, pathway, fracture, marrow, quantitative, primaries, prognosis, lesions")
    assert r.stdout.startswith("Assessment")


def test_pathway_scenario_must_be_an_object(tmp_path, cli):
    path = tmp_path / "scenario.json"
    path.write_text("null")
    r = cli("pathway", str(path))
    assert r.returncode == 2 and one_error_line(r) == "error: scenario: expected a JSON object, got null"


def test_quantitative_impossible_values_on_the_command_line(cli):
    """Finding: `ct_max_hu: -1e12` was classified; now exit 2 naming the field and the range."""
    r = cli("quantitative", "--ct-max-hu=-1e12")
    assert r.returncode == 2
    assert one_error_line(r).startswith(
        "error: quantitative.ct_max_hu: -1e+12 HU is outside the range this calculator accepts (-1024 to 3071 HU)")
    r = cli("assess", "-", stdin=json.dumps({"quantitative": {"sir": 1e308}}))
    assert r.returncode == 2 and "quantitative.sir: 1e+308 is outside the range" in one_error_line(r)


def test_long_messages_are_cut_short(cli):
    r = cli("kb", "show", "x" * 20_000)
    assert r.returncode == 2
    line = one_error_line(r)
    assert line.startswith("error: unknown knowledge-base id 'xxxx") and line.endswith("more characters]")
    assert len(line) < MAX_MESSAGE_CHARS + 50


# --- a reader that closes the pipe ------------------------------------------------------------------------


@pytest.mark.slow  # a real process
@pytest.mark.parametrize("args", [("kb", "sources"), ("sins", "--level", "T12"), ("schema",)])
def test_closed_pipe_is_quiet(args):
    """Finding: piping any command into `head` printed a BrokenPipeError traceback."""
    p = subprocess.Popen([SPINEMETS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before the first byte is written
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=60) == EXIT_PIPE
    assert err == ""


@pytest.mark.slow  # a real process
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("head") is None, reason="needs bash and head")
def test_real_pipe_into_head():
    # 130 KB of JSON: more than the pipe holds, so writing goes on after head has left.
    r = subprocess.run(["bash", "-c", f'"{SPINEMETS}" kb sources --json | head -1; echo "status ${{PIPESTATUS[0]}}" >&2'],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "[\n"
    assert r.stderr.strip() in ("status 0", f"status {EXIT_PIPE}"), r.stderr


# --- an unusable database ---------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_with_db(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SPINEMETS, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SPINEMETS_DATABASE_URL": url, "PYTHONWARNINGS": "ignore"})


STORE_COMMANDS = [("audit", "verify"), ("assessment", "list", "--user", "chief"), ("user", "list"), ("db", "current")]


@pytest.mark.slow  # a real process
@pytest.mark.parametrize("args", STORE_COMMANDS, ids=" ".join)
def test_unreachable_database(args):
    """Finding: SPINEMETS_DATABASE_URL pointing at a closed port printed a traceback for every store command."""
    r = run_with_db(f"postgresql://chief:s3cret-pw@127.0.0.1:{closed_port()}/spinemets", *args)
    assert r.returncode == 2
    line = one_error_line(r)
    assert line.startswith("error: database postgresql://chief:***@127.0.0.1:") and ": cannot use it: " in line
    assert line.endswith("Connection refused")
    assert "s3cret-pw" not in r.stderr + r.stdout


@pytest.mark.slow  # a real process
@pytest.mark.parametrize("args", STORE_COMMANDS[:2], ids=" ".join)
def test_unusable_sqlite_files(tmp_path, args):
    """A folder where the database file should be, and a file that is not a database."""
    folder = tmp_path / "db-is-a-folder"
    folder.mkdir()
    r = run_with_db(f"sqlite:///{folder}", *args)
    assert r.returncode == 2
    assert one_error_line(r).startswith(f"error: database {folder}") or one_error_line(r).startswith(
        f"error: database sqlite:///{folder}")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 100)
    r = run_with_db(f"sqlite:///{notes}", *args)
    assert r.returncode == 2
    assert one_error_line(r) == f"error: database sqlite:///{notes}: cannot use it: file is not a database"
    assert notes.read_text() == "not a database\n" * 100


def test_database_errors_are_caught_for_every_command():
    """The backstop in cli.main: a database error from any command (not only the store's) is one line, exit 2."""
    import sqlite3

    from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

    from spinemets.cli import _environment_error

    refused = OperationalError("SELECT 1", {}, sqlite3.OperationalError("unable to open database file\nmore"))
    assert _environment_error(refused).endswith(": cannot use it: unable to open database file")
    assert _environment_error(DatabaseError("x", {}, sqlite3.DatabaseError("file is not a database"))).endswith(
        "cannot use it: file is not a database")
    assert _environment_error(IntegrityError("x", {}, sqlite3.IntegrityError("UNIQUE"))) is None  # a bug, not the setup


def test_environment_errors_are_recognised():
    from spinemets.cli import _environment_error

    assert _environment_error(PermissionError(13, "Permission denied", "/srv/x.db.lock")) == (
        "/srv/x.db.lock: Permission denied")
    assert _environment_error(RecursionError()) == "the input is nested too deeply"
    assert _environment_error(BrokenPipeError(32, "Broken pipe")) is None
    assert _environment_error(ValueError("a bug")) is None  # bugs keep their traceback


# --- make run / make shell --------------------------------------------------------------------------------

MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="needs make")


def make(*args: str) -> list[str]:
    # -o: never (re)install .venv from a test; VENV: the environment running these tests.
    return [MAKE, "-C", str(ROOT), "-o", f"{sys.prefix}/.installed", "-o", f"{sys.prefix}/.installed-run",
            f"VENV={sys.prefix}", *args]


@needs_make
def test_make_run_passes_the_number_of_workers_to_serve():
    r = subprocess.run(make("-n", "run", "WORKERS=3"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "serve --host '127.0.0.1' --port '8000' --workers '3'" in r.stdout
    r = subprocess.run(make("-n", "run"), capture_output=True, text=True, timeout=60)
    assert "--workers '1'" in r.stdout  # one process unless asked


@needs_make
@pytest.mark.slow  # make, and the processes it starts
def test_make_run_refuses_a_busy_port_before_serving():
    """Finding: `make run` could not change port and said "serving" before finding 8000 busy."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run(make("run", f"PORT={port}"), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "serving" not in r.stdout + r.stderr
    assert f"make run: cannot serve on 127.0.0.1:{port}: Address already in use" in r.stderr
    assert f"make run PORT={port + 1}" in r.stderr


@needs_make
@pytest.mark.slow  # make, and the processes it starts
def test_make_run_refuses_a_port_that_is_not_a_number():
    r = subprocess.run(make("run", "PORT=80a"), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "make run: PORT='80a' is not a port number (1-65535)" in r.stderr


@needs_make
@pytest.mark.slow  # make, and the processes it starts
def test_make_run_serves_on_the_port_given():
    port = closed_port()
    p = subprocess.Popen(make("run", f"PORT={port}"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        seen = []
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("spinemets: serving "):
                assert line.startswith(f"spinemets: serving http://127.0.0.1:{port} ")
                break
        else:
            pytest.fail("no 'serving' line: " + "".join(seen))
        assert any(line.startswith("spinemets: serving ") for line in seen), "".join(seen)
        import httpx

        for _ in range(100):
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/api/v1/ping", timeout=5).status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not answer")
    finally:
        os.killpg(p.pid, signal.SIGTERM)  # make and the server it started: this test's own process group
        p.wait(timeout=30)
        p.stdout.close()


@needs_make
@pytest.mark.slow  # make, and the processes it starts
def test_make_shell_puts_spinemets_on_path():
    r = subprocess.run(make("--no-print-directory", "shell"), input="command -v spinemets\n", capture_output=True,
                       text=True, timeout=60, env={**os.environ, "SHELL": "/bin/sh"})
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == Path(sys.prefix) / "bin" / "spinemets"
