"""SVG drawings built from data: the spine diagram, ESCC axial schematics and the Fagan nomogram.

Every drawing is derived from the knowledge base or from a core result; nothing clinical is decided here.
* spine: the levels of :data:`spinemets.levels.ORDER`, coloured by the SINS location category that the
  knowledge-base table ``sins_location_levels`` gives each one;
* ESCC: one axial schematic per row of the table ``escc_grades``, drawn from the row's ``findings``
  (epidural disease, thecal sac deformed, cord abutted, cord compressed, CSF visible);
* Fagan: the pre-test probability, likelihood ratio and post-test probability of each step of a
  :class:`~spinemets.interpret.probability.ProbabilityResult`, on the classic three-axis layout.

All text is escaped; the output is :class:`markupsafe.Markup` for the templates.  No inline styles or
scripts (the Content-Security-Policy forbids them): colours are CSS classes in ``static/style.css``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

from spinemets.knowledge.loader import KnowledgeBase, load_kb
from spinemets.levels import ORDER, level_range

LEVEL_TABLE = "sins_location_levels"
ESCC_TABLE = "escc_grades"
CATEGORY_ORDER = ("junctional", "mobile", "semi_rigid", "rigid")


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _attrs(**kw: Any) -> str:
    parts = []
    for k, v in kw.items():
        if v is None or v is False:
            continue
        name = k.rstrip("_").replace("_", "-")
        parts.append(f' {name}="{escape(_f(v) if isinstance(v, float) else str(v))}"')
    return "".join(parts)


def category_label(category: str) -> str:
    return category.replace("_", "-")


# --- spine --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def level_categories(kb: KnowledgeBase) -> dict[str, str]:
    """level -> SINS location category, from the knowledge-base table."""
    out: dict[str, str] = {}
    for row in kb.table(LEVEL_TABLE).rows:
        for spec in row["levels"]:
            for level in level_range(spec):
                out[level] = row["category"]
    return out


def spine_diagram(level: str | None = None, category: str | None = None, kb: KnowledgeBase | None = None,
                  uid: str = "spine", marks: Mapping[str, str] | None = None) -> Markup:
    """Vertical spine, occiput (C0) to S5; ``level`` outlined and its region (``category``) emphasised.

    With *marks* (several lesions: each involved vertebra -> the words shown beside the first vertebra of its lesion,
    or "" for the others of a range), every marked vertebra is outlined instead, with its words."""
    kb = kb or load_kb()
    marks = marks or {}
    cats = level_categories(kb)
    if level is not None and category is None:
        category = cats.get(level)
    row_h, gap, top, x0 = 13.0, 2.0, 6.0, 40.0
    # room for the longest lesion label (about 7 units a character of the bold 11-unit marker text)
    width = max(290, int(x0 + 114 + 7 * max((len(t) for t in marks.values()), default=0) + 10))
    height = top + len(ORDER) * (row_h + gap) + 10
    title = "Spine diagram, occiput to sacrum, coloured by SINS location category"
    if marks:
        title += "; lesions: " + "; ".join(text for text in marks.values() if text)
    elif level:
        title += f"; level {level} highlighted ({category_label(category or '?')} spine)"
    elif category:
        title += f"; {category_label(category)} levels highlighted"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {_f(height)}" class="spine"'
        f' role="img" aria-labelledby="{escape(uid)}-title">',
        f'<title id="{escape(uid)}-title">{escape(title)}</title>',
    ]
    region_names = {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}
    prev_region = None
    for i, name in enumerate(ORDER):
        y = top + i * (row_h + gap)
        region = name[0]
        # Body widths grow caudally (a drawing convention, not anatomy to scale); the sacrum tapers.
        if name == "C0":
            w = 56.0
        elif region == "S":
            w = 78.0 - (int(name[1:]) - 1) * 12.0
        else:
            w = 34.0 + i * 2.2
        cat = cats.get(name, "none")
        classes = [f"v cat-{cat}"]
        if category and cat == category:
            classes.append("in-region")
        elif category:
            classes.append("dim")
        if name == level or name in marks:
            classes.append("selected")
        cls = " ".join(classes)
        tip = f"{name}: {category_label(cat)} spine"
        x = x0 + (90 - w) / 2
        if name == "C0":
            out.append(f'<g class="{cls}"><title>{escape("C0 (occiput): " + category_label(cat) + " spine")}</title>'
                       f'<ellipse cx="{_f(x0 + 45)}" cy="{_f(y + row_h / 2)}" rx="{_f(w / 2)}" ry="{_f(row_h / 2)}"/></g>')
        else:
            out.append(f'<g class="{cls}"><title>{escape(tip)}</title>'
                       f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(row_h)}" rx="3"/></g>')
        label_cls = "lvl selected-label" if name == level or name in marks else "lvl"
        out.append(f'<text x="{_f(x0 - 6)}" y="{_f(y + row_h - 3)}" class="{label_cls}" text-anchor="end">{escape(name)}</text>')
        if region != prev_region and not marks.get(name):  # a labelled row moves the region's name down a row
            out.append(f'<text x="{_f(x0 + 100)}" y="{_f(y + row_h - 3)}" class="region-name">{escape(region_names[region])}</text>')
            prev_region = region
        if marks.get(name):
            out.append(f'<path d="M{_f(x0 + 96)} {_f(y + row_h / 2)} l14 -6 v12 z" class="marker"/>'
                       f'<text x="{_f(x0 + 114)}" y="{_f(y + row_h - 2)}" class="marker-label">'
                       f'{escape(marks[name])}</text>')
        elif name == level and not marks:
            out.append(f'<path d="M{_f(x0 + 96)} {_f(y + row_h / 2)} l14 -6 v12 z" class="marker"/>'
                       f'<text x="{_f(x0 + 114)}" y="{_f(y + row_h - 2)}" class="marker-label">{escape(name)}: '
                       f'{escape(category_label(cat))}</text>')
    out.append("</svg>")
    return Markup("".join(out))


# --- ESCC ---------------------------------------------------------------------------------------------------


def _escc_depth(findings: Mapping[str, Any]) -> int:
    """How far the epidural tumour reaches, from the row's findings: 0 none ... 5 CSF effaced."""
    if not findings.get("epidural_disease"):
        return 0
    if not findings.get("thecal_sac_deformed"):
        return 1
    if not findings.get("cord_abutted"):
        return 2
    if not findings.get("cord_compressed"):
        return 3
    if findings.get("csf_visible", True):
        return 4
    return 5


def escc_axial(row: Any, *, selected: bool = False, uid: str = "escc") -> Markup:
    """Axial schematic of one ESCC grade (vertebral body anterior, at the top), drawn from ``row['findings']``."""
    grade = str(row["grade"])
    findings = row["findings"]
    depth = _escc_depth(findings)
    cx, canal_cy, canal_r = 60.0, 86.0, 27.0
    sac_cy, sac_r = 88.0, 21.0
    canal_top = canal_cy - canal_r
    # Tumour: a lens growing from the back of the vertebral body into the canal.
    tumour_bottom = {0: None, 1: canal_top + 7, 2: canal_top + 15, 3: 83.0, 4: 88.5, 5: 93.0}[depth]
    tumour_rx = {0: 0, 1: 13.0, 2: 16.0, 3: 17.0, 4: 19.0, 5: 24.0}[depth]
    cord_cy, cord_rx, cord_ry = 90.0, 9.0, 7.0
    if depth == 4:
        cord_cy, cord_rx, cord_ry = 94.0, 11.0, 4.5
    elif depth == 5:
        cord_cy, cord_rx, cord_ry = 99.0, 12.0, 3.5
    title = f"ESCC grade {grade}: {row['definition']}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 128" class="escc{" selected" if selected else ""}"'
        f' role="img" aria-labelledby="{escape(uid)}-t">',
        f'<title id="{escape(uid)}-t">{escape(title)}</title>',
        # posterior elements (ring of bone around the canal), then the body
        f'<circle cx="{_f(cx)}" cy="{_f(canal_cy)}" r="{_f(canal_r + 4)}" class="bone"/>',
        f'<path d="M{_f(cx - 6)} {_f(canal_cy + canal_r + 2)} l6 12 l6 -12 z" class="bone"/>',
        f'<ellipse cx="{_f(cx)}" cy="34" rx="36" ry="25" class="bone"><title>vertebral body</title></ellipse>',
        f'<circle cx="{_f(cx)}" cy="{_f(canal_cy)}" r="{_f(canal_r)}" class="epidural-fat"><title>spinal canal, epidural space</title></circle>',
    ]
    if depth < 5:
        parts.append(f'<circle cx="{_f(cx)}" cy="{_f(sac_cy)}" r="{_f(sac_r)}" class="csf"><title>thecal sac with CSF</title></circle>')
    else:
        parts.append(f'<circle cx="{_f(cx)}" cy="{_f(sac_cy)}" r="{_f(sac_r)}" class="sac-effaced"><title>thecal sac, no CSF visible</title></circle>')
    if tumour_bottom is not None:
        top = canal_top - 5  # arises from the posterior vertebral body
        cy = (top + tumour_bottom) / 2
        ry = (tumour_bottom - top) / 2
        parts.append(f'<ellipse cx="{_f(cx)}" cy="{_f(cy)}" rx="{_f(tumour_rx)}" ry="{_f(ry)}" class="tumour">'
                     '<title>epidural tumour</title></ellipse>')
        if depth == 5:
            parts.append(f'<path d="M{_f(cx - sac_r)} {_f(sac_cy)} a{_f(sac_r)} {_f(sac_r)} 0 0 0 {_f(2 * sac_r)} 0" '
                         'class="tumour-ring"><title>tumour around the cord</title></path>')
    parts.append(f'<ellipse cx="{_f(cx)}" cy="{_f(cord_cy)}" rx="{_f(cord_rx)}" ry="{_f(cord_ry)}" class="cord">'
                 '<title>spinal cord</title></ellipse>')
    parts.append("</svg>")
    return Markup("".join(parts))


def escc_rows(kb: KnowledgeBase | None = None) -> list[Any]:
    kb = kb or load_kb()
    return list(kb.table(ESCC_TABLE).rows)


# --- Fagan nomogram -----------------------------------------------------------------------------------------

P_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99,
           0.995, 0.998, 0.999)
LR_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
P_MIN, P_MAX = 0.001, 0.999
SERIES = 6  # colour classes fagan-s0 ... fagan-s5 in style.css


def _lo(p: float) -> float:
    p = min(P_MAX, max(P_MIN, p))
    return math.log10(p / (1 - p))


def _pct(p: float) -> str:
    """Tick label: 0.1 ... 99.9 without trailing zeros."""
    v = p * 100
    return f"{v:.1f}".rstrip("0").rstrip(".") if v < 1 or v > 99 else f"{v:.0f}"


def _pct1(p: float) -> str:
    """A value: one decimal, as the results print it."""
    return f"{p * 100:.1f}"


def fagan(steps: Iterable[tuple[str, float, float | None, float]], uid: str = "fagan") -> Markup:
    """Fagan nomogram.  ``steps``: (label, pre-test probability, likelihood ratio or None if infinite, post-test).

    Left axis: pre-test probability (0.1% at the top); middle: likelihood ratio (log scale, 1000 at the top);
    right: post-test probability (99.9% at the top).  On these scales a straight line through the pre-test
    probability and the likelihood ratio meets the post-test probability.
    """
    xl, xm, xr = 62.0, 190.0, 318.0
    cy, half = 232.0, 200.0
    k = half / 3  # pixels per log10 of odds (odds 10^-3 .. 10^3 cover the axis)

    def y_left(p: float) -> float:
        return cy + k * _lo(p)

    def y_right(p: float) -> float:
        return cy - k * _lo(p)

    def y_mid(lr: float) -> float:
        return cy - (k / 2) * math.log10(lr)

    steps = list(steps)
    title = "Fagan nomogram: " + "; ".join(
        f"{label}: pre-test {_pct1(pre)}%, LR {'infinite' if lr is None else f'{lr:.3g}'}, post-test {_pct1(post)}%"
        for label, pre, lr, post in steps
    ) if steps else "Fagan nomogram"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 380 470" class="fagan" role="img" aria-labelledby="{escape(uid)}-t">',
        f'<title id="{escape(uid)}-t">{escape(title)}</title>',
    ]
    for x in (xl, xm, xr):
        out.append(f'<line x1="{_f(x)}" y1="{_f(cy - half)}" x2="{_f(x)}" y2="{_f(cy + half)}" class="axis"/>')
    for p in P_TICKS:
        yl, yr = y_left(p), y_right(p)
        out.append(f'<line x1="{_f(xl - 5)}" y1="{_f(yl)}" x2="{_f(xl)}" y2="{_f(yl)}" class="tick"/>'
                   f'<text x="{_f(xl - 8)}" y="{_f(yl + 3)}" text-anchor="end" class="tick-label">{_pct(p)}</text>')
        out.append(f'<line x1="{_f(xr)}" y1="{_f(yr)}" x2="{_f(xr + 5)}" y2="{_f(yr)}" class="tick"/>'
                   f'<text x="{_f(xr + 8)}" y="{_f(yr + 3)}" class="tick-label">{_pct(p)}</text>')
    for lr in LR_TICKS:
        y = y_mid(lr)
        out.append(f'<line x1="{_f(xm - 4)}" y1="{_f(y)}" x2="{_f(xm + 4)}" y2="{_f(y)}" class="tick"/>'
                   f'<text x="{_f(xm + 7)}" y="{_f(y + 3)}" class="tick-label">{lr:g}</text>')
    out.append(f'<text x="{_f(xl)}" y="18" text-anchor="middle" class="axis-label">Pre-test %</text>')
    out.append(f'<text x="{_f(xm)}" y="18" text-anchor="middle" class="axis-label">Likelihood ratio</text>')
    out.append(f'<text x="{_f(xr)}" y="18" text-anchor="middle" class="axis-label">Post-test %</text>')
    for i, (label, pre, lr, post) in enumerate(steps):
        s = f"fagan-s{i % SERIES}"
        y1, y2 = y_left(pre), y_right(post)
        lr_text = "infinite" if lr is None else f"{lr:.3g}"
        out.append(
            f'<g class="fagan-line {s}"><title>{escape(f"{label}: pre-test {_pct1(pre)}%, LR {lr_text}, post-test {_pct1(post)}%")}</title>'
            f'<line x1="{_f(xl)}" y1="{_f(y1)}" x2="{_f(xr)}" y2="{_f(y2)}"/>'
            f'<circle cx="{_f(xl)}" cy="{_f(y1)}" r="4"/><circle cx="{_f(xr)}" cy="{_f(y2)}" r="4"/>'
        )
        if lr is not None and 0.001 <= lr <= 1000:
            out.append(f'<circle cx="{_f(xm)}" cy="{_f(y_mid(lr))}" r="3.5"/>')
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))


def fagan_for(result: Any, uid: str = "fagan") -> Markup:
    """The nomogram of a ProbabilityResult: one line per test of each scenario."""
    steps = []
    for sc in result.scenarios:
        for st in sc.steps:
            lr = st.lr_positive if st.result == "positive" else st.lr_negative
            steps.append((f"{sc.label}, test {st.test}", st.pre_test, lr, st.post_test))
    return fagan(steps, uid=uid)


def fagan_legend(result: Any) -> list[dict[str, Any]]:
    """Rows of the legend table, in the order (and colours) of :func:`fagan_for`."""
    rows = []
    i = 0
    for sc in result.scenarios:
        for st in sc.steps:
            lr = st.lr_positive if st.result == "positive" else st.lr_negative
            rows.append({"series": f"fagan-s{i % SERIES}", "label": sc.label, "step": st, "lr": lr})
            i += 1
    return rows
