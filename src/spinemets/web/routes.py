"""Server-rendered pages (Jinja2, autoescaped), served by the same app as the REST API.

Each page is a GET form (bookmarkable, works without JavaScript); ``static/app.js`` only re-renders the
result region in place as the form changes, by fetching the same URL with ``X-Fragment: result``.  Every
figure comes from a core function; this module only gathers form values and renders results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from spinemets import __version__
from spinemets.api import ask as ask_adapter
from spinemets.api import features as registry
from spinemets.errors import InvalidInputError, SpinemetsError
from spinemets.knowledge.loader import load_kb
from spinemets.knowledge.models import Source, Statement, Table, TableRow
from spinemets.levels import ORDER
from spinemets.results import Reference
from spinemets.web import forms, svg
from spinemets.wording import field_name

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
FRAGMENT_HEADER = "x-fragment"

env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(enabled_extensions=("html", "svg"), default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- template helpers ---------------------------------------------------------------------------------------


def _pct(x: float | None, digits: int = 1) -> str:
    return "" if x is None else f"{x * 100:.{digits}f}%"


def _num(x: float | None) -> str:
    if x is None:
        return "infinite"
    return f"{x:.3g}"


def _human(text: Any) -> str:
    """Underscores to spaces; a field path ('sins.level') in words ('SINS level')."""
    if text is None:
        return ""
    value = str(text)
    if "." in value and " " not in value and re.fullmatch(r"[a-z_]+(\.[a-z_\[\]0-9]+)+", value):
        return field_name(value)
    return value.replace("_", " ")


def _cell(value: Any) -> str:
    """A table cell of the knowledge-base browser: lists and mappings as plain text."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return str(value)


def _running_total(result: Any) -> int:
    return sum(c.points for c in result.components if c.points is not None)


def _escc_panel(result: Any | None, uid: str) -> list[dict[str, Any]]:
    rows = []
    for row in svg.escc_rows():
        grade = str(row["grade"])
        state = ""
        if result is not None and result.grade == grade:
            state = "selected"
        elif result is not None and result.grade is None and grade in (result.possible_grades or []) \
                and len(result.possible_grades) < 6:
            state = "possible"
        rows.append({"row": row, "grade": grade, "state": state,
                     "svg": svg.escc_axial(row, selected=state == "selected", uid=f"{uid}-{grade}")})
    return rows


def _spine(result: Any | None, level: str | None = None, category: str | None = None, uid: str = "spine") -> Markup:
    if result is not None:
        level = result.level
        loc = next((c for c in result.components if c.name == "location"), None)
        category = loc.value if loc is not None and loc.value else category
    return svg.spine_diagram(level, category, uid=uid)


def _lesion_spine(result: Any, uid: str = "lesions-spine") -> Markup:
    """The spine with every lesion of a multilevel result marked: its levels, SINS (total or range, category) and
    ESCC grade beside its first vertebra."""
    marks: dict[str, str] = {}
    for lesion in result.lesions:
        words = [lesion.levels]
        s, e = lesion.sins, lesion.escc
        if s is not None:
            total = str(s.total) if s.total is not None else f"{s.possible_min}-{s.possible_max}"
            words.append(f"SINS {total}" + (f" ({s.category_label.lower()})" if s.category_label else ""))
        if e is not None:
            words.append(f"ESCC {e.grade}" if e.grade is not None else "ESCC " + " or ".join(e.possible_grades))
        for i, v in enumerate(lesion.vertebrae):
            marks[v] = ": ".join([words[0], ", ".join(words[1:])]) if i == 0 and len(words) > 1 else (
                words[0] if i == 0 else "")
    return svg.spine_diagram(marks=marks, uid=uid)


def _extra_lines(result: Any) -> list[str]:
    lines = list(result.extra_lines()) if hasattr(result, "extra_lines") else []
    closing = getattr(result, "closing_lines", None)
    if callable(closing):
        lines += [""] + list(closing())
    return lines


def _shown(results: list[Any]) -> list[tuple[str, Any]]:
    """Every result a summary page shows, with the prefix its template gives it: the results, and the parts shown
    inside them (each prognostic score; each lesion's SINS, ESCC and NOMS)."""
    out: list[tuple[str, Any]] = []
    for r in results:
        out.append((r.instrument, r))
        for s in getattr(r, "scores", None) or []:
            out.append((f"{r.instrument}-{s.instrument}", s))
        for i, lesion in enumerate(getattr(r, "lesions", None) or []):
            for name in ("sins", "escc", "noms"):
                part = getattr(lesion, name, None)
                if part is not None:
                    out.append((f"{r.instrument}-{i}-{name}", part))
    return out


class SharedReferences:
    """One numbered reference list for several results (an assessment summary).

    Each result numbers its references from 1; here a source keeps the number of its first citation across
    the results, so that a source cited by four instruments is listed once.  ``numbers(pfx, ns)`` maps the
    reference numbers *ns* of the result shown under the prefix *pfx* (its instrument) to the shared list's.
    The templates use it through ``_macros.refs``; ``references`` is the list, numbered anew.
    """

    def __init__(self, results: list[Any]) -> None:
        self.references: list[Reference] = []
        self._map: dict[str, dict[int, int]] = {}
        by_source: dict[str, int] = {}
        for pfx, r in _shown(results):
            local = self._map.setdefault(pfx, {})
            for ref in getattr(r, "references", []) or []:
                if ref.source_id not in by_source:
                    by_source[ref.source_id] = len(self.references) + 1
                    self.references.append(ref.model_copy(update={"number": by_source[ref.source_id]}))
                local[ref.number] = by_source[ref.source_id]

    def covers(self, pfx: str) -> bool:
        """Whether the result shown under *pfx* is one of this list's."""
        return pfx in self._map

    def numbers(self, pfx: str, numbers: list[int]) -> list[int]:
        """The shared numbers of a result's reference numbers, sorted, each once."""
        local = self._map.get(pfx, {})
        return sorted({local.get(n, n) for n in numbers})


def _result_template(result: Any) -> str:
    name = f"results/{result.instrument}.html"
    return name if (TEMPLATES / name).exists() else "results/generic.html"


env.globals.update(
    spine_svg=_spine,
    lesion_spine=_lesion_spine,
    escc_panel=_escc_panel,
    fagan_svg=svg.fagan_for,
    fagan_legend=svg.fagan_legend,
    running_total=_running_total,
    extra_lines=_extra_lines,
    result_template=_result_template,
    shared_references=SharedReferences,
    category_label=svg.category_label,
    isinstance=isinstance,
    Statement=Statement,
    Source=Source,
    Table=Table,
    TableRow=TableRow,
)
env.filters.update(pct=_pct, num=_num, human=_human, cell=_cell, ucfirst=lambda s: str(s)[:1].upper() + str(s)[1:])


def _nav(active: str) -> list[dict[str, Any]]:
    items = [("/", "Home", "home")]
    for f in registry.available():
        items.append((f"/{f.name}", f.title, f.name))
    if ask_adapter.available():
        items.append(("/ask", "Ask", "ask"))
    items += [("/assess", "Assess a case", "assess"), ("/kb", "Knowledge base", "kb"), ("/docs", "API", "docs")]
    return [{"href": h, "label": label, "active": key == active} for h, label, key in items]


def _ctx(request: Request, active: str, **kw: Any) -> dict[str, Any]:
    kb = load_kb()
    base = {
        "request_path": request.url.path,
        "kb_version": kb.version,
        "kb_released": kb.manifest.released.isoformat(),
        "disclaimer": kb.manifest.disclaimer,
        "version": __version__,
        "nav": _nav(active),
        "submitted": bool(request.query_params),  # a GET form was sent: its result comes first on phones
        "active": active,
        "error": None,
        "result": None,
    }
    base.update(kw)
    for hook in getattr(request.app.state, "page_context", ()):  # extensions' links and forms (spinemets.store)
        hook(request, base)
    return base


def render(request: Request, template: str, ctx: dict[str, Any], status: int = 200) -> Response:
    tmpl = env.get_template(template)
    if request.headers.get(FRAGMENT_HEADER) == "result" and "result" in tmpl.blocks:
        html = "".join(tmpl.blocks["result"](tmpl.new_context(ctx)))
    else:
        html = tmpl.render(ctx)
    return HTMLResponse(html, status_code=status)


def render_error(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "error.html", _ctx(request, "", title=title, detail=detail, status=status), status)


def _error(exc: SpinemetsError, prefix: str) -> dict[str, Any]:
    from spinemets.api.problem import PROBLEM_TYPES, problem_for_exception

    slug, detail, fields = problem_for_exception(exc) or ("invalid-input", str(exc), [])
    for f in sorted(fields, key=len, reverse=True):  # the page names inputs in words, not by their field paths
        detail = detail.replace(f, field_name(f))
    return {
        "title": PROBLEM_TYPES[slug].title,
        "detail": detail,
        "fields": fields,
        "labels": [field_name(f) for f in fields],
        "inputs": [forms.field_of_error(f, prefix) for f in fields],
    }


def _run(func: Callable[[], Any], prefix: str) -> tuple[Any | None, dict[str, Any] | None, int]:
    try:
        return func(), None, 200
    except SpinemetsError as exc:
        return None, _error(exc, prefix), 422


def _given(params: Any, names: tuple[str, ...] | list[str]) -> dict[str, str]:
    return {k: params[k].strip() for k in names if params.get(k) and params[k].strip()}


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    kb = load_kb()
    counts = {"sources": len(kb.sources), "statements": len(kb.statements), "tables": len(kb.tables),
              "drafts": sum(1 for s in kb.statements.values() if s.is_draft)}
    return render(request, "index.html", _ctx(request, "home", features=registry.available(),
                                                ask=ask_adapter.available(), counts=counts))


# --- SINS ---------------------------------------------------------------------------------------------------


def _sins_options() -> dict[str, list[dict[str, Any]]]:
    from spinemets.scores.sins import COMPONENTS, POINTS

    table = load_kb().table(POINTS)
    return {c: [{"value": r["value"], "label": r["label"], "points": r["points"]} for r in table.where(component=c)]
            for c in COMPONENTS}


@router.get("/sins", response_class=HTMLResponse)
async def sins_page(request: Request) -> Response:
    from spinemets.scores.sins import COMPONENTS, sins

    values = _given(request.query_params, ("level", *COMPONENTS))
    result, error, status = _run(lambda: sins(values), "sins")
    return render(request, "sins.html", _ctx(
        request, "sins", values=values, result=result, error=error, levels=ORDER, options=_sins_options(),
        components=COMPONENTS,
    ), status)


# --- ESCC ---------------------------------------------------------------------------------------------------


@router.get("/escc", response_class=HTMLResponse)
async def escc_page(request: Request) -> Response:
    from spinemets.scores.escc import FINDINGS, GRADES, LABELS, escc

    params = request.query_params
    values = _given(params, ("grade", "level", *FINDINGS))
    data: dict[str, Any] = {}
    result = error = None
    status = 200
    try:
        for name in ("grade", "level"):
            if name in values:
                data[name] = values[name]
        for name in FINDINGS:
            if name in values:
                data[name] = forms.yes_no(values[name], f"escc.{name}")
    except InvalidInputError as exc:
        error, status = _error(exc, "escc"), 422
    if error is None and set(data) - {"level"}:
        result, error, status = _run(lambda: escc(data), "escc")
    return render(request, "escc.html", _ctx(
        request, "escc", values=values, result=result, error=error, grades=GRADES, findings=FINDINGS, labels=LABELS,
    ), status)


# --- NOMS ---------------------------------------------------------------------------------------------------


@router.get("/noms", response_class=HTMLResponse)
async def noms_page(request: Request) -> Response:
    from spinemets.scores.escc import GRADES
    from spinemets.scores.noms import known_histologies, noms

    values = _given(request.query_params, ("escc_grade", "myelopathy", "histology", "sins_total", "fit_for_surgery"))
    data: dict[str, Any] = {}
    result = error = None
    status = 200
    try:
        for k, v in values.items():
            if k in ("myelopathy", "fit_for_surgery"):
                data[k] = forms.yes_no(v, f"noms.{k}")
            else:
                data[k] = v
    except InvalidInputError as exc:
        error, status = _error(exc, "noms"), 422
    if error is None and data:
        result, error, status = _run(lambda: noms(data), "noms")
    return render(request, "noms.html", _ctx(
        request, "noms", values=values, result=result, error=error, grades=GRADES, histologies=known_histologies(),
    ), status)


# --- post-test probability ----------------------------------------------------------------------------------

TEST_ROWS = 3
TEST_FIELDS = ("modality", "unit", "source", "se", "sp", "result")


def _accuracy_options() -> tuple[list[str], list[str]]:
    from spinemets.interpret.probability import TABLE

    rows = [r for r in load_kb().table(TABLE).rows if r.get("sensitivity") is not None]
    modalities = sorted({str(r["modality"]) for r in rows})
    sources = sorted({s for r in rows for s in r.sources})
    return modalities, sources


@router.get("/probability", response_class=HTMLResponse)
async def probability_page(request: Request) -> Response:
    from spinemets.interpret.probability import post_test_probability

    params = request.query_params
    names = ["pre_test"] + [f"t{i}_{f}" for i in range(1, TEST_ROWS + 1) for f in TEST_FIELDS]
    values = _given(params, names)
    result = error = None
    status = 200
    if values:
        tests = []
        for i in range(1, TEST_ROWS + 1):
            row = {f: values[f"t{i}_{f}"] for f in TEST_FIELDS if f"t{i}_{f}" in values}
            if not set(row) - {"unit"}:  # the unit select always has a value; a row needs something else
                continue
            test: dict[str, Any] = {k: v for k, v in row.items() if k in ("modality", "unit", "source", "result")}
            if "se" in row:
                test["sensitivity"] = row["se"]
            if "sp" in row:
                test["specificity"] = row["sp"]
            tests.append(test)
        data = {"pre_test": values.get("pre_test"), "tests": tests}
        if data["pre_test"] is None:
            data.pop("pre_test")
        result, error, status = _run(lambda: post_test_probability(data), "probability")
        if error:
            error["inputs"] = [_probability_input(f) for f in error["fields"]]
    modalities, sources = _accuracy_options()
    open_rows = {i for i in range(1, TEST_ROWS + 1)
                 if any(k.startswith(f"t{i}_") and not k.endswith("_unit") for k in values)
                 or any(str(x).startswith(f"t{i}_") for x in (error or {}).get("inputs", []))}
    return render(request, "probability.html", _ctx(
        request, "probability", values=values, result=result, error=error, rows=range(1, TEST_ROWS + 1),
        modalities=modalities, sources=sources, open_rows=open_rows,
    ), status)


def _probability_input(path: str) -> str:
    """'probability.tests[0].source' -> 't1_source' (the form's input name)."""
    import re

    m = re.match(r"probability\.tests\[(\d+)\](?:\.(\w+))?", path)
    if m:
        name = {"sensitivity": "se", "specificity": "sp"}.get(m.group(2) or "result", m.group(2) or "result")
        return f"t{int(m.group(1)) + 1}_{name}"
    return path.removeprefix("probability.")


# --- generic feature pages (pathway, interpretations) -------------------------------------------------------

PATHWAY_GROUPS = (
    ("Patient", ("age", "adult", "sex", "pregnant", "egfr", "on_dialysis", "implanted_device")),
    ("Cancer history", ("cancer_history", "unknown_primary", "primary_site", "primary_bone_tumour_possible",
                        "breast_her2_positive", "breast_triple_negative", "brain_symptoms", "treatment_intent",
                        "years_since_treatment",
                        "treatment_given", "months_since_treatment")),
    ("Symptoms", ("spinal_pain", "pain_region", "mechanical_pain", "night_pain", "pain_duration_weeks",
                  "pain_progressive", "red_flags")),
    ("Neurology", ("neuro_deficits", "suspected_cord_compression", "suspected_cauda_equina")),
    ("Context", ("asymptomatic_surveillance", "known_lesion_purpose", "spinal_hardware", "mri_contraindications",
                 "contrast_concerns",
                 "prior_imaging")),
)


def _pathway_options(name: str) -> list[tuple[str, str]] | None:
    if name == "red_flags":
        return [(r.id, str(r["label"])) for r in load_kb().table("red_flags").rows]
    return None


def _marrow_options(name: str) -> list[tuple[str, str]] | None:
    from spinemets.interpret import marrow

    vocab = getattr(marrow, "VOCABULARY", {}).get(name)
    return [(v, forms.humanise(v)) for v in vocab] if vocab else None


PROGNOSIS_FORM: dict[str, Any] = {
    "labels": {"primary": "Primary tumour", "karnofsky": "Karnofsky performance status (%)",
               "vertebral_metastases": "Vertebrae with metastases (number)",
               "extraspinal_bone_metastases": "Bone metastases outside the spine (number)",
               "organ_metastases": "Metastases to major internal organs", "visceral_metastases": "Visceral metastases",
               "frankel": "Frankel grade", "ambulation": "Walking", "albumin_g_dl": "Serum albumin (g/dL)",
               "albumin_g_l": "Serum albumin (g/L)"},
    "hints": {"primary": "e.g. breast, renal cell carcinoma, lung, unknown primary; colorectal as colon or rectum",
              "karnofsky": "10 to 100, in steps of 10", "albumin_g_dl": "give it in g/dL or in g/L (both only if they agree)"},
    "value_labels": {"independent": "Walks independently", "assisted": "Walks with help or an aid",
                     "unable": "Does not walk", "A": "A (complete)", "E": "E (normal)"},
    "empty_hint": "Fill in what is known about the patient. Each score's total, or the range still possible, appears "
                  "here with its prognostic group; what is left blank is named, never guessed.",
}
FORM_SETTINGS: dict[str, dict[str, Any]] = {
    **{name: PROGNOSIS_FORM for name in ("prognosis", "tokuhashi", "tomita", "bauer", "nesms")},
    "pathway": {
        "options": _pathway_options,
        "groups": PATHWAY_GROUPS,
        "labels": {"age": "Age (years)", "adult": "Adult (when the age is not known)", "breast_her2_positive": "Breast cancer: HER2-positive",
                   "breast_triple_negative": "Breast cancer: triple-negative",
                   "brain_symptoms": "New headache or other brain symptoms",
                   "spinal_hardware": "Spinal instrumentation (screws, rods) near the region", "pain_duration_weeks": "Pain duration (weeks)",
                   "neuro_deficits": "Neurological deficits", "mri_contraindications": "MRI contraindications",
                   "suspected_cord_compression": "Suspected spinal cord compression",
                   "known_lesion_purpose": "Known lesion: purpose of imaging", "egfr": "eGFR (mL/min/1.73 m²)",
                   "implanted_device": "Implanted device (MR labelling)",
                   "primary_bone_tumour_possible": "A primary bone tumour is possible",
                   "treatment_given": "Treatment given to the spinal lesion",
                   "months_since_treatment": "Months since that treatment"},
        "empty_hint": "Fill in what is known about the patient: the cancer history, the pain, any neurological "
                      "deficit and the context. The recommended imaging, its urgency and what to do now appear here; "
                      "what is left blank is named, never guessed.",
        "hints": {"red_flags": "Tick 'assessed: none' when red flags were looked for and none found; "
                               "leave every box empty when not assessed.",
                  "neuro_deficits": "Tick 'assessed: none' after an examination without deficit; "
                                    "leave every box empty when not examined.",
                  "primary_site": "e.g. breast, prostate, lung, kidney, myeloma",
                  "age": "Under 18 years: the paediatric criteria apply, not the adult time limits."},
        "value_labels": {"non_mr_conditional_device": "Device that is not MR-conditional",
                         "metallic_foreign_body": "Metal fragment in the eye or orbit",
                         "reason_not_given": "MRI not possible, reason not given", "ct": "CT", "mri": "MRI",
                         "fdg_pet_ct": "FDG-PET/CT", "spect_ct": "SPECT/CT", "mr_safe": "MR Safe",
                         "mr_conditional": "MR Conditional", "mr_unsafe": "MR Unsafe",
                         "non_mr_conditional_cardiac": "Pacemaker or ICD that is not MR Conditional",
                         "labelling_unknown": "Implant, MR labelling unknown", "sbrt": "Stereotactic body radiotherapy (SBRT)",
                         "conventional_radiotherapy": "Conventional radiotherapy"},
    },
    "marrow": {"options": _marrow_options, "skip": ("chemical_shift",),
               "empty_hint": "Choose the signal of the lesion on each sequence you have: the tissues are ranked here by "
                             "how well they match; a sequence left blank is named, never guessed."},
    "quantitative": {"empty_hint": "Enter the measurements you have (chemical-shift signal intensities or their ratio, "
                                   "Dixon fat fraction, ADC, CT attenuation): each is compared here with the published "
                                   "cut-offs, with the population each comes from."},
    "primaries": {"empty_hint": "Choose the lesion type: the primary tumours that give such lesions are listed here, "
                                "with how often and the tracer notes."},
}
DEFAULT_EMPTY_HINT = "Fill in what is known and press Run: the result appears here, with anything missing named."


def _specs(lf: registry.LoadedFeature) -> list[forms.FieldSpec]:
    settings = FORM_SETTINGS.get(lf.name, {})
    return forms.form_fields(lf.input_model, options=settings.get("options"), skip=settings.get("skip", ()),
                             labels=settings.get("labels"), hints=settings.get("hints"),
                             value_labels=settings.get("value_labels"))


def _groups(lf: registry.LoadedFeature, specs: list[forms.FieldSpec]) -> list[tuple[str, list[forms.FieldSpec]]]:
    groups = FORM_SETTINGS.get(lf.name, {}).get("groups")
    if not groups:
        return [("", specs)]
    by_name = {s.name: s for s in specs}
    out, used = [], set()
    for title, names in groups:
        members = [by_name[n] for n in names if n in by_name]
        used.update(s.name for s in members)
        if members:
            out.append((title, members))
    rest = [s for s in specs if s.name not in used]
    if rest:
        out.append(("Other", rest))
    return out


def _feature_page(name: str) -> Callable[..., Any]:
    async def page(request: Request) -> Response:
        lf = registry.get(name)
        if lf is None:  # pragma: no cover - routes are only added for available features
            return render_error(request, 404, "Not found", f"{name} is not installed")
        specs = _specs(lf)
        params = request.query_params
        submitted = any(k != "_" for k in params.keys())
        result = error = None
        status = 200
        if submitted:
            try:
                data = forms.parse_form(specs, params, name)
            except InvalidInputError as exc:
                error, status = _error(exc, name), 422
            else:
                result, error, status = _run(lambda: lf.func(data), name)
        return render(request, "feature.html", _ctx(
            request, name, feature=lf, groups=_groups(lf, specs), params=params, result=result, error=error,
            empty_hint=FORM_SETTINGS.get(name, {}).get("empty_hint", DEFAULT_EMPTY_HINT),
        ), status)

    page.__name__ = f"page_{name}"
    return page


# --- fracture differential ----------------------------------------------------------------------------------


@router.get("/fracture", response_class=HTMLResponse)
async def fracture_page(request: Request) -> Response:
    lf = registry.get("fracture")
    if lf is None:
        return render_error(request, 404, "Not found", "the fracture differential is not installed")
    from spinemets.interpret import fracture as fr

    table = load_kb().table(getattr(fr, "TABLE", "fracture_features"))
    ids = [r.id for r in table.rows]
    params = request.query_params
    values = _given(params, (*ids, "pre_test", "known_cancer", "pre_test_from_kb"))
    result = error = None
    status = 200
    if values:
        data: dict[str, Any] = {}
        try:
            for k, v in values.items():
                if k in ids:
                    if v != "unknown":
                        data[k] = v
                elif k == "known_cancer":
                    data[k] = forms.yes_no(v, f"fracture.{k}")
                elif k == "pre_test_from_kb":
                    data[k] = True
                else:
                    data[k] = v
        except InvalidInputError as exc:
            error, status = _error(exc, "fracture"), 422
        if error is None:
            result, error, status = _run(lambda: lf.func(data), "fracture")
    groups: dict[str, list[TableRow]] = {}
    for r in table.rows:
        groups.setdefault(str(r["favours"]), []).append(r)
    return render(request, "fracture.html", _ctx(
        request, "fracture", values=values, result=result, error=error, groups=groups, table=table,
    ), status)


# --- ask ------------------------------------------------------------------------------------------------------


async def ask_page(request: Request) -> Response:
    from spinemets.api.app import in_thread

    p = request.query_params
    q = (p.get("q") or "").strip()
    audience = p.get("audience") or "clinician"
    lexical = bool(p.get("lexical"))
    result = error = None
    status = 200
    if q or "q" in p:
        try:
            result = await in_thread(ask_adapter.run, {"question": q, "audience": audience, "lexical": lexical})
        except SpinemetsError as exc:
            error, status = _error(exc, "ask"), 422
            error["inputs"] = ["q" if f == "ask.question" else f.removeprefix("ask.") for f in error["fields"]]
    return render(request, "ask.html", _ctx(request, "ask", q=q, audience=audience, lexical=lexical,
                                             result=result, error=error), status)


# --- assess: a case document and its printable summary ------------------------------------------------------


def _example_case() -> str:
    return (STATIC / "example-case.json").read_text(encoding="utf-8")


@router.get("/assess", response_class=HTMLResponse)
async def assess_form(request: Request) -> Response:
    return render(request, "assess.html", _ctx(request, "assess", case_text=_example_case()))


@router.post("/assess", response_class=HTMLResponse)
async def assess_submit(request: Request, case: str = Form("", max_length=60_000)) -> Response:
    from spinemets.assess import assess

    def run() -> Any:
        try:
            data = json.loads(case)
        except json.JSONDecodeError as exc:
            raise InvalidInputError("case", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        return assess(data)

    result, error, status = _run(run, "case")
    if result is None:
        return render(request, "assess.html", _ctx(request, "assess", case_text=case, error=error), status)
    return render(request, "assess_result.html", _ctx(request, "assess", result=result, case_text=case))


# --- knowledge-base browser ---------------------------------------------------------------------------------


KB_PAGE_SIZE = 50  # statements per page of /kb
KB_TOP_TOPICS = 24  # topics offered as one-click filters above the list (all of them are in the select)


def _kb_page_number(raw: str | None) -> int:
    """The ``page`` query parameter: a whole number from 1 (absent: 1)."""
    import re

    if raw is None or raw.strip() == "":
        return 1
    if not re.fullmatch(r"[0-9]{1,9}", raw.strip()) or int(raw) < 1:
        raise InvalidInputError("page", f"{raw[:20]!r} is not a page number; pages are numbered from 1")
    return int(raw)


def _kb_pages(total: int, page: int, params: dict[str, str]) -> dict[str, Any]:
    """Paging of the statement list: the slice shown and the links (the filters kept in every link)."""
    from urllib.parse import urlencode

    count = max(1, -(-total // KB_PAGE_SIZE))
    if page > count:
        raise InvalidInputError("page", f"page {page} is beyond the last page ({count}) of this list")
    kept = {k: v for k, v in params.items() if v}

    def href(n: int) -> str:
        query = urlencode({**kept, "page": n} if n > 1 else kept)
        return "/kb" + (f"?{query}" if query else "")

    near = sorted({1, count, *range(max(1, page - 2), min(count, page + 2) + 1)})
    links: list[dict[str, Any]] = []
    for n in near:
        if links and n - links[-1]["number"] > 1:
            links.append({"number": None, "href": None, "current": False})  # a gap
        links.append({"number": n, "href": href(n), "current": n == page})
    start = (page - 1) * KB_PAGE_SIZE
    return {"page": page, "count": count, "first": start + 1 if total else 0, "last": min(total, start + KB_PAGE_SIZE),
            "start": start, "links": links, "prev": href(page - 1) if page > 1 else None,
            "next": href(page + 1) if page < count else None}


@router.get("/kb", response_class=HTMLResponse)
async def kb_index(request: Request) -> Response:
    from collections import Counter
    from urllib.parse import urlencode

    from spinemets.api.app import filter_statements

    kb = load_kb()
    p = request.query_params
    q = (p.get("q") or "").strip()[:200]
    topic = (p.get("topic") or "").strip()[:60]
    review = p.get("review_status") or ""
    draft_param = p.get("draft") or ""
    draft = {"yes": True, "no": False}.get(draft_param)
    if review not in ("", "draft", "reviewed", "approved"):
        raise InvalidInputError("review_status", f"{review!r} is not allowed; allowed values: draft, reviewed, approved")
    page = _kb_page_number(p.get("page"))
    items = filter_statements(q or None, topic or None, review or None, draft)
    filters = {"q": q, "topic": topic, "review_status": review, "draft": draft_param}
    paging = _kb_pages(len(items), page, filters)
    counts = Counter(t for s in kb.statements.values() for t in s.topics)
    topics = sorted(counts)
    others = {k: v for k, v in filters.items() if v and k != "topic"}
    top_topics = [{"name": t, "count": n, "current": t == topic, "href": "/kb?" + urlencode({**others, "topic": t})}
                  for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:KB_TOP_TOPICS]]
    return render(request, "kb_index.html", _ctx(
        request, "kb", q=q, topic=topic, review=review, draft=draft_param, items=items, topics=topics, kb=kb,
        manifest=kb.manifest, paging=paging, shown=items[paging["start"]:paging["start"] + KB_PAGE_SIZE],
        top_topics=top_topics, topic_known=not topic or topic in counts,
        clear_topic="/kb" + ("?" + urlencode(others) if others else ""),
    ))


@router.get("/kb/statements/{statement_id}", response_class=HTMLResponse)
async def kb_statement(request: Request, statement_id: str) -> Response:
    kb = load_kb()
    st = kb.statement(statement_id)
    return render(request, "kb_statement.html", _ctx(request, "kb", st=st, sources=[kb.source(s) for s in st.sources]))


@router.get("/kb/sources", response_class=HTMLResponse)
async def kb_sources(request: Request) -> Response:
    kb = load_kb()
    return render(request, "kb_sources.html", _ctx(request, "kb", sources=sorted(kb.sources.values(), key=lambda s: s.id)))


@router.get("/kb/sources/{source_id}", response_class=HTMLResponse)
async def kb_source(request: Request, source_id: str) -> Response:
    kb = load_kb()
    src = kb.source(source_id)
    statements = [s for s in sorted(kb.statements.values(), key=lambda s: s.id) if source_id in s.sources]
    rows = [(t, r) for t in sorted(kb.tables.values(), key=lambda t: t.id) for r in t.rows if source_id in r.sources]
    return render(request, "kb_source.html", _ctx(request, "kb", src=src, statements=statements, rows=rows))


@router.get("/kb/tables", response_class=HTMLResponse)
async def kb_tables(request: Request) -> Response:
    kb = load_kb()
    return render(request, "kb_tables.html", _ctx(request, "kb", tables=sorted(kb.tables.values(), key=lambda t: t.id)))


@router.get("/kb/tables/{table_id}", response_class=HTMLResponse)
async def kb_table(request: Request, table_id: str) -> Response:
    table = load_kb().table(table_id)
    columns = list(table.columns) or sorted({k for r in table.rows for k in (r.model_extra or {})})
    columns = [c for c in columns if c not in ("sources", "verification", "note", "aliases")]
    return render(request, "kb_table.html", _ctx(request, "kb", table=table, columns=columns))


# --- API reference and problem types ------------------------------------------------------------------------


def _schema_name(schema: dict[str, Any] | None) -> str | None:
    if not schema:
        return None
    ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref")
    if ref:
        return ref.rsplit("/", 1)[-1]
    return schema.get("type")


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> Response:
    spec = request.app.openapi()
    ops = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = ((op.get("requestBody") or {}).get("content") or {}).get("application/json", {})
            ok = ((op.get("responses") or {}).get("200") or {}).get("content", {}).get("application/json", {})
            example = None
            if body.get("schema", {}).get("examples"):
                example = json.dumps(body["schema"]["examples"][0], indent=2)
            elif body.get("examples"):
                first = next(iter(body["examples"].values()))
                example = json.dumps(first.get("value"), indent=2)
            ops.append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""), "tags": op.get("tags", []),
                "request": _schema_name(body.get("schema")), "response": _schema_name(ok.get("schema")),
                "params": [p.get("name") + (" (required)" if p.get("required") else "") for p in op.get("parameters", [])],
                "example": example,
                "anchor": (method + path).replace("/", "-").replace("{", "").replace("}", ""),
            })
    return render(request, "docs.html", _ctx(request, "docs", ops=ops, spec=spec,
                                              schemas=sorted(spec.get("components", {}).get("schemas", {}))))


@router.get("/problems/{slug}", response_class=HTMLResponse)
async def problem_type(request: Request, slug: str) -> Response:
    from spinemets.api.problem import PROBLEM_TYPES

    p = PROBLEM_TYPES.get(slug)
    if p is None:
        return render_error(request, 404, "Not found", f"no problem type {slug!r}")
    return render(request, "problem.html", _ctx(request, "docs", p=p))


def install(app: FastAPI) -> None:
    """Mount the pages and /static on *app* (a fresh router per app: the optional pages depend on what is installed)."""
    app.state.web = True
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    pages = APIRouter(include_in_schema=False)
    pages.routes.extend(router.routes)
    custom = {"sins", "escc", "noms", "probability", "fracture"}
    for lf in registry.available():
        if lf.name not in custom:
            pages.add_api_route(f"/{lf.name}", _feature_page(lf.name), methods=["GET"], response_class=HTMLResponse)
    if ask_adapter.available():
        pages.add_api_route("/ask", ask_page, methods=["GET"], response_class=HTMLResponse)
    app.include_router(pages)
