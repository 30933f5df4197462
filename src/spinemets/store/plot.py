"""A small SVG plot of one patient's SINS totals and ESCC grades over time (no script, no style attribute).

The bands (SINS stability categories, high-grade ESCC) come from the knowledge base; nothing clinical is
decided here.  Every text is escaped.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

W, PANEL_H = 640, 190
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 30, 40
BAND_FILL = {"stable": "#e7f3ea", "potentially_unstable": "#fdf3d8", "unstable": "#fbe3e1", "low": "#e7f3ea",
             "high": "#fbe3e1"}
LINE = "#1f4e79"
HIGHLIGHT = "#b3261e"


def _x_positions(points: list[dict[str, Any]], x0: float, x1: float) -> list[float]:
    dates = [dt.date.fromisoformat(p["study_date"]) for p in points]
    if len(points) == 1:
        return [(x0 + x1) / 2]
    span = (max(dates) - min(dates)).days
    if span == 0:
        return [x0 + (x1 - x0) * i / (len(points) - 1) for i in range(len(points))]
    xs = [x0 + (x1 - x0) * (d - min(dates)).days / span for d in dates]
    # same-day points side by side
    for i in range(1, len(xs)):
        if xs[i] - xs[i - 1] < 6:
            xs[i] = min(x1, xs[i - 1] + 6)
    return xs


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11, weight: str = "normal",
          fill: str = "#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}" font-family="system-ui, sans-serif">{escape(text)}</text>')


def comparison_svg(cmp: dict[str, Any], uid: str = "cmp") -> str:
    """Two panels (SINS total, ESCC grade) of every point in ``cmp['series']``; the compared pair is marked."""
    from spinemets.knowledge.loader import load_kb
    from spinemets.scores.escc import GRADES
    from spinemets.scores.escc import TABLE as ESCC_TABLE
    from spinemets.scores.sins import CATEGORIES

    kb = load_kb()
    series = cmp["series"]
    marked = {p["id"] for p in (cmp.get("earlier"), cmp.get("later")) if p}
    x0, x1 = LEFT, W - RIGHT
    xs = _x_positions(series, x0 + 10, x1 - 10) if series else []
    h = TOP + 2 * PANEL_H + BOTTOM
    ch = cmp.get("change") or {}
    sins_c, escc_c = ch.get("sins") or {}, ch.get("escc") or {}
    desc = (f"Patient {cmp['patient_ref']}: {len(series)} assessment(s). "
            f"SINS {sins_c.get('from', '-')} to {sins_c.get('to', '-')}; ESCC {escc_c.get('from', '-')} to {escc_c.get('to', '-')}.")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" '
           f'aria-labelledby="{uid}-title {uid}-desc" class="compare-plot">',
           f'<title id="{uid}-title">SINS and ESCC over time</title>', f'<desc id="{uid}-desc">{escape(desc)}</desc>',
           f'<rect x="0" y="0" width="{W}" height="{h}" fill="#ffffff"/>']

    def panel(top: float, title: str, levels: list[str], bands: list[tuple[float, float, str, str]],
              values: list[float | None], labels: list[str]) -> None:
        y0, y1 = top + 18, top + PANEL_H - 14  # y0 is the top (highest value)
        n = len(levels) - 1

        def y(v: float) -> float:
            return y1 - (y1 - y0) * v / n

        out.append(_text(x0, top + 10, title, weight="bold", size=12))
        for lo, hi, fill_key, label in bands:
            ya, yb = y(hi + 0.5 if hi < n else hi), y(lo - 0.5 if lo > 0 else lo)
            out.append(f'<rect x="{x0}" y="{ya:.1f}" width="{x1 - x0}" height="{yb - ya:.1f}" fill="{BAND_FILL.get(fill_key, "#eeeeee")}"/>')
            out.append(_text(x1 + 6, (ya + yb) / 2 + 4, label, size=10, fill="#444"))
        for i, name in enumerate(levels):
            if len(levels) > 8 and i % 3:
                continue
            out.append(f'<line x1="{x0}" x2="{x1}" y1="{y(i):.1f}" y2="{y(i):.1f}" stroke="#d0d0d0" stroke-width="0.6"/>')
            out.append(_text(x0 - 6, y(i) + 4, name, anchor="end", size=10))
        out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#888"/>')
        pts = [(xs[i], y(v), i) for i, v in enumerate(values) if v is not None]
        if len(pts) > 1:
            path = " ".join(f"{'M' if k == 0 else 'L'}{px:.1f},{py:.1f}" for k, (px, py, _) in enumerate(pts))
            out.append(f'<path d="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
        for px, py, i in pts:
            hot = series[i]["id"] in marked
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{6 if hot else 4}" fill="{HIGHLIGHT if hot else LINE}" '
                       f'stroke="#ffffff" stroke-width="1.5"><title>{escape(series[i]["study_date"])}: {escape(labels[i])}</title></circle>')
            if hot:
                out.append(_text(px, py - 9, labels[i], anchor="middle", size=11, weight="bold", fill=HIGHLIGHT))
        if not pts:
            out.append(_text((x0 + x1) / 2, (y0 + y1) / 2, "not assessed", anchor="middle", fill="#666"))

    # SINS: 0..18 with the knowledge base's stability categories as bands.
    cats = kb.table(CATEGORIES).rows
    sins_bands = [(float(r["min"]), float(r["max"]), str(r["category"]), str(r["label"]).split(" (")[0]) for r in cats]
    sins_max = max(int(r["max"]) for r in cats)
    sins_levels = [str(i) for i in range(sins_max + 1)]
    panel(TOP, "SINS total", sins_levels, sins_bands,
          [p["sins_total"] for p in series], [f"SINS {p['sins_total']}" for p in series])
    # ESCC: the six grades in order; high-grade rows shaded as the knowledge base says.
    rows = {str(r["grade"]): r for r in kb.table(ESCC_TABLE).rows}
    high = [i for i, g in enumerate(GRADES) if g in rows and rows[g].get("severity") == "high"]
    escc_bands = [(float(min(high)), float(max(high)), "high", "high grade")] if high else []
    panel(TOP + PANEL_H, "ESCC grade", list(GRADES), escc_bands,
          [GRADES.index(p["escc_grade"]) if p["escc_grade"] in GRADES else None for p in series],
          [f"ESCC {p['escc_grade']}" for p in series])
    # time axis
    base = TOP + 2 * PANEL_H
    ticks = list(range(len(series)))
    if len(ticks) > 6:
        step = (len(ticks) - 1) / 5
        ticks = sorted({round(i * step) for i in range(6)})
    for i in ticks:
        out.append(_text(xs[i], base + 2, series[i]["study_date"], anchor="middle", size=10))
    out.append(_text((x0 + x1) / 2, base + 22, "study date", anchor="middle", size=10, fill="#555"))
    out.append("</svg>")
    return "\n".join(out)
