"""POST endpoints that take a core input model as their JSON body.

The route is declared to FastAPI with the core's input and result models (so the OpenAPI document is the
core's schema), but requests are served by a lean handler: the raw body is parsed and validated in one
step by pydantic-core (``model_validate_json``), the core function runs, and its result is serialised by
pydantic-core straight to bytes.  On invalid input the core's own validation runs again on the parsed
body, so the error names the field in the core's words (``sins.pain: 'x' is not allowed; allowed values:
...``), exactly as the CLI says it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import request_response

from spinemets.api.cache import ResponseCache
from spinemets.errors import InvalidInputError, SpinemetsError

JSON = "application/json"


class ProblemError(SpinemetsError):
    """An HTTP-level problem (malformed JSON, wrong media type) that names the offending input."""

    def __init__(self, slug: str, detail: str, fields: list[str]) -> None:
        self.slug = slug
        self.detail = detail
        self.fields = fields
        super().__init__(detail)


def parse_body(model: type[BaseModel], body: bytes, prefix: str) -> BaseModel:
    """Validate a JSON request body as *model*; errors name the field as the core names it."""
    if not body.strip():
        raise InvalidInputError(prefix, "a JSON object is required as the request body")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            reason = (first.get("ctx") or {}).get("error", "invalid JSON")
            raise ProblemError("malformed-json", f"{prefix}: the request body is not valid JSON: {reason}", [prefix]) from None
    try:
        data = json.loads(body)
    except ValueError as exc:  # pragma: no cover - pydantic-core rejects it first
        raise ProblemError("malformed-json", f"{prefix}: the request body is not valid JSON: {exc}", [prefix]) from None
    from spinemets.validation import parse

    return parse(model, data, prefix)  # raises InvalidInputError naming the field


def _check_media_type(request: Request, prefix: str) -> None:
    ctype = request.headers.get("content-type")
    if ctype:
        media = ctype.split(";", 1)[0].strip().lower()
        if media != JSON and not media.endswith("+json"):
            raise ProblemError("unsupported-media-type", f"{prefix}: send the body as application/json (got {media})", [prefix])


def add_body_route(
    app: FastAPI,
    path: str,
    *,
    prefix: str,
    input_model: type[BaseModel],
    func: Callable[[Any], BaseModel],
    result_model: type[BaseModel] | None,
    summary: str,
    description: str,
    tags: list[str],
    responses: dict[int | str, dict[str, Any]],
    example: dict[str, Any] | None = None,
    cache: ResponseCache | None = None,
    threaded: bool = False,
) -> None:
    """Add ``POST path`` serving ``func(input_model)``; see the module docstring."""

    async def handle(request: Request) -> Response:
        _check_media_type(request, prefix)
        body = await request.body()
        if cache is not None:
            hit = cache.get(prefix, body)
            if hit is not None:
                return Response(hit, media_type=JSON, headers={"x-cache": "hit"})
        inp = parse_body(input_model, body, prefix)
        result = await run_in_threadpool(func, inp) if threaded else func(inp)
        data = result.model_dump_json().encode()
        if cache is not None:
            cache.put(prefix, body, data)
        return Response(data, media_type=JSON, headers={"x-cache": "miss"} if cache is not None else None)

    # The declared endpoint gives FastAPI the signature for the OpenAPI document (body = the core model).
    async def declared(body: Any) -> Response:
        result = await run_in_threadpool(func, body) if threaded else func(body)
        return Response(result.model_dump_json(), media_type=JSON)

    default = Body(..., examples=[example]) if example else Body(...)
    declared.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=input_model, default=default)]
    )
    declared.__annotations__ = {"body": input_model, "return": Response}
    declared.__name__ = "api_" + prefix
    app.add_api_route(path, declared, methods=["POST"], response_model=result_model, summary=summary,
                      description=description, tags=tags, responses=responses)
    route = app.router.routes[-1]
    assert getattr(route, "path", None) == path
    route.app = request_response(handle)  # type: ignore[attr-defined]
