"""Pure-ASGI middleware (cheap: no per-request task or body copy): security headers and a body-size limit."""

from __future__ import annotations

import os
from typing import Any

from spinemets.api.problem import MEDIA_TYPE, problem_bytes

Scope = dict[str, Any]
Message = dict[str, Any]

# No inline script anywhere (JS lives in /static); inline <svg> is markup, not script.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# Responses under these paths can carry patient data (cases, results, questions, reports): never cached.
NO_STORE_PATHS = (
    "/assess", "/api/v1/assess", "/assessments", "/api/v1/assessments",
    "/ask", "/api/v1/ask", "/extract", "/api/v1/extract",
    # signed-in pages and the account, user and audit API carry personal data too
    "/account", "/admin", "/login", "/setup", "/api/v1/auth", "/api/v1/admin", "/api/v1/users", "/api/v1/audit",
    # measurements read from the PACS (the patient's images) and the FHIR export of saved assessments
    "/api/v1/dicom", "/api/v1/fhir",
)
NO_STORE = (b"cache-control", b"no-store")
HSTS = (b"strict-transport-security", b"max-age=31536000")
TRUST_PROXY_ENV = "SPINEMETS_TRUST_PROXY"
DEFAULT_MAX_BODY = 64 * 1024


def no_store(path: str) -> bool:
    """Whether *path* is one of NO_STORE_PATHS or below one (``/assessments/abc``, not ``/assessmentsx``)."""
    return any(path == p or path.startswith(p + "/") for p in NO_STORE_PATHS)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class SecurityHeaders:
    """Adds the security headers to every HTTP response (pages, API, static files, errors, 500s).

    Also ``Cache-Control: no-store`` on the paths that can carry patient data, and HSTS when the request
    came over https: the connection's own scheme, or ``X-Forwarded-Proto: https`` from a reverse proxy when
    ``trust_proxy`` (default: $SPINEMETS_TRUST_PROXY is 1) says the proxy's headers are to be believed.
    Installed outermost (see :func:`spinemets.api.app.create_app`), so that it also wraps the responses of
    Starlette's last-resort error handler.
    """

    def __init__(self, app: Any, trust_proxy: bool | None = None) -> None:
        self.app = app
        if trust_proxy is None:
            trust_proxy = os.environ.get(TRUST_PROXY_ENV, "") not in ("", "0")
        self.trust_proxy = trust_proxy

    def _https(self, scope: Scope) -> bool:
        forwarded = _header(scope, b"x-forwarded-proto")
        if self.trust_proxy and forwarded is not None:
            return forwarded.split(b",")[0].strip().lower() == b"https"
        # Untrusted, the header must not count, and uvicorn (proxy_headers, on by default for loopback
        # clients) may already have copied it into the scheme: with the header present, no HSTS.
        return scope.get("scheme") == "https" and forwarded is None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        if self._https(scope):
            extra.append(HSTS)
        replace = {b"cache-control"} if no_store(scope.get("path", "")) else set()
        if replace:
            extra.append(NO_STORE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in replace]
                names = {k.lower() for k, _ in headers}
                message["headers"] = headers + [h for h in extra if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """Raised to the app by :class:`BodySizeLimit`'s receive once the body passes the limit."""


class BodySizeLimit:
    """Answers 413 problem+json when a request body is over ``max_body`` bytes.

    The bytes actually received are counted, whatever the headers say (a chunked body may also claim a
    small Content-Length): the app's receive is wrapped, and the message that passes the limit is not
    handed on; the app gets :class:`BodyTooLarge` instead, whatever it then sends is dropped, and this
    middleware answers 413 and lets the server close the connection.  So no more than the limit (plus
    one message) is ever held.  A declared Content-Length over the limit is refused before any reading.
    """

    def __init__(self, app: Any, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > self.max_body):
            await self._refuse(scope, send)
            return
        received = 0
        over = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    over = True
                    raise BodyTooLarge(f"request body over {self.max_body} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:  # the app's answer to a body it never saw whole: the 413 below replaces it
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:  # an error of the app's own, not the body's
                raise
        if over and not started:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Any) -> None:
        status, body = problem_bytes(
            "body-too-large",
            f"the request body is larger than the limit of {self.max_body} bytes",
            instance=scope.get("path"),
            fields=["body"],
            limit=self.max_body,
        )
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body})
