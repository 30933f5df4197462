"""``spinemets serve``: run the web application (REST API and pages) with uvicorn.

Registered through ``spinemets.cli.PLUGIN_COMMANDS``; imports nothing heavy until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least one worker")
    return value


def cmd_serve(a: argparse.Namespace) -> int:
    import os

    import uvicorn

    from spinemets.knowledge.loader import load_kb

    kb = load_kb()  # a broken knowledge base stops here with exit code 1, before binding the port
    if a.max_body is not None:
        os.environ["SPINEMETS_MAX_BODY"] = str(a.max_body)
    if a.preload_ask:
        os.environ["SPINEMETS_PRELOAD_ASK"] = "1"
    os.environ.setdefault("SPINEMETS_PRELOAD_EXTRACT", "1")  # the report reader is built at start-up
    problem = port_problem(a.host, a.port)
    if problem is not None:  # said before "serving", so a busy port is the first thing the user reads
        print(f"spinemets serve: cannot serve on {a.host}:{a.port}: {problem}; choose another with --port",
              file=sys.stderr)
        return 2
    os.environ.setdefault("SPINEMETS_SERVE_URL", f"http://{a.host}:{a.port}")
    # the workers of this start share it: the first to find no admin prints the set-up link, the others do not
    import datetime as dt

    os.environ["SPINEMETS_SERVE_STARTED"] = dt.datetime.now(dt.timezone.utc).isoformat()
    trust_proxy = os.environ.get("SPINEMETS_TRUST_PROXY") == "1"
    print(f"spinemets: serving http://{a.host}:{a.port} (knowledge base {kb.version}); "
          "decision support for healthcare professionals", flush=True)
    uvicorn.run(
        "spinemets.api.app:create_app", factory=True, host=a.host, port=a.port, workers=a.workers,
        log_level=a.log_level, access_log=a.access_log, server_header=False,
        # Forwarded headers (client address, scheme) are believed only behind a proxy the operator trusts:
        # the sign-in throttle keys on the client address.
        proxy_headers=trust_proxy,
    )
    return 0


def port_problem(host: str, port: int) -> str | None:
    """Why HOST:PORT cannot be bound, or None (SO_REUSEADDR as uvicorn sets it)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def register(sub: Any, add: Any) -> None:
    s = sub.add_parser(
        "serve", help="run the web app and REST API (default http://127.0.0.1:8000)",
        description="Run the web app and REST API with uvicorn (default http://127.0.0.1:8000). "
        "Decision support for healthcare professionals.",
    )
    s.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    s.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    s.add_argument("--workers", type=_workers, default=1, help="worker processes (default 1)")
    s.add_argument("--max-body", type=int, default=None, metavar="BYTES",
                   help="largest request body accepted (default 65536); larger bodies get 413")
    s.add_argument("--preload-ask", action="store_true",
                   help="load ask's retrieval model at start-up (otherwise the first question waits a few seconds)")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    s.add_argument("--no-access-log", dest="access_log", action="store_false", help="do not log each request")
    s.set_defaults(func=cmd_serve)
