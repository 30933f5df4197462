"""Run ``spinemets serve`` in a subprocess on a free loopback port (tests, screenshots, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
# Base URL -> process id of each server running_server() has started (tests read its memory use).
SERVER_PIDS: dict[str, int] = {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(*extra_args: str, timeout: float = 30.0, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start the server, wait until /api/v1/ping answers, yield its base URL, stop it."""
    port = free_port()
    exe = Path(sys.executable).with_name("spinemets")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "spinemets"]
    cmd += ["serve", "--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning", *extra_args]
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty server never blocks on a full pipe
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"spinemets serve exited with {proc.returncode}:\n{log.read()}")
            try:
                with urllib.request.urlopen(base + "/api/v1/ping", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"spinemets serve did not answer on {base} within {timeout} s")
            time.sleep(0.05)
        SERVER_PIDS[base] = proc.pid
        yield base
    finally:
        SERVER_PIDS.pop(base, None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
        log.close()
