"""Spinal Instability Neoplastic Score (SINS), Fisher et al. 2010.

Six components, each looked up in ``tables/sins_points.yaml``; the location
may be given as a vertebral level (mapped through
``tables/sins_location_levels.yaml``) or as its category.  The total's
category comes from ``tables/sins_categories.yaml``.  A missing component
gives ``insufficient_data`` with the fields named and the range of totals
still possible, never a total.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spinemets.errors import ContradictoryInputError, InvalidInputError
from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.knowledge.models import TableRow
from spinemets.levels import level_range, parse_level
from spinemets.results import Citer, Component, Notice, Result, trusted
from spinemets.validation import parse

POINTS = "sins_points"
LEVELS = "sins_location_levels"
CATEGORIES = "sins_categories"
COMPONENTS = ("location", "pain", "lesion", "alignment", "collapse", "posterolateral")
UNKNOWN = {"unknown", "indeterminate", "not_assessed", "not assessed", ""}


class Location(StrEnum):
    junctional = "junctional"
    mobile = "mobile"
    semi_rigid = "semi_rigid"
    rigid = "rigid"


class Pain(StrEnum):
    mechanical = "mechanical"
    occasional = "occasional"
    none = "none"


class Lesion(StrEnum):
    lytic = "lytic"
    mixed = "mixed"
    blastic = "blastic"


class Alignment(StrEnum):
    subluxation = "subluxation"
    deformity = "deformity"
    normal = "normal"


class Collapse(StrEnum):
    gt50 = "gt50"
    lt50 = "lt50"
    involved_no_collapse = "involved_no_collapse"
    none = "none"


class Posterolateral(StrEnum):
    bilateral = "bilateral"
    unilateral = "unilateral"
    none = "none"


ENUMS: dict[str, type[StrEnum]] = {
    "location": Location,
    "pain": Pain,
    "lesion": Lesion,
    "alignment": Alignment,
    "collapse": Collapse,
    "posterolateral": Posterolateral,
}


@functools.cache
def _aliases() -> dict[str, dict[str, str]]:
    """component -> {spelling: canonical value}, from the aliases in the points table."""
    out: dict[str, dict[str, str]] = {c: {} for c in COMPONENTS}
    for row in load_kb().table(POINTS).rows:
        comp, value = row["component"], row["value"]
        out[comp][_norm(value)] = value
        for alias in row.get("aliases") or []:
            out[comp][_norm(alias)] = value
    return out


def _norm(text: str) -> str:
    return text.strip().lower().replace(" ", "_").replace("-", "_")


def normalise(component: str, value: Any) -> str | None:
    """Map a user's spelling to the canonical value; ``unknown`` means not known (None)."""
    if value is None:
        return None
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, bool):  # yes/no for pain is ambiguous about 'occasional'
        raise ValueError(f"give one of: {', '.join(m.value for m in ENUMS[component])}")
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    key = _norm(value)
    if key in UNKNOWN or value.strip().lower() in UNKNOWN:
        return None
    canonical = _aliases()[component].get(key)
    if canonical is None:
        allowed = ", ".join(repr(m.value) for m in ENUMS[component])
        raise ValueError(f"{value!r} is not allowed; allowed values: {allowed} (or 'unknown')")
    return canonical


class SinsInput(BaseModel):
    """What is known about one lesion.  Any field may be missing; missing is never scored as zero."""

    model_config = ConfigDict(extra="forbid")

    level: str | None = Field(default=None, description="Most affected vertebral level, C0 (occiput) to S5")
    location: Location | None = Field(default=None, description="SINS location category, if no level is given")
    pain: Pain | None = Field(default=None, description="mechanical / occasional / none")
    lesion: Lesion | None = Field(default=None, description="lytic / mixed / blastic")
    alignment: Alignment | None = Field(default=None, description="subluxation / deformity / normal")
    collapse: Collapse | None = Field(default=None, description="gt50 / lt50 / involved_no_collapse / none")
    posterolateral: Posterolateral | None = Field(default=None, description="bilateral / unilateral / none")

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and v.strip().lower() in UNKNOWN):
            return None
        try:
            return parse_level(v)
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None

    @field_validator(*COMPONENTS, mode="before")
    @classmethod
    def _component(cls, v: Any, info: Any) -> str | None:
        return normalise(info.field_name, v)


class SinsResult(Result):
    instrument: str = "sins"
    total: int | None = None
    possible_min: int
    possible_max: int
    category: str | None = None
    category_label: str | None = None
    implication: str | None = None
    surgical_consultation: bool | None = None
    level: str | None = None

    def headline(self) -> str:
        return self.summary


def collapse_threshold_percent(kb: KnowledgeBase | None = None) -> float:
    """The height loss (%) that separates the SINS collapse categories <50% and >50% (tables/sins_points).

    A collapse of exactly this value falls in neither category: callers must leave it unknown.
    """
    row = (kb or load_kb()).table(POINTS).row("collapse-gt50")
    return float(row["above_percent"])


def location_of(level: str, kb: KnowledgeBase | None = None) -> tuple[Location, TableRow]:
    """SINS location category of a vertebral level, with the table row that says so."""
    found = _level_map(kb or load_kb()).get(level)
    if found is None:  # pragma: no cover - the table covers C0-S5, checked by the tests
        raise InvalidInputError("level", f"{level!r} is in no SINS location category")
    return found


@functools.lru_cache(maxsize=8)
def _level_map(kb: KnowledgeBase) -> dict[str, tuple[Location, TableRow]]:
    out: dict[str, tuple[Location, TableRow]] = {}
    for row in kb.table(LEVELS).rows:
        for spec in row["levels"]:
            for name in level_range(spec):
                out[name] = (Location(row["category"]), row)
    return out


def sins(data: SinsInput | dict[str, Any], kb: KnowledgeBase | None = None) -> SinsResult:
    """Score SINS from whatever is known; see the module docstring."""
    kb = kb or load_kb()
    inp = parse(SinsInput, data, "sins")
    cite = Citer(kb)
    table = kb.table(POINTS)

    # (the plain text of each value: the enum members stay in the input, the result carries words)
    values: dict[str, str | None] = {c: None if (v := getattr(inp, c)) is None else str(v.value) for c in COMPONENTS}
    components: list[Component] = []
    level_note = None
    if inp.level is not None:
        derived, level_row = location_of(inp.level, kb)
        if inp.location is not None and inp.location != derived:
            raise ContradictoryInputError(
                ["sins.level", "sins.location"],
                f"level {inp.level} is {derived.value} spine, but location was given as {inp.location.value}",
            )
        values["location"] = derived.value
        cite.cite_row(LEVELS, level_row)
        level_note = f"{inp.level} lies in the {derived.value.replace('_', '-')} spine"

    total = 0
    lo = hi = 0
    missing: list[str] = []
    for comp in COMPONENTS:
        value = values[comp]
        rows = table.where(component=comp)
        if value is None:
            missing.append("sins.level or sins.location" if comp == "location" else f"sins.{comp}")
            pts = [int(r["points"]) for r in rows]
            lo += min(pts)
            hi += max(pts)
            components.append(trusted(Component, None, name=comp, value=None, note="not given: not scored"))
            continue
        row = next(r for r in rows if r["value"] == value)
        points = int(row["points"])
        total += points
        lo += points
        hi += points
        note = level_note if comp == "location" else None
        components.append(cite.component(comp, POINTS, row, value=value, label=row["label"], points=points, note=note))

    if missing:
        return _partial(kb, cite, components, missing, lo, hi, inp.level)

    cat = _category(kb, total)
    implication = cite.notice("implication", cat["implication"], kb_items=[f"{CATEGORIES}.{cat.id}"])
    return trusted(
        SinsResult, None,
        status="complete",
        summary=f"total {total}/{_highest_total(kb)}: {cat['label'].lower()}",
        components=components,
        notices=[implication],
        total=total,
        possible_min=total,
        possible_max=total,
        category=cat["category"],
        category_label=cat["label"],
        implication=cat["implication"],
        surgical_consultation=bool(cat["surgical_consultation"]),
        level=inp.level,
        **cite.common(),  # type: ignore[arg-type]
    )


def _category(kb: KnowledgeBase, total: int) -> TableRow:
    for row in kb.table(CATEGORIES).rows:
        if int(row["min"]) <= total <= int(row["max"]):
            return row
    raise InvalidInputError("sins.total", f"{total} is outside 0-18")  # pragma: no cover


def _highest_total(kb: KnowledgeBase) -> int:
    """The highest SINS total, the top of the last category."""
    return max(int(row["max"]) for row in kb.table(CATEGORIES).rows)


def _range_category(kb: KnowledgeBase, lo: int, hi: int) -> str | None:
    """The category when every possible total falls in the same one (still no total)."""
    a, b = _category(kb, lo), _category(kb, hi)
    return a["category"] if a.id == b.id else None


def _spanned(kb: KnowledgeBase, lo: int, hi: int) -> list[TableRow]:
    """The category rows that some total from *lo* to *hi* falls in."""
    return [row for row in kb.table(CATEGORIES).rows if int(row["min"]) <= hi and lo <= int(row["max"])]


def _partial(
    kb: KnowledgeBase, cite: Citer, components: list[Component], missing: list[str], lo: int, hi: int, level: str | None
) -> SinsResult:
    """Missing components: the range of totals, and the category and consultation when the range decides them."""
    rows = _spanned(kb, lo, hi)
    items = [f"{CATEGORIES}.{row.id}" for row in rows]
    consult = {bool(row["surgical_consultation"]) for row in rows}
    certain = _range_category(kb, lo, hi)
    lead = f"insufficient data: {len(missing)} of {len(COMPONENTS)} components missing"
    notices: list[Notice] = []
    if len(consult) == 1:
        labels = " or ".join(row["label"].lower() for row in rows)
        consultation = rows[0]["consultation"]
        summary = f"{lead}; total unknown, but every possible total is {lo}-{hi}: {labels}. {consultation}"
        message = rows[0]["implication"] if certain else consultation
        notices.append(cite.notice("implication", message, kb_items=items))
    else:
        summary = f"{lead}; total could be {lo}-{hi}"
    row = rows[0] if certain else None
    return trusted(
        SinsResult, None,
        status="insufficient_data",
        summary=summary,
        components=components,
        notices=notices,
        missing=missing,
        possible_min=lo,
        possible_max=hi,
        level=level,
        category=certain,
        category_label=row["label"] if row else None,
        implication=row["implication"] if row else None,
        surgical_consultation=consult.pop() if len(consult) == 1 else None,
        **cite.common(),  # type: ignore[arg-type]
    )
