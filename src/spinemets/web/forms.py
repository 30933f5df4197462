"""HTML forms built from the core's pydantic input models, and form data turned back into core input.

The form is presentation only: every value goes to the core function, which validates it and names the
field in its error.  Field kinds follow the annotation:

* ``bool | None``            -> select: not known / yes / no
* ``bool`` (default False)   -> checkbox
* ``Literal`` / ``Enum``     -> select (radio group where asked for)
* ``list[Literal | Enum]``   -> checkboxes; when ``None`` is allowed ("not assessed") a "none" box says
  "assessed, none" and sends ``[]``
* ``int`` / ``float``        -> number input with the model's bounds
* ``str``                    -> text input (a select when options are supplied)
* ``list[small model]``      -> a few repeated rows of that model's fields
* ``dict`` / nested models   -> left to the JSON API
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen
from pydantic import BaseModel

from spinemets.errors import InvalidInputError

NONE = "__none__"  # the "assessed: none" checkbox of an optional list
YES, NO = "yes", "no"


@dataclass
class FieldSpec:
    name: str
    label: str
    kind: str  # select, bool, checkbox, checks, number, text, rows
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str | None = None
    min: float | None = None
    max: float | None = None
    step: str | None = None
    maxlength: int | None = None
    none_label: str | None = None
    rows: int = 0
    children: list[FieldSpec] = field(default_factory=list)
    radio: bool = False

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")


def humanise(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) != len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
    return annotation, False


def _choices(tp: Any) -> list[str] | None:
    if typing.get_origin(tp) is Literal:
        return [str(a) for a in typing.get_args(tp)]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [str(m.value) for m in tp]
    return None


def _bounds(info: Any) -> tuple[float | None, float | None, int | None]:
    lo = hi = None
    maxlen = None
    for m in info.metadata:
        if isinstance(m, Ge):
            lo = m.ge
        elif isinstance(m, Gt):
            lo = m.gt
        elif isinstance(m, Le):
            hi = m.le
        elif isinstance(m, Lt):
            hi = m.lt
        elif isinstance(m, MaxLen):
            maxlen = m.max_length
    return lo, hi, maxlen


OptionSource = Callable[[str], Sequence[tuple[str, str]] | None]


def form_fields(
    model: type[BaseModel],
    *,
    options: OptionSource | None = None,
    labels: Mapping[str, str] | None = None,
    hints: Mapping[str, str] | None = None,
    value_labels: Mapping[str, str] | None = None,
    skip: Sequence[str] = (),
    radios: Sequence[str] = (),
    repeat: int = 2,
    prefix: str = "",
) -> list[FieldSpec]:
    """The form fields of *model*, in declaration order."""
    specs: list[FieldSpec] = []
    labels = labels or {}
    hints = hints or {}
    value_labels = value_labels or {}

    def opt(c: str) -> tuple[str, str]:
        return c, value_labels.get(c) or humanise(c)
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        full = f"{prefix}{name}"
        tp, optional = _unwrap_optional(info.annotation)
        optional = optional or not info.is_required()
        label = labels.get(name) or humanise(name)
        hint = hints.get(name, info.description)
        extra = options(name) if options else None
        choices = _choices(tp)
        origin = typing.get_origin(tp)
        if extra is not None and origin is not list:
            specs.append(FieldSpec(full, label, "select", list(extra), hint, radio=name in radios))
        elif tp is bool:
            if info.default is False and not _unwrap_optional(info.annotation)[1]:
                specs.append(FieldSpec(full, label, "checkbox", hint=hint))
            else:
                specs.append(FieldSpec(full, label, "bool", [(YES, "yes"), (NO, "no")], hint, radio=name in radios))
        elif choices is not None:
            specs.append(FieldSpec(full, label, "select", [opt(c) for c in choices], hint, radio=name in radios))
        elif origin is list:
            (item,) = typing.get_args(tp) or (str,)
            item_choices = _choices(item)
            if extra is not None:
                item_choices_pairs = list(extra)
            elif item_choices is not None:
                item_choices_pairs = [opt(c) for c in item_choices]
            else:
                item_choices_pairs = []
            if item_choices_pairs:
                none_label = "assessed: none" if info.default is None else None
                specs.append(FieldSpec(full, label, "checks", item_choices_pairs, hint, none_label=none_label))
            elif isinstance(item, type) and issubclass(item, BaseModel):
                children = form_fields(item, prefix="")
                if all(c.kind in ("select", "bool", "number", "text") for c in children):
                    specs.append(FieldSpec(full, label, "rows", hint=hint, rows=repeat, children=children))
        elif tp in (int, float):
            lo, hi, _ = _bounds(info)
            specs.append(FieldSpec(full, label, "number", hint=hint, min=lo, max=hi, step="1" if tp is int else "any"))
        elif tp is str:
            _, _, maxlen = _bounds(info)
            specs.append(FieldSpec(full, label, "text", hint=hint, maxlength=maxlen))
        # dicts and nested models: JSON API only
    return specs


def parse_form(specs: Sequence[FieldSpec], form: Any, prefix: str) -> dict[str, Any]:
    """Form data (a starlette MultiDict / QueryParams) -> the core's input dict; blanks mean 'not given'."""
    out: dict[str, Any] = {}
    for s in specs:
        if s.kind == "rows":
            rows = []
            for i in range(s.rows):
                row = {}
                for c in s.children:
                    v = form.get(f"{s.name}.{i}.{c.name}")
                    if v is not None and v.strip() != "":
                        row[c.name] = _scalar(c, v, f"{prefix}.{s.name}[{i}].{c.name}")
                if row:
                    rows.append(row)
            if rows:
                out[s.name] = rows
            continue
        if s.kind == "checks":
            values = [v for v in form.getlist(s.name) if v]
            if NONE in values:
                if len(values) > 1:
                    raise InvalidInputError(f"{prefix}.{s.name}", f"tick either '{s.none_label}' or some values, not both")
                out[s.name] = []
            elif values:
                out[s.name] = values
            continue
        if s.kind == "checkbox":
            if form.get(s.name) not in (None, ""):
                out[s.name] = True
            continue
        v = form.get(s.name)
        if v is None or v.strip() == "":
            continue
        out[s.name] = _scalar(s, v, f"{prefix}.{s.name}")
    return out


def yes_no(value: str, path: str) -> bool:
    """'yes' / 'no' from a form select; anything else is an error naming the field."""
    v = value.strip()
    if v == YES:
        return True
    if v == NO:
        return False
    raise InvalidInputError(path, f"{v!r} is not allowed; allowed values: 'yes', 'no' (or leave blank)")


def _scalar(s: FieldSpec, v: str, path: str) -> Any:
    if s.kind == "bool":
        return yes_no(v, path)
    return v.strip()  # numbers stay text: the core's models coerce and check them


def field_of_error(path: str | None, prefix: str) -> str | None:
    """'pathway.age' -> 'age'; 'probability.tests[0].source' -> 'tests[0].source'."""
    if not path:
        return None
    if path.startswith(prefix + "."):
        return path[len(prefix) + 1:]
    return path
