"""POST endpoints that take a core input model as their JSON body.

The route is declared to FastAPI with the core's input and result models (so the OpenAPI document is the
core's schema), but requests are served by a lean handler: the raw body is parsed and validated in one
step by pydantic-core (``model_validate_json``), the core function runs, and its result is serialised by
pydantic-core straight to bytes.  On invalid input the core's own validation runs again on the parsed
body, so the error names the field in the core's words (``sins.pain: 'x' is not allowed; allowed values:
...``), exactly as the CLI says it.
"""

from __future__ import annotations

import functools
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
    """Validate a JSON request body as *model*; errors name the field as the core names it.

    The body must be a JSON object (400 otherwise, naming the body), and every value in it must have a
    JSON type the model's schema allows (422 naming the field; see :func:`check_json_types`).
    """
    if not body.strip():
        raise InvalidInputError(prefix, "a JSON object is required as the request body")
    try:
        inp: BaseModel | None = model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            reason = (first.get("ctx") or {}).get("error", "invalid JSON")
            raise ProblemError("malformed-json", f"{prefix}: the request body is not valid JSON: {reason}", [prefix]) from None
        inp = None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # pragma: no cover - pydantic-core rejects it first
        raise ProblemError("malformed-json", f"{prefix}: the request body is not valid JSON: {exc}", [prefix]) from None
    if not isinstance(data, dict):
        raise ProblemError("malformed-json", f"{prefix}: the request body must be a JSON object, not {_shown(data)}",
                           [prefix])
    check_json_types(model, data, prefix)
    if inp is not None:
        return inp
    from spinemets.validation import parse

    return parse(model, data, prefix)  # raises InvalidInputError naming the field


# --- JSON types at the API edge -------------------------------------------------------------------------------
# Pydantic's lax mode turns `true` into 1 and "8" into 8; the core keeps that leniency for the CLI and the
# pages (form values are strings), but the API's contract is its OpenAPI document: there, a JSON value must
# have a type its schema allows.

TYPE_WORDS = {"boolean": "true, false", "integer": "an integer", "number": "a number", "string": "a string",
              "array": "a list", "object": "an object", "null": "null"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _shown(value: Any) -> str:
    """A JSON value as an error message shows it (long values cut short; lists and objects by kind)."""
    from spinemets.validation import echo

    kind = _json_type(value)
    if kind in ("null", "boolean"):
        return json.dumps(value)
    if kind in ("array", "object"):
        return TYPE_WORDS[kind]
    return echo(value)


def _describe(types: set[str]) -> str:
    order = [t for t in TYPE_WORDS if t in types and not (t == "integer" and "number" in types)]
    words = ", ".join(TYPE_WORDS[t] for t in order)
    head, _, last = words.rpartition(", ")
    return f"{head} or {last}" if head else last


class _JsonSchema:
    """The JSON Schema of an input model, as the OpenAPI document gives it, walked alongside a JSON value."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.root = model.model_json_schema()
        self.defs: dict[str, Any] = self.root.get("$defs", {})

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def branches(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        """The alternatives of *node* (anyOf/oneOf, flattened), each resolved."""
        node = self.resolve(node)
        alternatives = node.get("anyOf") or node.get("oneOf")
        if not alternatives:
            parts = node.get("allOf")
            return self.branches(parts[0]) if parts and len(parts) == 1 else [node]
        return [b for alt in alternatives for b in self.branches(alt)]

    @staticmethod
    def types(node: dict[str, Any]) -> set[str] | None:
        """The JSON types one branch allows; None when it does not say."""
        if "type" in node:
            declared = node["type"]
            return set(declared) if isinstance(declared, list) else {declared}
        if "enum" in node:
            return {_json_type(v) for v in node["enum"]}
        if "const" in node:
            return {_json_type(node["const"])}
        return None

    def check(self, node: dict[str, Any], value: Any, loc: tuple[Any, ...], prefix: str) -> None:
        kind = _json_type(value)
        allowed: set[str] = set()
        matching: list[dict[str, Any]] = []
        for branch in self.branches(node):
            types = self.types(branch)
            if types is None:
                return  # a branch that allows anything: nothing to check here
            allowed |= types
            if kind in types or (kind == "integer" and "number" in types):
                matching.append(branch)
        if not matching:
            from spinemets.validation import field_path

            raise InvalidInputError(field_path(loc, prefix), f"expected {_describe(allowed)}, got {_shown(value)}")
        if len(matching) == 1:
            self._check_inside(matching[0], value, loc, prefix)

    def _check_inside(self, node: dict[str, Any], value: Any, loc: tuple[Any, ...], prefix: str) -> None:
        if isinstance(value, dict):
            properties = node.get("properties", {})
            extra = node.get("additionalProperties")
            for key, item in value.items():
                sub = properties.get(key, extra)
                if isinstance(sub, dict):
                    self.check(sub, item, (*loc, key), prefix)
        elif isinstance(value, list):
            positional = node.get("prefixItems", [])
            items = node.get("items")
            for i, item in enumerate(value):
                sub = positional[i] if i < len(positional) else items
                if isinstance(sub, dict):
                    self.check(sub, item, (*loc, i), prefix)


@functools.cache
def _schema(model: type[BaseModel]) -> _JsonSchema:
    return _JsonSchema(model)


def check_json_types(model: type[BaseModel], data: Any, prefix: str) -> None:
    """Raise InvalidInputError naming the first value whose JSON type *model*'s schema does not allow.

    ``true`` where a number is expected, ``1`` where true or false is, ``"8"`` where an integer is: each
    is refused, where pydantic's lax mode would convert it.  Values the schema leaves open pass.
    """
    schema = _schema(model)
    try:
        schema.check(schema.root, data, (), prefix)
    except RecursionError:
        raise ProblemError("malformed-json", f"{prefix}: the request body is nested too deeply", [prefix]) from None


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
