"""Turn raw input (dicts, JSON, CLI strings) into core models, with our own errors.

Pydantic's ``ValidationError`` never leaves the package: it becomes an
:class:`~spinemets.errors.InvalidInputError` naming the field and, for a
closed set, the allowed values.

A value repeated in an error message is cut short (:func:`echo`, :func:`clip`,
:func:`clip_message`): at most ``ECHO_LIMIT`` characters, then how long it was,
so that a huge value never comes back whole (CLI, API and pages alike).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from spinemets.errors import InvalidInputError

M = TypeVar("M", bound=BaseModel)
ECHO_LIMIT = 80
MESSAGE_LIMIT = 4000  # a whole message, as a last resort (the longest list of allowed values is far shorter)
# In a finished message: a quoted literal (a repr) or a run without spaces, longer than the limit.  A quote
# opens only after a non-word character, so the apostrophe of "patient's" is never taken for one.
_LONG_ECHO = re.compile(
    r"(?<!\w)(?P<q>['\"])(?P<quoted>(?:\\.|(?!(?P=q))[^\\\n]){%d,})(?P=q)(?!\w)"
    r"|(?P<run>\S{%d,}(?: characters\))?)" % (ECHO_LIMIT + 1, ECHO_LIMIT + 1)
)
_CLIPPED = re.compile(r"…\(\d+ characters\)")  # what clip() leaves: clip_message keeps it as it is


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """*text* itself when it is at most *limit* characters; otherwise its start and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} characters)"


def echo(value: Any) -> str:
    """``repr(value)`` for an error message, cut short after ``ECHO_LIMIT`` characters.

    A string counts its own characters (``'xxx…(70000 characters)``); anything else its repr's.
    """
    if isinstance(value, str):
        if len(value) <= ECHO_LIMIT:
            return repr(value)
        return f"{repr(value[:ECHO_LIMIT])[:ECHO_LIMIT]}…({len(value)} characters)"
    return clip(repr(value))


def _clip_match(m: re.Match[str]) -> str:
    if len(m.group(0)) <= 3 * ECHO_LIMIT and _CLIPPED.search(m.group(0)):  # cut short already
        return m.group(0)
    if m.group("run") is not None:
        return clip(m.group("run"))
    return f"{m.group('q')}{clip(m.group('quoted'))}{m.group('q')}"


def clip_message(message: str) -> str:
    """Cut short every long value a finished message repeats (quoted literals and long unbroken runs).

    For messages built elsewhere (``f"{value!r} is not ..."``): the words around the value stay whole.  A
    message still longer than ``MESSAGE_LIMIT`` (a value with spaces repeated without quotes) is cut there.
    """
    if len(message) <= ECHO_LIMIT:
        return message
    return clip(_LONG_ECHO.sub(_clip_match, message), MESSAGE_LIMIT)


def field_path(loc: tuple[Any, ...], prefix: str = "") -> str:
    """The dotted name of a field (``sins.pain``, ``probability.tests[0].source``); long keys cut short."""
    # a list index is an int in the location; a key that looks like a number ("0") is still a key
    parts = [(p if isinstance(p, int) else clip(str(p))) for p in loc if not str(p).startswith("function-")]
    path = ""
    for p in parts:
        path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else p)
    if prefix:
        path = f"{prefix}.{path}" if path else prefix
    return path or "input"


def parse(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate *data* as *model*; raise InvalidInputError naming the first bad field."""
    if isinstance(data, model):
        return data
    if data is None:
        data = {}
    if not isinstance(data, (Mapping, BaseModel)):
        raise InvalidInputError(prefix or "input", f"expected an object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = field_path(err["loc"], prefix)
        ctx = err.get("ctx") or {}
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(_fields(model, err["loc"][:-1])))
            msg = f"unknown field; allowed fields: {allowed}"
        elif err["type"] in ("enum", "literal_error"):
            msg = f"{echo(err['input'])} is not allowed; allowed values: {ctx.get('expected', '')}"
        elif err["type"] == "value_error":
            msg = clip_message(str(ctx.get("error", err["msg"])))
        else:
            msg = clip_message(err["msg"][0].lower() + err["msg"][1:])
            if "input" in err and err["type"] not in ("missing",):
                msg += f" (got {echo(err['input'])})"
        raise InvalidInputError(path, msg) from None


def _fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info = current.model_fields.get(str(part))
        if info is None:
            break
        current = _inner_model(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def allowed(enum: type[Enum]) -> str:
    return ", ".join(repr(m.value) for m in enum)
