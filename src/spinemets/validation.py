"""Turn raw input (dicts, JSON, CLI strings) into core models, with our own errors.

Pydantic's ``ValidationError`` never leaves the package: it becomes an
:class:`~spinemets.errors.InvalidInputError` naming the field and, for a
closed set, the allowed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from spinemets.errors import InvalidInputError

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[Any, ...], prefix: str = "") -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    path = ""
    for p in parts:
        path += f"[{p}]" if p.isdigit() else (f".{p}" if path else p)
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
        elif err["type"] == "enum":
            msg = f"{err['input']!r} is not allowed; allowed values: {ctx.get('expected', '')}"
        elif err["type"] == "literal_error":
            msg = f"{err['input']!r} is not allowed; allowed values: {ctx.get('expected', '')}"
        elif err["type"] == "value_error":
            msg = str(ctx.get("error", err["msg"]))
        else:
            msg = err["msg"][0].lower() + err["msg"][1:]
            if "input" in err and err["type"] not in ("missing",):
                msg += f" (got {err['input']!r})"
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
