"""The spinemets web application: REST API under /api/v1 and the server-rendered pages, in one app.

``create_app()`` builds it; ``spinemets serve`` runs it with uvicorn.  Request and response bodies are
the core's own pydantic models, so the OpenAPI document (``/openapi.json``, browsable at ``/docs``) is
the core's schema.  The endpoints call the core functions and nothing else: there is no clinical logic
and no clinical number in this package.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp

from spinemets import __version__
from spinemets.api import features as feature_registry
from spinemets.api.body import add_body_route
from spinemets.api.cache import DEFAULT_MAX_BYTES, ResponseCache
from spinemets.api.middleware import DEFAULT_MAX_BODY, BodySizeLimit, SecurityHeaders
from spinemets.api.problem import (
    MEDIA_TYPE,
    PROBLEM_TYPES,
    Problem,
    problem_body,
    problem_for_exception,
    validation_problem,
)
from spinemets.assess import AssessResult, CaseDocument, assess
from spinemets.errors import SpinemetsError
from spinemets.knowledge.loader import load_kb
from spinemets.knowledge.models import Source, Statement, Table

log = logging.getLogger("spinemets.api")
# Modules with `install(app, problem_responses, web=...)`, loaded when present.
APP_EXTENSIONS = ("spinemets.reports.web", "spinemets.store.web", "spinemets.fhir.web", "spinemets.cdshooks.web",
                  "spinemets.dicom.web")
API = "/api/v1"
JSON = "application/json"

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text, "content": {MEDIA_TYPE: {}}}
    for code, text in (
        (400, "Malformed JSON"),
        (413, "Request body too large"),
        (415, "Unsupported media type"),
        (422, "Invalid, contradictory or insufficient input; `field`/`fields` name it"),
    )
}

# Example request bodies for the OpenAPI document (inputs only; every figure comes from the core).
EXAMPLES: dict[str, dict[str, Any]] = {
    "sins": {"level": "T12", "pain": "mechanical", "lesion": "lytic", "alignment": "normal",
             "collapse": "gt50", "posterolateral": "bilateral"},
    "escc": {"epidural_disease": True, "thecal_sac_deformed": True, "cord_abutted": True, "cord_compressed": False},
    "noms": {"escc_grade": "3", "histology": "renal cell carcinoma", "sins_total": 8, "fit_for_surgery": True},
    "probability": {"pre_test": 0.1, "tests": [{"modality": "mri", "result": "positive"}]},
    "pathway": {"cancer_history": "previous", "primary_site": "prostate", "spinal_pain": True,
                "pain_region": "lumbar", "neuro_deficits": [], "red_flags": []},
}


def _json(model: BaseModel) -> Response:
    """Serialise with pydantic-core directly (the result is already validated: no second pass)."""
    return Response(model.model_dump_json(), media_type=JSON)


def _problem_response(request: Request, slug: str, detail: str, fields: list[str], status: int | None = None, **extra: Any) -> Response:
    body = problem_body(slug, detail, status=status, instance=request.url.path, fields=fields, **extra)
    return JSONResponse(body, status_code=body["status"], media_type=MEDIA_TYPE)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(("/api/", "/cds-services")) and path != "/openapi.json"


# --- knowledge base ---------------------------------------------------------------------------------


class KbInfo(BaseModel):
    version: str
    released: str
    title: str
    disclaimer: str
    sources: int
    statements: int
    draft_statements: int
    tables: int


class StatementList(BaseModel):
    kb_version: str
    count: int = Field(description="matching statements before limit/offset")
    items: list[Statement]


class SourceList(BaseModel):
    kb_version: str
    count: int
    items: list[Source]


class TableSummary(BaseModel):
    id: str
    title: str
    description: str
    rows: int
    review_status: str
    last_reviewed: str


class TableList(BaseModel):
    kb_version: str
    items: list[TableSummary]


class SearchHit(BaseModel):
    id: str
    score: float
    text: str
    sources: list[str]
    draft: bool


class SearchResult(BaseModel):
    kb_version: str
    query: str
    hits: list[SearchHit]


def filter_statements(q: str | None = None, topic: str | None = None, review_status: str | None = None,
                      draft: bool | None = None) -> list[Statement]:
    """Statements matching the filters (search order for a query, id order otherwise).  Shared by API and pages."""
    from spinemets.knowledge.search import search

    kb = load_kb()
    if q and q.strip():
        items = [kb.statements[h.id] for h in search(q, kb, limit=len(kb.statements))]
    else:
        items = sorted(kb.statements.values(), key=lambda s: s.id)
    if topic:
        items = [s for s in items if topic in s.topics]
    if review_status:
        items = [s for s in items if s.review_status.value == review_status]
    if draft is not None:
        items = [s for s in items if s.is_draft == draft]
    return items


def _kb_router() -> APIRouter:
    r = APIRouter(prefix="/kb", tags=["knowledge base"])

    @r.get("", response_model=KbInfo, summary="Knowledge-base version and counts")
    async def kb_info() -> KbInfo:
        kb = load_kb()
        return KbInfo(
            version=kb.version, released=kb.manifest.released.isoformat(), title=kb.manifest.title,
            disclaimer=kb.manifest.disclaimer, sources=len(kb.sources), statements=len(kb.statements),
            draft_statements=sum(1 for s in kb.statements.values() if s.is_draft), tables=len(kb.tables),
        )

    @r.get("/statements", response_model=StatementList, summary="Statements, filtered")
    async def kb_statements(
        q: str | None = Query(None, max_length=200, description="search words"),
        topic: str | None = Query(None, max_length=60),
        review_status: str | None = Query(None, pattern="^(draft|reviewed|approved)$"),
        draft: bool | None = Query(None, description="only drafts (true) or only non-drafts (false)"),
        limit: int = Query(50, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> StatementList:
        items = filter_statements(q, topic, review_status, draft)
        return StatementList(kb_version=load_kb().version, count=len(items), items=items[offset:offset + limit])

    @r.get("/statements/{statement_id}", response_model=Statement, summary="One statement")
    async def kb_statement(statement_id: str) -> Statement:
        return load_kb().statement(statement_id)

    @r.get("/sources", response_model=SourceList, summary="The bibliography")
    async def kb_sources() -> SourceList:
        kb = load_kb()
        items = sorted(kb.sources.values(), key=lambda s: s.id)
        return SourceList(kb_version=kb.version, count=len(items), items=items)

    @r.get("/sources/{source_id}", response_model=Source, summary="One source")
    async def kb_source(source_id: str) -> Source:
        return load_kb().source(source_id)

    @r.get("/tables", response_model=TableList, summary="Tables (points, grades, figures, cut-offs)")
    async def kb_tables() -> TableList:
        kb = load_kb()
        return TableList(kb_version=kb.version, items=[
            TableSummary(id=t.id, title=t.title, description=t.description, rows=len(t.rows),
                         review_status=t.review_status.value, last_reviewed=t.last_reviewed.isoformat())
            for t in sorted(kb.tables.values(), key=lambda t: t.id)
        ])

    @r.get("/tables/{table_id}", response_model=Table, summary="One table with its rows")
    async def kb_table(table_id: str) -> Response:
        return _json(load_kb().table(table_id))

    @r.get("/search", response_model=SearchResult, summary="Search statements")
    async def kb_search(q: str = Query(..., min_length=1, max_length=200), limit: int = Query(10, ge=1, le=100)) -> SearchResult:
        from spinemets.knowledge.search import search

        kb = load_kb()
        hits = [SearchHit(id=h.id, score=h.score, text=h.text, sources=list(kb.statements[h.id].sources),
                          draft=kb.statements[h.id].is_draft) for h in search(q, kb, limit=limit)]
        return SearchResult(kb_version=kb.version, query=q, hits=hits)

    @r.get("/items/{item_id}", summary="Any item by id (TABLE.ROW for a table row)")
    async def kb_item(item_id: str) -> Response:
        return _json(load_kb().find(item_id))

    return r


# --- the app ----------------------------------------------------------------------------------------


class SpinemetsApp(FastAPI):
    """FastAPI with the security headers outermost.

    Starlette answers unexpected errors (our 500 handler) in its ServerErrorMiddleware, which sits outside
    every middleware added with ``add_middleware``; wrapping the whole stack gives the 500s the headers too.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


class Version(BaseModel):
    spinemets: str
    kb_version: str
    disclaimer: str
    features: list[str]


def create_app(
    *, max_body: int | None = None, web: bool = True, preload_ask: bool | None = None, cache_bytes: int | None = None,
    preload_extract: bool | None = None,
) -> FastAPI:
    """Build the application.

    ``max_body`` (bytes) defaults to $SPINEMETS_MAX_BODY or 64 KiB.  ``cache_bytes`` bounds the response
    cache of the pure core functions (default $SPINEMETS_RESPONSE_CACHE or 32 MiB; 0 disables it).
    ``preload_ask`` (default $SPINEMETS_PRELOAD_ASK) loads ask's retrieval model in a background thread at
    start-up, so that the first question does not wait for it.  ``preload_extract`` (default
    $SPINEMETS_PRELOAD_EXTRACT, which ``spinemets serve`` sets) builds the report-reading pipeline the same way, so
    that the first /extract request does not wait about two seconds for it.
    """
    kb = load_kb()  # fail at start-up, not on the first request
    if max_body is None:
        max_body = int(os.environ.get("SPINEMETS_MAX_BODY", DEFAULT_MAX_BODY))
    if preload_ask is None:
        preload_ask = os.environ.get("SPINEMETS_PRELOAD_ASK", "") not in ("", "0")
    if preload_extract is None:
        preload_extract = os.environ.get("SPINEMETS_PRELOAD_EXTRACT", "") not in ("", "0")
    from spinemets.api import ask as ask_adapter

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if preload_ask and ask_adapter.available():
            threading.Thread(target=ask_adapter.warm, name="spinemets-ask-warm", daemon=True).start()
        if preload_extract:
            from spinemets.reports.web import warm as warm_extract

            threading.Thread(target=warm_extract, name="spinemets-extract-warm", daemon=True).start()
        yield

    app = SpinemetsApp(
        lifespan=lifespan,
        title="spinemets",
        version=__version__,
        summary="Decision support for the imaging diagnosis of vertebral metastases",
        description=(
            f"REST API of spinemets, knowledge base {kb.version}. {kb.manifest.disclaimer} "
            "Every result cites numbered references; errors are RFC 9457 problem+json naming the field."
        ),
        docs_url=None,  # /docs is a server-rendered page (Swagger UI needs a CDN and inline script)
        redoc_url=None,
    )
    app.state.max_body = max_body

    cache_bytes = int(os.environ.get("SPINEMETS_RESPONSE_CACHE", DEFAULT_MAX_BYTES)) if cache_bytes is None else cache_bytes
    cache = ResponseCache(cache_bytes) if cache_bytes > 0 else None
    app.state.cache = cache
    api = APIRouter(prefix=API)

    @api.get("/ping", summary="Liveness; the benchmark's bare endpoint", tags=["service"])
    async def ping() -> Response:
        return Response(b"{}", media_type=JSON)

    @api.post("/ping", summary="Liveness (POST, body ignored)", tags=["service"])
    async def ping_post() -> Response:
        return Response(b"{}", media_type=JSON)

    @api.get("/version", response_model=Version, summary="Package and knowledge-base versions", tags=["service"])
    async def version() -> Version:
        kb = load_kb()
        return Version(spinemets=__version__, kb_version=kb.version, disclaimer=kb.manifest.disclaimer,
                       features=[f.name for f in feature_registry.available()])

    @api.get("/schema/case", summary="JSON Schema of the case document", tags=["core"])
    async def case_schema() -> dict[str, Any]:
        return CaseDocument.model_json_schema()

    api.include_router(_kb_router())
    app.include_router(api)

    # POST endpoints whose body is a core input model (served by the lean handler of api/body.py).
    add_body_route(
        app, f"{API}/assess", prefix="case", input_model=CaseDocument, func=assess, result_model=AssessResult,
        summary="Assess a case document", tags=["core"], responses=PROBLEM_RESPONSES, cache=cache,
        description="Every result the case's inputs allow (pathway, SINS, ESCC, NOMS, post-test probability and "
        "the interpretations), each with its status. Core function: `spinemets.assess.assess`.",
    )
    for lf in feature_registry.available():
        doc = (inspect.getdoc(lf.func) or "").split("\n\n")[0]
        add_body_route(
            app, lf.feature.path, prefix=lf.name, input_model=lf.input_model, func=lf.func,
            result_model=lf.result_model, summary=lf.feature.title, tags=[lf.feature.group],
            description=f"{lf.feature.blurb}\n\n{doc}\n\nCore function: `{lf.feature.module}.{lf.feature.func}`.",
            responses=PROBLEM_RESPONSES, example=EXAMPLES.get(lf.name), cache=cache,
        )
    if ask_adapter.available():
        ask_adapter.add_routes(app, PROBLEM_RESPONSES)

    # Adapters that bring their own routes (report extraction, stored assessments) install themselves.
    import importlib

    for module in APP_EXTENSIONS:
        try:
            ext = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
                continue
            raise
        ext.install(app, PROBLEM_RESPONSES, web=web)

    if web:
        from spinemets.web.routes import install as install_web

        install_web(app)

    _install_handlers(app)
    _declare_problems_in_openapi(app)
    app.add_middleware(BodySizeLimit, max_body=max_body)  # SecurityHeaders wraps everything: see SpinemetsApp
    return app


# Error responses every operation can give, by kind of operation (the OpenAPI document declares them all).
ERRORS_OF_EVERY_OPERATION = ("internal-error",)
ERRORS_WITH_PATH_PARAMETERS = ("not-found",)
ERRORS_WITH_PARAMETERS = ("invalid-input",)
ERRORS_WITH_A_BODY = ("malformed-json", "body-too-large", "unsupported-media-type", "invalid-input")
ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, or a body that is not a JSON object",
    404: "No such item: the path parameter names nothing that exists",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid, contradictory or insufficient input; `field`/`fields` name it",
    500: "Unexpected error (logged; the response holds no details)",
}


def _declare_problems_in_openapi(app: FastAPI) -> None:
    """Post-process the OpenAPI document: every error response of every operation is problem+json.

    FastAPI declares its own 422 schema on the GETs with parameters and nothing for 404 and 500; routes
    added by extensions declare theirs with an extra application/json entry.  Here each operation gets the
    errors it can give (500 always; 404 with path parameters; 422 with parameters; 400/413/415/422 with a
    body), and every 4xx/5xx response the single content type ``application/problem+json`` with the
    :class:`Problem` schema.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        if "Problem" not in schemas:
            schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        problem = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in spec.get("paths", {}).items():
            for op in operations.values():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                slugs = list(ERRORS_OF_EVERY_OPERATION)
                if "{" in path:
                    slugs += ERRORS_WITH_PATH_PARAMETERS
                if op.get("parameters"):
                    slugs += ERRORS_WITH_PARAMETERS
                if op.get("requestBody"):
                    slugs += ERRORS_WITH_A_BODY
                responses = op["responses"]
                for slug in slugs:
                    status = PROBLEM_TYPES[slug].status
                    responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status]})
                for code, response in responses.items():
                    if code[:1] in ("4", "5"):
                        response["content"] = dict(problem)
                        if response.get("description") == "Validation Error":  # FastAPI's own
                            response["description"] = ERROR_DESCRIPTIONS[422]
        for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, now referenced nowhere
            if json.dumps(spec).count(f'"#/components/schemas/{unused}"') == 0:
                schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts on the request's path (Starlette's 405 names only the first route's)."""
    routes = request.app.router.routes
    return [m for m in HTTP_METHODS
            if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)]


def _install_handlers(app: FastAPI) -> None:
    def html_error(request: Request, status: int, title: str, detail: str) -> Response:
        from spinemets.web.routes import render_error

        return render_error(request, status, title, detail)

    @app.exception_handler(SpinemetsError)
    async def spinemets_error(request: Request, exc: SpinemetsError) -> Response:
        slug, detail, fields = problem_for_exception(exc) or ("invalid-input", str(exc), [])
        if _wants_html(request) and getattr(request.app.state, "web", False):
            from spinemets.api.problem import PROBLEM_TYPES

            p = PROBLEM_TYPES[slug]
            return html_error(request, p.status, p.title, detail)
        return _problem_response(request, slug, detail, fields)

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, exc: RequestValidationError) -> Response:
        slug, detail, fields = validation_problem(exc.errors())
        return _problem_response(request, slug, detail, fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_html(request) and getattr(request.app.state, "web", False):
            if exc.status_code == 404:
                return html_error(request, 404, "Not found", f"There is no page at {request.url.path}.")
            return html_error(request, exc.status_code, "Error", str(exc.detail))
        slug = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large", 415: "unsupported-media-type"}.get(
            exc.status_code, "http-error")
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no endpoint {request.url.path}; see /docs"
        elif exc.status_code == 405 and detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs"
        resp = _problem_response(request, slug, detail, [], status=exc.status_code)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        if exc.status_code == 405:
            methods = allowed_methods(request)
            if methods:
                resp.headers["allow"] = ", ".join(methods)
        return resp

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        if _wants_html(request) and getattr(request.app.state, "web", False):
            return html_error(request, 500, "Internal error", "An unexpected error occurred; it has been logged.")
        return _problem_response(request, "internal-error", "an unexpected error occurred; it has been logged", [])


async def in_thread(func: Any, *args: Any) -> Any:
    """Run slow work (dense retrieval) off the event loop."""
    return await run_in_threadpool(func, *args)
