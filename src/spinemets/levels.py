"""Vertebral level names: parsing, validation and ordering (C0/occiput to S5).

This is anatomy's naming scheme, not a clinical rule: which level belongs to
which SINS region is data in ``tables/sins_location_levels.yaml``.
"""

from __future__ import annotations

import re

from spinemets.errors import InvalidInputError

REGIONS: dict[str, int] = {"C": 7, "T": 12, "L": 5, "S": 5}
REGION_NAMES = {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}
_FIRST = {"C": 0, "T": 1, "L": 1, "S": 1}

ORDER: list[str] = [f"C{i}" for i in range(0, 8)] + [f"T{i}" for i in range(1, 13)]
ORDER += [f"L{i}" for i in range(1, 6)] + [f"S{i}" for i in range(1, 6)]
INDEX: dict[str, int] = {name: i for i, name in enumerate(ORDER)}

_LEVEL = re.compile(r"^\s*([A-Za-z]+)\s*-?\s*(\d+)\s*$")
_PREFIXES = {"C": "C", "T": "T", "TH": "T", "D": "T", "L": "L", "S": "S"}

ALLOWED_TEXT = "C0 (occiput) to C7, T1-T12, L1-L5, S1-S5"


def parse_level(value: str, field: str = "level") -> str:
    """Return the canonical name of a vertebral level or raise InvalidInputError.

    >>> parse_level("t12")
    'T12'
    >>> parse_level("occiput")
    'C0'
    """
    if not isinstance(value, str):
        raise InvalidInputError(field, f"expected a vertebral level such as 'T12', got {value!r}")
    text = value.strip()
    if text.lower() in ("occiput", "occ", "c0", "o-c0"):
        return "C0"
    m = _LEVEL.match(text)
    if not m:
        raise InvalidInputError(field, f"{value!r} is not a vertebral level; allowed: {ALLOWED_TEXT}")
    prefix = _PREFIXES.get(m.group(1).upper())
    number = int(m.group(2))
    if prefix is None:
        raise InvalidInputError(field, f"{value!r} is not a vertebral level; allowed: {ALLOWED_TEXT}")
    lo, hi = _FIRST[prefix], REGIONS[prefix]
    if not lo <= number <= hi:
        lo_name = "C0 (occiput)" if prefix == "C" else f"{prefix}{lo}"
        raise InvalidInputError(
            field,
            f"{value!r} is not a vertebral level: {REGION_NAMES[prefix]} levels are {lo_name} to {prefix}{hi}",
        )
    return f"{prefix}{number}"


_SPAN = re.compile(r"^\s*(.+?)\s*[-\u2013\u2014]\s*([A-Za-z].*?)\s*$")  # the second end starts with a letter


def parse_span(value: str, field: str = "levels") -> str:
    """A vertebral level or an inclusive range of them, canonical: ``"t7"`` -> ``"T7"``, ``"T9 - t7"`` -> ``"T7-T9"``
    (a range is put in order), ``"T7-T7"`` -> ``"T7"``; every spelling :func:`parse_level` takes for one level
    (``"T-7"``, ``"occiput"``).  Raises InvalidInputError naming *field*."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field, "give the vertebra ('T7') or an inclusive range ('T7-T9')")
    try:
        return parse_level(value, field)
    except InvalidInputError as exc:
        single = exc
    m = _SPAN.match(value)
    if m is None:
        raise single
    a, b = parse_level(m.group(1), field), parse_level(m.group(2), field)
    if INDEX[a] > INDEX[b]:
        a, b = b, a
    return a if a == b else f"{a}-{b}"


def level_range(spec: str) -> list[str]:
    """Expand an inclusive range such as ``"C7-T2"`` into its levels."""
    first, _, last = spec.partition("-")
    a, b = INDEX[parse_level(first)], INDEX[parse_level(last or first)]
    if a > b:
        a, b = b, a
    return ORDER[a : b + 1]
