"""Vertebral body heights from landmark points (issue 14): the anterior, middle and posterior heights (mm) between
the superior and inferior endplate points, their ratios, and, against the height expected for the vertebra (the
heights of the adjacent vertebrae, given by the caller), the height loss, its Genant grade (``tables/genant_grades``)
and the SINS collapse category it supports (``tables/sins_points``).

* Without a reference height only the heights and ratios are given: the loss of a vertebra whose walls have all
  lost height alike is invisible in its own ratios, so no grade and no SINS value is guessed.
* A loss under the first Genant grade (20%) is not a fracture by those grades: the SINS collapse stays open between
  "none" and "no collapse with more than 50% of the body involved" (the involvement decides, not the heights).
* A loss exactly on a boundary (a Genant boundary, or the 50% of SINS) is said to lie between the two categories.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, Field

from spinemets.dicom.series import SeriesError

WALLS = ("anterior", "middle", "posterior")
POINTS = tuple(f"{w}_{e}" for w in WALLS for e in ("superior", "inferior"))
TOLERANCE = 0.05  # percentage points within which a loss counts as on a boundary (rounding of the inputs)


class HeightResult(BaseModel):
    heights_mm: dict[str, float]
    ratios: dict[str, float] = Field(description="anterior/posterior (wedge) and middle/posterior (biconcavity)")
    reference_mm: float | None = None
    loss_percent: float | None = None
    genant_grade: str | None = Field(default=None, description="0-3, or 'between 1 and 2' on a boundary")
    sins_collapse: str | None = Field(default=None, description="gt50 or lt50 (SINS), or None when open")
    notes: list[str] = Field(default_factory=list)
    draft: bool = Field(default=True, description="the Genant grades are verified only through a secondary source")


def vertebral_height(points: Mapping[str, Sequence[float]], reference_mm: Sequence[float] | None = None,
                     kb: object | None = None) -> HeightResult:
    """The heights from the six landmark points (see the module docstring); *reference_mm* are the heights expected
    (e.g. the posterior heights of the vertebrae above and below), averaged."""
    from spinemets.knowledge.loader import load_kb

    kb = kb or load_kb()
    missing = [p for p in POINTS if p not in points]
    if missing:
        raise SeriesError(f"the landmark points {', '.join(missing)} are missing (give all six: {', '.join(POINTS)})",
                          "points")
    extra = [p for p in points if p not in POINTS]
    if extra:
        raise SeriesError(f"unknown landmark points {', '.join(extra)} (the points are {', '.join(POINTS)})", "points")
    xyz = {}
    for name in POINTS:
        value = np.asarray(points[name], dtype=float)
        if value.shape != (3,) or not np.all(np.isfinite(value)):
            raise SeriesError(f"{name} must be three numbers x,y,z in mm", "points")
        xyz[name] = value
    heights = {w: float(np.linalg.norm(xyz[f"{w}_superior"] - xyz[f"{w}_inferior"])) for w in WALLS}
    if min(heights.values()) <= 0:
        raise SeriesError("a wall's superior and inferior points coincide: its height is zero", "points")
    ratios = {"anterior_to_posterior": heights["anterior"] / heights["posterior"],
              "middle_to_posterior": heights["middle"] / heights["posterior"]}
    out = HeightResult(heights_mm={k: round(v, 2) for k, v in heights.items()},
                       ratios={k: round(v, 3) for k, v in ratios.items()})
    if not reference_mm:
        out.notes.append("No reference height: give the heights expected for this vertebra (those of the adjacent "
                         "vertebrae) for the height loss, its Genant grade and the SINS collapse.")
        return out
    refs = [float(r) for r in reference_mm]
    if not all(math.isfinite(r) and r > 0 for r in refs):
        raise SeriesError("the reference heights must be positive numbers of mm", "reference_mm")
    reference = sum(refs) / len(refs)
    loss = 100.0 * (1 - min(heights.values()) / reference)
    out.reference_mm, out.loss_percent = round(reference, 2), round(loss, 1)
    if loss < 0:
        out.notes.append("Every wall is taller than the reference: no height loss.")
        loss = 0.0
    out.genant_grade = _genant(loss, kb)
    from spinemets.scores.sins import collapse_threshold_percent

    fifty = collapse_threshold_percent(kb)
    first = min(float(r["to_percent"]) for r in kb.table("genant_grades").rows if r["to_percent"] is not None)
    if abs(loss - fifty) <= TOLERANCE:
        out.notes.append(f"A loss of {fifty:g}% lies between the SINS collapse categories (more than and less than "
                         f"{fifty:g}%): left for you to decide.")
    elif loss > fifty:
        out.sins_collapse = "gt50"
    elif loss >= first - TOLERANCE and not abs(loss - first) <= TOLERANCE:
        out.sins_collapse = "lt50"
    else:
        from spinemets.scores.sins import POINTS as SINS_POINTS

        labels = {r["value"]: str(r["label"]).lower() for r in kb.table(SINS_POINTS).where(component="collapse")}  # type: ignore[attr-defined]
        out.notes.append(f"A loss under {first:g}% is not a fracture by the Genant grades: the SINS collapse is "
                         f"\"{labels['none']}\" or \"{labels['involved_no_collapse']}\", which the heights do not "
                         "tell (the share of the body involved decides).")
    out.notes.append("The Genant grades are verified only through a later editorial (draft).")
    return out


def _genant(loss: float, kb: object) -> str:
    rows = sorted(kb.table("genant_grades").rows, key=lambda r: float(r["from_percent"]))  # type: ignore[attr-defined]
    for lower, upper in zip(rows, rows[1:]):
        if abs(loss - float(upper["from_percent"])) <= TOLERANCE:
            return f"between {lower['grade']} and {upper['grade']}"
    for r in rows:
        end = r["to_percent"]
        if loss >= float(r["from_percent"]) and (end is None or loss < float(end)):
            return str(r["grade"])
    return str(rows[-1]["grade"])


def describe(r: HeightResult, kb: object | None = None) -> list[str]:
    """The heights in words, one line each (the command line's text and the REST answer's summary)."""
    from spinemets.knowledge.loader import load_kb
    from spinemets.scores.sins import POINTS as SINS_POINTS

    kb = kb or load_kb()
    lines = ["heights: " + ", ".join(f"{k} {v:.1f} mm" for k, v in r.heights_mm.items()),
             "ratios: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in r.ratios.items())]
    if r.loss_percent is not None and r.reference_mm is not None:
        label = (str(kb.table(SINS_POINTS).row(f"collapse-{r.sins_collapse}")["label"]).lower()  # type: ignore[attr-defined]
                 if r.sins_collapse else "left open (see below)")
        grade = f"Genant grade {r.genant_grade}" if r.genant_grade is not None else "no Genant grade"
        lines.append(f"height loss: {r.loss_percent:.1f}% of {r.reference_mm:.1f} mm; {grade}; SINS collapse: {label}")
    return lines + list(r.notes)
