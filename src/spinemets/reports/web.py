"""The report extractor in the web app: ``POST /api/v1/extract`` and the page ``/extract``.

Installed by the app's extension hook (``APP_EXTENSIONS``).  Import-light: spaCy and medspaCy are imported on
the first request (the first extraction of a process also builds the pipeline, about two seconds).

The page takes a pasted report (POST, so that the report text stays out of URLs and logs), shows it with the
findings marked, and the pre-filled SINS, ESCC, fracture-differential and marrow-signal forms.  Each form is a
GET form to the existing calculator page (``/sins``, ``/escc``, ``/fracture``, ``/marrow``) with the values
selected and the phrase each came from beside it: the user confirms or edits them and submits, and the
calculator scores them.  There is no clinical logic here: the values come from
:func:`spinemets.reports.extract.extract`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

API_PATH = "/api/v1/extract"
EXAMPLE_REPORT = """MRI THORACIC SPINE WITH GADOLINIUM

Clinical history: Breast cancer. Mid-back pain.

Findings:
There is a lytic lesion involving the T7 vertebral body with approximately 40% loss of height. The lesion extends
into the left pedicle. Epidural tumour deforms the thecal sac without cord compression; CSF is visible around the cord.
The lesion is hypointense on T1 and hyperintense on STIR. No retropulsion. Alignment is maintained.
Small haemangioma in T11.

IMPRESSION:
Lytic metastasis at T7 with pathological fracture (40% height loss) and left pedicle involvement. Epidural disease,
ESCC grade 1b. No cord compression.
"""


class ExtractRequest(BaseModel):
    """One report to read."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the report's free text (one report, at most 20,000 characters)")
    pain: str | None = Field(default=None, description="SINS pain, a clinical input: mechanical / occasional / none")
    level: str | None = Field(default=None, description="pre-fill for this level instead of the most affected one")
    every_level: bool = Field(default=False, description="also pre-fill each other level with a finding, from the "
                              "findings that name that level (level_prefills)")


def run(data: ExtractRequest | dict[str, Any]) -> Any:
    """Validate the request (errors name extract.<field>) and extract."""
    from spinemets.errors import InvalidInputError
    from spinemets.reports.extract import check_text, extract
    from spinemets.validation import parse

    req = parse(ExtractRequest, data, "extract")
    try:
        check_text(req.text, field="extract.text")
        return extract(req.text, pain=req.pain, level=req.level, every_level=req.every_level)
    except InvalidInputError as exc:
        if exc.field.startswith("extract."):
            raise
        raise InvalidInputError(f"extract.{exc.field}", exc.message) from None


def warm() -> None:
    """Build the report-reading pipeline (about two seconds) before the first request needs it."""
    try:
        from spinemets.reports.extract import extract

        extract("Lytic lesion at T7.")
    except Exception:  # pragma: no cover - warming is best effort; a real request reports its own error
        pass


def install(app: FastAPI, problem_responses: dict[int | str, dict[str, Any]], web: bool = True) -> None:
    from spinemets.api.body import add_body_route
    from spinemets.reports.extract import ExtractResult
    from spinemets.reports.rules import load_rules, rules_path

    if rules_path(None):  # a site's rules file ($SPINEMETS_REPORT_RULES): fail at start-up, not on every request
        load_rules()

    add_body_route(
        app, API_PATH, prefix="extract", input_model=ExtractRequest, func=run, result_model=ExtractResult,
        summary="Read a spine report", tags=["reports"], responses=problem_responses, threaded=True,
        cache=getattr(app.state, "cache", None),
        example={"text": "Lytic metastasis at T7 with 40% loss of height, left pedicle involvement and epidural "
                         "tumour deforming the thecal sac. No cord compression.", "pain": "mechanical"},
        description="Findings of a spine MRI or CT report (levels, lesion type, collapse, posterior elements, alignment, "
        "epidural disease, fracture-differential features, marrow signal, impression), each with its text span and "
        "assertion (present, negated, uncertain, historical, hypothetical, other_level), and the SINS, ESCC, "
        "fracture-differential and marrow-signal inputs they pre-fill, each with the phrases it came from. What the "
        "report does not state stays unknown. Core function: `spinemets.reports.extract.extract`.",
    )
    if not web:
        return
    from fastapi.responses import HTMLResponse

    from spinemets.web.routes import env

    extra = env.globals.setdefault("nav_extra", [])
    if not any(item["href"] == "/extract" for item in extra):
        extra.append({"href": "/extract", "label": "Read a report", "before": "/assess"})
    app.add_api_route("/extract", extract_form, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)
    app.add_api_route("/extract", extract_submit, methods=["POST"], response_class=HTMLResponse, include_in_schema=False)


# --- the page -----------------------------------------------------------------------------------------------


def _options() -> dict[str, Any]:
    from spinemets.interpret.fracture import TABLE
    from spinemets.interpret.marrow import VOCABULARY
    from spinemets.knowledge.loader import load_kb
    from spinemets.levels import ORDER
    from spinemets.scores.escc import FINDINGS, GRADES, LABELS
    from spinemets.scores.sins import COMPONENTS, POINTS

    kb = load_kb()
    sins = {c: [(str(r["value"]), str(r["label"])) for r in kb.table(POINTS).where(component=c)] for c in COMPONENTS}
    features = {r.id: str(r["label"]) for r in kb.table(TABLE).rows}
    return {"sins": sins, "levels": ORDER, "grades": GRADES, "escc_findings": FINDINGS, "escc_labels": LABELS,
            "features": features, "marrow": {k: list(v) for k, v in VOCABULARY.items()}}


def _marked(text: str, findings: list[Any]) -> list[dict[str, Any]]:
    """The report as segments, the findings' spans marked (they do not overlap)."""
    segments, pos = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < pos:
            continue
        if f.start > pos:
            segments.append({"text": text[pos:f.start], "finding": None})
        segments.append({"text": text[f.start:f.end], "finding": f})
        pos = f.end
    if pos < len(text):
        segments.append({"text": text[pos:], "finding": None})
    return segments


def _links(result: Any) -> dict[str, str]:
    """GET links that open each calculator with the pre-filled values."""
    out = {}
    for name, inputs in result.prefill.inputs.items():
        if not inputs:
            continue
        params = {k: ("yes" if v else "no") if isinstance(v, bool) else str(v) for k, v in inputs.items()}
        out[name] = f"/{name}?{urlencode(params)}"
    return out


def _every_level(result: Any) -> list[dict[str, Any]]:
    """Each level with a finding, in spine order: what is pre-filled there (in words), or why nothing is."""
    from spinemets.levels import INDEX
    from spinemets.scores.escc import LABELS

    by_level = {lp.level: lp.prefill for lp in result.level_prefills}
    if result.index_level is not None:
        by_level[result.index_level] = result.prefill
    words = {(c, value): label for c, pairs in _options()["sins"].items() for value, label in pairs}
    rows = []
    for level in sorted(by_level, key=INDEX.__getitem__):
        pre = by_level[level]
        sins = [words.get((k, v.value), str(v.value)) for k, v in pre.sins.items() if k not in ("level", "pain")
                and v.value is not None]
        escc = [f"{LABELS.get(k, k)}: {'yes' if v.value else 'no'}" if isinstance(v.value, bool) else f"grade {v.value}"
                for k, v in pre.escc.items() if v.value is not None]
        why = "; ".join(sorted({pre.why_not[k] for k in ("sins", "escc") if k in pre.why_not}))
        rows.append({"level": level, "index": level == result.index_level, "sins": sins, "escc": escc,
                     "grade": pre.escc_grade, "why": why})
    return rows


def _render(request: Request, report: str, pain: str, level: str, result: Any = None, error: Any = None,
            status: int = 200) -> Any:
    from spinemets.web.routes import _ctx, render

    import json

    from spinemets.reports.prefill import lesions_case

    case = lesions_case(result) if result else None
    ctx = _ctx(request, "extract", report=report, pain=pain, level=level, result=result, error=error,
               options=_options(), segments=_marked(report, result.findings) if result else [],
               links=_links(result) if result else {}, levels_case=json.dumps(case, indent=2) if case else None,
               every_level=_every_level(result) if result else [])
    return render(request, "extract.html", ctx, status)


async def extract_form(request: Request) -> Any:
    example = request.query_params.get("example")
    return _render(request, EXAMPLE_REPORT if example else "", "", "")


async def extract_submit(request: Request) -> Any:
    from starlette.concurrency import run_in_threadpool

    from spinemets.errors import SpinemetsError
    from spinemets.web.routes import _error

    form = await request.form()
    report = str(form.get("report") or "")
    pain = str(form.get("pain") or "").strip()
    level = str(form.get("level") or "").strip()
    try:
        result = await run_in_threadpool(run, {"text": report, "pain": pain or None, "level": level or None,
                                               "every_level": True})
    except SpinemetsError as exc:
        error = _error(exc, "extract")
        error["inputs"] = [{"extract.text": "report"}.get(f, f.removeprefix("extract.")) for f in error["fields"]]
        return _render(request, report, pain, level, error=error, status=422)
    return _render(request, report, pain, level, result=result)
