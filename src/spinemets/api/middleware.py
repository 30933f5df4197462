"""Pure-ASGI middleware (cheap: no per-request task or body copy): security headers and a body-size limit."""

from __future__ import annotations

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
DEFAULT_MAX_BODY = 64 * 1024


class SecurityHeaders:
    """Adds the security headers to every HTTP response (pages, API, static files, errors)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimit:
    """Answers 413 problem+json when a request body is over ``max_body`` bytes.

    A declared Content-Length over the limit is refused before the body is read (the server holds the
    client to its declared length).  A body without one (chunked) is read here, up to the limit, and
    refused as soon as it passes it; otherwise it is handed on unchanged.
    """

    def __init__(self, app: Any, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_body + 1
                if declared > self.max_body:
                    await self._refuse(scope, send)
                    return
                await self.app(scope, receive, send)
                return
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        buffered = iter(messages)

        async def replay() -> Message:
            try:
                return next(buffered)
            except StopIteration:
                return await receive()

        await self.app(scope, replay, send)

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
