"""``POST /api/v1/fhir/export``: a case document assessed and returned as a FHIR Bundle (application/fhir+json).

Installed by the app's extension hook (``APP_EXTENSIONS``); the body is parsed and validated as ``assess`` does, so
errors name the field in the same words (problem+json)."""

from __future__ import annotations

import inspect
import json
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import Response
from starlette.routing import request_response

PATH = "/api/v1/fhir/export"
IMPORT_PATH = "/api/v1/fhir/import"
STORED_PATH = "/api/v1/fhir/assessments/{assessment_id}"
CODESYSTEM_PATH = "/api/v1/fhir/CodeSystem/spinemets"
MEDIA = "application/fhir+json"


def install(app: FastAPI, problem_responses: dict[int | str, dict[str, Any]], web: bool = True) -> None:
    from spinemets.api.body import _check_media_type, parse_body
    from spinemets.assess import CaseDocument, assess
    from spinemets.fhir.export import assessment_bundle

    async def handle(request: Request) -> Response:
        _check_media_type(request, "case")
        case = parse_body(CaseDocument, await request.body(), "case")
        bundle = assessment_bundle(assess(case))
        return Response(json.dumps(bundle), media_type=MEDIA)

    async def declared(body: Any) -> Response:  # the signature FastAPI documents (body = the case document)
        return Response(json.dumps(assessment_bundle(assess(body))), media_type=MEDIA)

    declared.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=CaseDocument,
                           default=Body(...))])
    declared.__annotations__ = {"body": CaseDocument, "return": Response}
    app.add_api_route(
        PATH, declared, methods=["POST"], tags=["fhir"], responses={
            200: {"description": "A FHIR R4B collection Bundle: DiagnosticReport, Observations, Device, Provenance",
                  "content": {MEDIA: {}}}, **problem_responses},
        summary="Assess a case and return it as FHIR",
        description="The case document of `/api/v1/assess`, assessed and returned as a FHIR Bundle "
        "(`spinemets.fhir.export.assessment_bundle`). Decision support for healthcare professionals.",
    )
    route = app.router.routes[-1]
    assert getattr(route, "path", None) == PATH
    route.app = request_response(handle)  # type: ignore[attr-defined]

    @app.get(CODESYSTEM_PATH, tags=["fhir"], summary="spinemets' code system as a FHIR CodeSystem",
             response_class=Response, responses={200: {"description": "A FHIR R4B CodeSystem: every code of "
                                                                      "spinemets' FHIR results, with its meaning",
                                                       "content": {MEDIA: {}}}},
             description="The codes the FHIR export uses (SINS, ESCC, NOMS, prognostic scores, imaging pathway), "
             "versioned by the knowledge base; its canonical URL follows SPINEMETS_FHIR_BASE.")
    async def codesystem() -> Response:
        from spinemets.fhir.codesystem import code_system_resource

        return Response(json.dumps(code_system_resource()), media_type=MEDIA)

    @app.get(STORED_PATH, tags=["fhir"], summary="A saved assessment as FHIR", responses={
        200: {"description": "A FHIR R4B collection Bundle of the saved result, with its patient reference and study "
                             "date", "content": {MEDIA: {}}},
        **problem_responses,
        401: {"description": "Not signed in (no session cookie or API token)", "content": {"application/problem+json": {}}},
        403: {"description": "Not allowed for this user", "content": {"application/problem+json": {}}},
        404: {"description": "No assessment with this id that you may read", "content": {"application/problem+json": {}}},
        503: {"description": "No store on this server", "content": {"application/problem+json": {}}}},
        response_class=Response, description="The result as it was computed and saved (not recomputed), signed-in "
        "users with access to the assessment only; audited as an export. Decision support for healthcare "
        "professionals.")
    async def stored(request: Request, assessment_id: str) -> Response:
        from starlette.concurrency import run_in_threadpool

        from spinemets.fhir.export import Stored

        source = getattr(request.app.state, "stored_result", None)
        if source is None:
            return Response(json.dumps({"type": "about:blank", "title": "No store", "status": 503,
                                        "detail": "saved assessments live in the store, which this server does not "
                                                  "have"}), status_code=503, media_type="application/problem+json")
        saved = await run_in_threadpool(source, request, assessment_id)
        result = saved.pop("result")
        return Response(json.dumps(assessment_bundle(result, stored=Stored(**saved))), media_type=MEDIA)

    from spinemets.fhir.read import ReadResult, read_bundle

    def read(body: dict[str, Any]) -> ReadResult:
        return read_bundle(body)

    async def import_handle(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        from spinemets.api.body import ProblemError

        _check_media_type(request, "bundle")
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ProblemError("malformed-json", f"bundle: the request body is not valid JSON: {exc}", ["bundle"]) from None
        result = await run_in_threadpool(read, body)
        return Response(result.model_dump_json(), media_type="application/json")

    async def import_declared(body: Any) -> ReadResult:  # the signature FastAPI documents (body = a FHIR Bundle)
        return read(body)

    import_declared.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dict[str, Any],
                           default=Body(..., description="a FHIR R4 Bundle (JSON)"))])
    import_declared.__annotations__ = {"body": dict[str, Any], "return": ReadResult}
    app.add_api_route(
        IMPORT_PATH, import_declared, methods=["POST"], tags=["fhir"], response_model=ReadResult,
        responses=problem_responses, summary="Read a FHIR Bundle into a case document",
        description="Patient (age, sex), Condition (cancers, pregnancy), coded Observation (eGFR, Karnofsky) and "
        "DiagnosticReport text (SINS and ESCC) become a case document for `/api/v1/assess`, with what was used and "
        "what was not (`spinemets.fhir.read.read_bundle`). Decision support for healthcare professionals.",
    )
    route = app.router.routes[-1]
    assert getattr(route, "path", None) == IMPORT_PATH
    route.app = request_response(import_handle)  # type: ignore[attr-defined]
