"""CDS Hooks over HTTP: ``GET /cds-services`` (discovery) and ``POST /cds-services/{id}`` (a hook call), each call's
JWT checked (:mod:`spinemets.cdshooks.auth`).  Installed by the app's extension hook (``APP_EXTENSIONS``)."""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

BASE_URL_ENV = "SPINEMETS_CDS_BASE_URL"  # the public base URL of this service, for the aud check behind a proxy


def install(app: FastAPI, problem_responses: dict[int | str, dict[str, Any]], web: bool = True) -> None:
    from spinemets.cdshooks import auth, service

    state: dict[str, Any] = {}

    def trust() -> Any:
        if "trust" not in state:
            state["trust"] = auth.load_trust()
        return state["trust"]

    def problem(status: int, title: str, detail: str) -> Response:
        return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                            status_code=status, media_type="application/problem+json")

    @app.get("/cds-services", tags=["cds-hooks"], summary="CDS Hooks discovery")
    async def discovery() -> dict[str, Any]:
        return service.discovery()

    @app.post("/cds-services/{service_id}", tags=["cds-hooks"], summary="Call a CDS Hooks service",
              description="A CDS Hooks 2.0 hook call (order-select or order-sign), signed by the calling EHR. "
              "Decision support for healthcare professionals.", responses={
                  **problem_responses,
                  401: {"description": "Untrusted CDS client: the JWT is missing or fails a check (the reason is "
                                       "given)", "content": {"application/problem+json": {}}},
                  404: {"description": "No such CDS service", "content": {"application/problem+json": {}}},
                  412: {"description": "The patient's record was not prefetched and could not be fetched, and no "
                                       "order can be rated without it (what is missing is named)",
                        "content": {"application/problem+json": {}}}})
    async def call(service_id: str, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        base = os.environ.get(BASE_URL_ENV, "").rstrip("/") or str(request.base_url).rstrip("/")
        url = f"{base}/cds-services/{service_id}"
        try:
            claims = auth.verify(request.headers.get("authorization"), url, trust())
        except auth.CdsAuthError as exc:
            return problem(401, "Untrusted CDS client", exc.reason)
        caller = trust().clients.get(str(claims.get("iss"))) if not claims.get("unsigned") else None
        servers = caller.fhir_servers if caller is not None else ()
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            return problem(400, "Malformed request", "the body is not valid JSON")
        try:
            answer = await run_in_threadpool(service.handle, service_id, body, None, page_url=f"{base}/pathway",
                                             fhir_servers=servers, site_url=base)
        except service.HookError as exc:
            status = 404 if exc.field == "service" else 400
            return problem(status, "Not found" if status == 404 else "Malformed hook request", str(exc))
        except service.PreconditionError as exc:
            return problem(412, "Patient record needed", exc.detail)
        return JSONResponse(answer)

    @app.post("/cds-services/{service_id}/feedback", tags=["cds-hooks"], summary="Feedback on a service's cards",
              description="CDS Hooks 2.0 feedback (accepted or overridden cards), signed like a hook call; each entry "
              "is recorded in the audit trail.", responses={
                  **problem_responses,
                  401: {"description": "Untrusted CDS client", "content": {"application/problem+json": {}}},
                  404: {"description": "No such CDS service", "content": {"application/problem+json": {}}},
                  503: {"description": "No store to record feedback in", "content": {"application/problem+json": {}}}})
    async def feedback(service_id: str, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        from spinemets.errors import InvalidInputError

        if service_id not in service.service_ids():
            return problem(404, "Not found", f"no CDS service {service_id!r}")
        base = os.environ.get(BASE_URL_ENV, "").rstrip("/") or str(request.base_url).rstrip("/")
        try:
            claims = auth.verify(request.headers.get("authorization"), f"{base}/cds-services/{service_id}/feedback",
                                 trust())
        except auth.CdsAuthError as exc:
            return problem(401, "Untrusted CDS client", exc.reason)
        sink = getattr(request.app.state, "cds_feedback", None)
        if sink is None:
            return problem(503, "No store", "feedback is recorded in the store, which this server does not have")
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            return problem(400, "Malformed request", "the body is not valid JSON")
        try:
            count = await run_in_threadpool(sink, str(claims.get("iss") or "unsigned"), service_id,
                                            body.get("feedback") if isinstance(body, dict) else None)
        except InvalidInputError as exc:
            return problem(400, "Malformed feedback", str(exc))
        return JSONResponse({"recorded": count})
