"""Hardening of the REST API (issue 16): the review's probes as regression tests.

Each test names the finding it guards in its docstring.  The body-limit probe runs over a real HTTP server
(`spinemets serve` in a subprocess) with a raw socket, because a client library would not send the
contradictory framing headers; the rest run over real HTTP too where the server matters, in process where
the test needs to control the request's scheme or make the app fail.
"""

from __future__ import annotations

import asyncio
import json
import re
import select
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from spinemets.api import features as registry
from tests.support import PROBLEM, problem

LIMIT = 65536
FULL_SINS = {"level": "T12", "pain": "mechanical", "lesion": "lytic", "alignment": "normal",
             "collapse": "gt50", "posterolateral": "bilateral"}


# --- finding 1: the body limit counts the bytes received ------------------------------------------------------


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert m, status
    return int(m.group(1))


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _send_chunked_with_small_length(base: str, mebibytes: int) -> tuple[bytes, int]:
    """POST a chunked JSON body of *mebibytes* MiB that also declares `Content-Length: 4`.

    Reads the answer while sending (the server answers and closes long before the body ends); returns
    the raw response and how many body bytes were sent before it came.
    """
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    sent = 0
    response = b""
    try:
        sock.sendall(b"POST /api/v1/sins HTTP/1.1\r\nHost: spinemets\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunk(b'{"level": "'))
        piece = _chunk(b"x" * 65536)
        for _ in range(mebibytes * 16):
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break
            assert writable, "the server neither reads nor answers"
            try:
                sock.sendall(piece)
            except OSError:  # the server answered and closed: read what it said
                break
            sent += 65536
        else:
            sock.sendall(_chunk(b'"}') + b"0\r\n\r\n")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            response += data
            head, _, body = response.partition(b"\r\n\r\n")
            m = re.search(rb"content-length: (\d+)", head, re.I)
            if m and len(body) >= int(m.group(1)):
                break
    finally:
        sock.close()
    return response, sent


def test_chunked_body_with_small_content_length_is_refused_and_not_buffered(live_server_process):
    """Finding 1 (high): a chunked body of several MiB that also declares `Content-Length: 4` was read whole
    (the limit trusted the header): the server answered 422 echoing the whole value and grew by the body's
    size several times over.  Now the bytes received are counted: 413 problem+json, and no growth."""
    base, proc = live_server_process
    before = _rss_kib(proc.pid)
    response, sent = _send_chunked_with_small_length(base, mebibytes=16)
    time.sleep(0.3)
    after = _rss_kib(proc.pid)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"] == "/problems/body-too-large"
    assert len(response) < 4096, "nothing of the body is echoed"
    assert after - before < 4 * 1024, f"the server grew by {after - before} KiB"
    assert sent < 16 * 2**20, "the server stopped reading long before the body ended"


class _Receiver:
    """An ASGI receive callable giving *chunks* body messages of *size* bytes, counting the calls."""

    def __init__(self, chunks: int, size: int) -> None:
        self.left = chunks
        self.size = size
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        self.left -= 1
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.left > 0}


async def _echo_length_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A downstream app that reads the whole body and answers with its length."""
    total = 0
    while True:
        message = await receive()
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = str(total).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _run_limit(headers: list[tuple[bytes, bytes]], chunks: int, size: int) -> tuple[list[dict[str, Any]], _Receiver]:
    from spinemets.api.middleware import BodySizeLimit

    receiver = _Receiver(chunks, size)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/sins", "headers": headers}
    asyncio.run(BodySizeLimit(_echo_length_app, max_body=1000)(scope, receiver, send))
    return sent, receiver


@pytest.mark.parametrize("headers", [
    [(b"content-length", b"4"), (b"transfer-encoding", b"chunked")],
    [(b"transfer-encoding", b"chunked"), (b"content-length", b"4")],
    [(b"content-length", b"4")],
    [],
])
def test_body_limit_counts_bytes_whatever_the_headers_say(headers):
    """Finding 1 (high): whatever the framing headers claim, the limit holds on the bytes received, and no
    more than the limit is read before the 413 (the receive loop stops at the first message past it)."""
    sent, receiver = _run_limit(headers, chunks=1000, size=300)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["limit"] == 1000
    assert receiver.calls == 4, "stops reading at the first message past the limit"


def test_body_limit_passes_bodies_within_it():
    """Finding 1: bodies within the limit reach the app whole, chunked or not."""
    for headers in ([(b"transfer-encoding", b"chunked")], [(b"content-length", b"900")]):
        sent, _ = _run_limit(headers, chunks=3, size=300)
        assert sent[0]["status"] == 200 and sent[1]["body"] == b"900"


# --- finding 2: echoed values are cut short --------------------------------------------------------------------


def _assert_clipped(text: str, length: int) -> None:
    assert f"…({length} characters)" in text, text[:300]
    assert "x" * 81 not in text
    assert len(text) < 600


@pytest.mark.parametrize("body", [
    {"pain": "x" * 20_000},                        # pydantic enum error (input echoed)
    {"level": "x" * 20_000},                       # the core's own message with {value!r}
    {"x" * 20_000: 1},                             # an unknown field: the key is echoed as the field name
])
def test_echoed_values_are_cut_short_in_api_errors(http, body):
    """Finding 2 (high): errors echoed the offending value whole (a 50 MiB value came back in the 422)."""
    r = http.post("/api/v1/sins", json=body)
    data = problem(r, 422)
    _assert_clipped(data["detail"], 20_000)
    assert all(len(f) < 200 for f in data["fields"]) and len(data["field"]) < 200
    assert len(r.content) < 2000


def test_echoed_values_are_cut_short_in_not_found_and_media_type_errors(http):
    """Finding 2: the request path (404) and the media type (415) are echoed cut short as well."""
    data = problem(http.get("/api/v1/kb/statements/" + "x" * 5000), 404)
    _assert_clipped(data["detail"], 5000)
    data = problem(http.get("/api/v1/" + "y" * 5000), 404)
    assert "…(" in data["detail"] and len(data["detail"]) < 600 and len(data["instance"]) < 200
    r = http.post("/api/v1/sins", content=b"{}", headers={"content-type": "text/" + "z" * 5000})
    data = problem(r, 415)
    assert "…(" in data["detail"] and len(data["detail"]) < 600


def test_echoed_values_are_cut_short_in_cli_errors(cli):
    """Finding 2: the CLI gives the same, cut-short message (it shares spinemets.validation)."""
    r = cli("assess", "-", stdin=json.dumps({"sins": {"pain": "x" * 20_000}}))
    assert r.returncode != 0
    assert "case.sins.pain" in r.stderr
    _assert_clipped(r.stderr, 20_000)


def test_clip_helpers():
    """Finding 2: the helpers keep short values whole and cut long ones after 80 characters."""
    from spinemets.validation import ECHO_LIMIT, clip, clip_message, echo

    assert ECHO_LIMIT == 80
    assert clip("short") == "short" and echo("short") == "'short'" and echo(3) == "3"
    assert clip("a" * 80) == "a" * 80
    assert clip("a" * 81) == "a" * 80 + "…(81 characters)"
    assert echo("b" * 1000) == "'" + "b" * 79 + "…(1000 characters)"
    assert echo(list(range(1000))).endswith("characters)") and len(echo(list(range(1000)))) < 110
    msg = "'" + "c" * 500 + "' is not a vertebral level; allowed: C0 to S5 (the patient's level)"
    assert clip_message(msg) == "'" + "c" * 80 + "…(500 characters)' is not a vertebral level; allowed: C0 to S5 (the patient's level)"
    assert clip_message("no endpoint /api/v1/" + "d" * 300 + "; see /docs").startswith("no endpoint /api/v1/ddd")
    assert "…(309 characters) see /docs" in clip_message("no endpoint /api/v1/" + "d" * 300 + "; see /docs")
    for once in (msg, "sins." + "e" * 300 + ": unknown field", "got " + echo("f" * 500)):
        assert clip_message(clip_message(once)) == clip_message(once), "cutting short twice changes nothing"
    assert clip_message("x: " + echo("g" * 500)) == "x: " + echo("g" * 500)
    unquoted = "cannot use " + "many words " * 2000
    assert len(clip_message(unquoted)) < 4100 and clip_message(unquoted).endswith(f"…({len(unquoted)} characters)")
    ordinary = "sins.pain: 'sometimes' is not allowed; allowed values: 'mechanical', 'occasional', 'none'"
    assert clip_message(ordinary) == ordinary


# --- finding 3: headers -----------------------------------------------------------------------------------------


def _boom_client(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Any:
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    def boom(data: Any) -> Any:
        raise RuntimeError("secret internals")

    patched = tuple(registry.LoadedFeature(f.feature, boom, f.input_model, f.result_model) if f.name == "sins" else f
                    for f in registry.available())
    monkeypatch.setattr(registry, "available", lambda: patched)
    return TestClient(create_app(web=False), raise_server_exceptions=False, **kw)


def test_security_headers_on_500(monkeypatch):
    """Finding 3 (low): a 500 response lacked the security headers (the error was answered outside them)."""
    from tests.test_security import assert_security_headers

    r = _boom_client(monkeypatch).post("/api/v1/sins", json=FULL_SINS)
    assert problem(r, 500)["type"] == "/problems/internal-error" and "secret" not in r.text
    assert_security_headers(r)


NO_STORE = [
    ("GET", "/assess", None), ("POST", "/api/v1/assess", {}), ("POST", "/api/v1/assess", None),
    ("GET", "/api/v1/assessments", None), ("GET", "/assessments", None), ("GET", "/assessments/abc", None),
    ("GET", "/api/v1/assessments/abc", None), ("GET", "/ask", None), ("POST", "/api/v1/ask", {"question": "MRI?"}),
    ("GET", "/extract", None), ("POST", "/api/v1/extract", {"text": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), NO_STORE)
def test_no_store_on_responses_that_can_carry_patient_data(http, method, path, body):
    """Finding 3 (low): responses that can carry patient data had no `Cache-Control: no-store`."""
    r = http.request(method, path, json=body)
    assert r.headers["cache-control"] == "no-store", (r.status_code, r.headers.get("cache-control"))


def test_other_responses_keep_their_caching(http):
    """Finding 3: knowledge-base and static responses are not marked no-store (only patient data is)."""
    for path in ("/api/v1/kb", "/static/style.css", "/kb", "/sins"):
        r = http.get(path)
        assert r.headers.get("cache-control") != "no-store", path


def test_hsts_only_over_https(monkeypatch, http):
    """Finding 3 (low): HSTS is sent when the request came over https (directly, or through a proxy that
    SPINEMETS_TRUST_PROXY=1 says to trust), and never over plain http."""
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    assert "strict-transport-security" not in http.get("/api/v1/ping").headers
    # uvicorn itself believes X-Forwarded-Proto from a loopback client and rewrites the scheme: still no HSTS.
    assert "strict-transport-security" not in http.get("/api/v1/ping", headers={"x-forwarded-proto": "https"}).headers
    monkeypatch.delenv("SPINEMETS_TRUST_PROXY", raising=False)
    app = create_app(web=False)
    plain = TestClient(app)
    assert "strict-transport-security" not in plain.get("/api/v1/ping").headers
    forwarded = plain.get("/api/v1/ping", headers={"x-forwarded-proto": "https"})
    assert "strict-transport-security" not in forwarded.headers, "an untrusted X-Forwarded-Proto is ignored"
    secure = TestClient(app, base_url="https://testserver")
    for r in (secure.get("/api/v1/ping"), secure.get("/api/v1/nothing")):
        assert r.headers["strict-transport-security"] == "max-age=31536000"
    monkeypatch.setenv("SPINEMETS_TRUST_PROXY", "1")
    proxied = TestClient(create_app(web=False))
    r = proxied.get("/api/v1/ping", headers={"x-forwarded-proto": "https"})
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in proxied.get("/api/v1/ping", headers={"x-forwarded-proto": "http"}).headers


# --- finding 4: the API contract --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"null", b"[1, 2]", b'"sins"', b"3", b"true"])
def test_non_object_body_is_400(http, raw):
    """Finding 4 (low): a JSON `null` body got 200 (an empty assessment); any non-object is a 400 naming the
    body."""
    r = http.post("/api/v1/sins", content=raw, headers={"content-type": "application/json"})
    body = problem(r, 400)
    assert body["type"] == "/problems/malformed-json" and body["field"] == "sins"
    assert "JSON object" in body["detail"]
    assert problem(http.post("/api/v1/assess", content=b"null", headers={"content-type": "application/json"}), 400)[
        "field"] == "case"


@pytest.mark.parametrize(("path", "body", "field", "expected"), [
    ("/api/v1/noms", {"sins_total": True}, "noms.sins_total", "an integer"),
    ("/api/v1/probability", {"pre_test": True, "tests": [{"modality": "mri", "result": "positive"}]},
     "probability.pre_test", "a number"),
    ("/api/v1/pathway", {"age": False}, "pathway.age", "an integer"),
    ("/api/v1/assess", {"pathway": {"age": True}}, "case.pathway.age", "an integer"),
    ("/api/v1/escc", {"epidural_disease": 1}, "escc.epidural_disease", "true, false or null"),
    ("/api/v1/noms", {"sins_total": "8"}, "noms.sins_total", "an integer"),
    ("/api/v1/sins", {"level": 12}, "sins.level", "a string"),
    ("/api/v1/probability", {"pre_test": 0.1, "tests": [{"modality": "mri", "result": True}]},
     "probability.tests[0].result", "a string"),
])
def test_json_types_follow_the_schema(http, path, body, field, expected):
    """Finding 4 (low): JSON booleans were coerced to numbers (and numbers to booleans, numbers in strings to
    numbers); at the API edge a value must have a JSON type the schema allows (422 naming the field)."""
    if path.rsplit("/", 1)[1] in ("quantitative",) and registry.get("quantitative") is None:
        pytest.skip("quantitative is not installed")
    data = problem(http.post(path, json=body), 422)
    assert data["field"] == field and data["type"] == "/problems/invalid-input"
    assert f"expected {expected}" in data["detail"], data["detail"]


def test_json_types_check_keeps_valid_requests(http):
    """Finding 4: integers where numbers are expected, nulls where allowed and whole feature maps pass."""
    assert http.post("/api/v1/probability", json={"pre_test": 0, "tests": [{"modality": "mri", "result": "positive"}],
                                                  "purely_lytic": None}).status_code == 200
    assert http.post("/api/v1/sins", json=FULL_SINS).json()["total"] == 14
    if registry.get("fracture") is not None:
        assert http.post("/api/v1/fracture", json={"features": {"convex_posterior_border": "present"}}).status_code == 200


def _openapi() -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from spinemets.api.app import create_app

    return TestClient(create_app()).get("/openapi.json").json()


def test_openapi_declares_problem_json_for_every_error():
    """Finding 4 (low): error responses were declared as application/json (FastAPI's own 422 schema on the
    knowledge-base GETs), 404s and 500s not at all."""
    spec = _openapi()
    problem_ref = "#/components/schemas/Problem"
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert "500" in codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in codes, (method, path)
            if op.get("requestBody"):
                assert {"400", "413", "415"} <= codes, (method, path)
            for code, resp in op["responses"].items():
                if int(code) >= 400:
                    assert list(resp["content"]) == [PROBLEM], (method, path, code)
                    assert resp["content"][PROBLEM]["schema"]["$ref"] == problem_ref
    kb = spec["paths"]["/api/v1/kb/statements/{statement_id}"]["get"]["responses"]
    assert {"404", "422", "500"} <= set(kb)


def test_method_not_allowed_lists_every_method_of_the_path(http):
    """Finding 4: a 405 listed only the methods of the first route matching the path (`Allow: GET` on
    /api/v1/ping, which also takes POST), so the header contradicted the OpenAPI document."""
    r = http.request("DELETE", "/api/v1/ping")
    problem(r, 405)
    assert sorted(m.strip() for m in r.headers["allow"].split(",")) == ["GET", "POST"]
    r = http.request("PUT", "/api/v1/sins")
    problem(r, 405)
    assert r.headers["allow"] == "POST"


def test_serve_reports_a_busy_port_before_saying_serving():
    """Finding: a busy port was reported only after "serving http://127.0.0.1:8000"."""
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "spinemets", "serve", "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "serving" not in r.stdout
    assert f"cannot serve on 127.0.0.1:{port}" in r.stderr and "--port" in r.stderr


def test_throttled_sign_in_is_a_documented_problem_type():
    """Finding: the 429 of a throttled sign-in was not in the problem table."""
    from spinemets.api.problem import PROBLEM_TYPES

    assert PROBLEM_TYPES["too-many-requests"].status == 429
