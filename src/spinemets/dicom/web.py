"""DICOM measurements over REST (issue 14): ``POST /api/v1/dicom/{roi,chemical-shift,dixon,adc}`` answer the
measurement and its interpretation as JSON; ``POST /api/v1/dicom/sr`` answers the DICOM SR (application/dicom) and can
store it back on the server (STOW-RS).

Only a signed-in clinician may ask (the request is audited before a series is read, through a gate the store
registers: this adapter does not import the store; without a store the answer is 503).  The series are named by their
DICOMweb URLs on a server the site allows (``SPINEMETS_DICOMWEB_SERVERS``, the
DICOMweb roots separated by commas): the service never fetches from an address a caller chooses.  Files are not
uploaded to the REST API (a series is tens to hundreds of megabytes); the command line reads folders.  Installed by
the app's extension hook (``APP_EXTENSIONS``).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

SERVERS_ENV = "SPINEMETS_DICOMWEB_SERVERS"
API = "/api/v1/dicom"


class _Roi(BaseModel):
    model_config = ConfigDict(extra="forbid")

    center: list[float] = Field(min_length=3, max_length=3, description="the ROI centre x, y, z in mm (DICOM LPS)")
    radius_mm: float = Field(gt=0, le=50, allow_inf_nan=False, description="the ROI radius in mm (at most 50)")
    shape: Literal["sphere", "circle"] = Field(default="sphere", description="a sphere, or a circle in the image plane")
    treated: bool | None = Field(default=None, description="the lesion has been treated")


class RoiRequest(_Roi):
    series: str = Field(max_length=2000, description="the series' DICOMweb URL: {base}/studies/{study}/series/{series}")


class ChemicalShiftRequest(_Roi):
    in_phase: str = Field(max_length=2000, description="the in-phase series' DICOMweb URL")
    opposed_phase: str = Field(max_length=2000, description="the opposed-phase series' DICOMweb URL")


class DixonRequest(_Roi):
    fat: str = Field(max_length=2000, description="the fat images' DICOMweb URL")
    water: str = Field(max_length=2000, description="the water images' DICOMweb URL")


class AdcRequest(RoiRequest):
    unit: Literal["1e-6 mm2/s", "1e-3 mm2/s", "mm2/s"] = Field(description="the unit of the ADC map's values")


class SrRequest(RoiRequest):
    store: bool = Field(default=False, description="also store the SR on the series' DICOMweb server (STOW-RS)")


class DicomResult(BaseModel):
    measurement: Any
    kb_version: str
    disclaimer: str


def allowed_servers() -> list[str]:
    return [s.strip().rstrip("/") for s in os.environ.get(SERVERS_ENV, "").split(",") if s.strip()]


def _load(url: str, field: str) -> Any:
    from spinemets.dicom.dicomweb import SERIES_URL, load_series
    from spinemets.errors import InvalidInputError

    m = SERIES_URL.match(url)
    if m is None:
        raise InvalidInputError(field, "a DICOMweb series URL: {base}/studies/{StudyInstanceUID}/series/"
                                       "{SeriesInstanceUID}")
    if m.group("base").rstrip("/") not in allowed_servers():
        raise InvalidInputError(field, f"the DICOMweb server {m.group('base')} is not one this site allows "
                                       f"({SERVERS_ENV})")
    return load_series(url)


def _result(m: Any) -> DicomResult:
    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    return DicomResult(measurement=m.model_dump(mode="json"), kb_version=kb.version,
                       disclaimer=kb.manifest.disclaimer)


def roi(r: RoiRequest) -> DicomResult:
    from spinemets.dicom.measure import roi as measure

    return _result(measure(_load(r.series, "series"), r.center, r.radius_mm, r.shape, r.treated))


def chemical_shift(r: ChemicalShiftRequest) -> DicomResult:
    from spinemets.dicom.measure import chemical_shift as measure

    return _result(measure(_load(r.in_phase, "in_phase"), _load(r.opposed_phase, "opposed_phase"), r.center,
                           r.radius_mm, r.shape, r.treated))


def dixon(r: DixonRequest) -> DicomResult:
    from spinemets.dicom.measure import dixon as measure

    return _result(measure(_load(r.fat, "fat"), _load(r.water, "water"), r.center, r.radius_mm, r.shape, r.treated))


def adc(r: AdcRequest) -> DicomResult:
    from spinemets.dicom.measure import adc as measure

    return _result(measure(_load(r.series, "series"), r.center, r.radius_mm, r.unit, r.shape, r.treated))


def sr_bytes(r: SrRequest) -> tuple[bytes, str]:
    """The SR of the ROI on the series (and stored on the server when asked): its bytes and SOP instance UID."""
    from spinemets.dicom.dicomweb import SERIES_URL, store
    from spinemets.dicom.measure import roi as measure
    from spinemets.dicom.sr import measurement_report

    volume = _load(r.series, "series")
    sr = measurement_report(volume, measure(volume, r.center, r.radius_mm, r.shape, r.treated))
    if r.store:
        match = SERIES_URL.match(r.series)
        assert match is not None  # checked by _load
        store(match.group("base"), [sr])
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), str(sr.SOPInstanceUID)


def _bad_gateway(exc: Exception) -> Response:
    return Response(json.dumps({"type": "about:blank", "title": "DICOMweb server failed", "status": 502,
                                "detail": str(exc)}), status_code=502, media_type="application/problem+json")


def install(app: FastAPI, problem_responses: dict[int | str, dict[str, Any]], web: bool = True) -> None:
    from starlette.concurrency import run_in_threadpool

    from spinemets.api.body import _check_media_type, parse_body
    from spinemets.dicom.dicomweb import UpstreamError

    note = ("Signed-in clinicians only (each request audited). The series are DICOMweb URLs on a server the site "
            "allows (SPINEMETS_DICOMWEB_SERVERS). Decision support for healthcare professionals.")
    access_responses = {
        **problem_responses,
        401: {"description": "Not signed in (no session cookie or API token)", "content": {"application/problem+json": {}}},
        403: {"description": "Not allowed for this user", "content": {"application/problem+json": {}}},
        502: {"description": "The DICOMweb server failed or could not be reached", "content": {
            "application/problem+json": {}}},
        503: {"description": "No store on this server to check who asks", "content": {"application/problem+json": {}}},
    }

    def gate(request: Request, action: str, series: list[str]) -> Response | None:
        access = getattr(request.app.state, "dicom_access", None)
        if access is None:
            return Response(json.dumps({"type": "about:blank", "title": "No store", "status": 503,
                                        "detail": "DICOM measurements need a signed-in user, which needs the store"}),
                            status_code=503, media_type="application/problem+json")
        access(request, action, series)  # 401/403 as the store's problems
        return None

    def json_route(path: str, model: type[BaseModel], func: Any, summary: str, fields: tuple[str, ...]) -> None:
        async def handle(request: Request) -> Response:
            _check_media_type(request, path.replace("-", "_"))
            inp = parse_body(model, await request.body(), path.replace("-", "_"))
            refused = await run_in_threadpool(gate, request, "read", [getattr(inp, f) for f in fields])
            if refused is not None:
                return refused
            try:
                result = await run_in_threadpool(func, inp)
            except UpstreamError as exc:
                return _bad_gateway(exc)
            return Response(result.model_dump_json(), media_type="application/json")

        app.add_api_route(f"{API}/{path}", handle, methods=["POST"], tags=["dicom"], summary=summary,
                          description=note, response_class=Response,
                          openapi_extra={"requestBody": {"required": True, "content": {
                              "application/json": {"schema": model.model_json_schema()}}}},
                          responses={200: {"description": "The measurement and its interpretation",
                                           "content": {"application/json": {
                                               "schema": DicomResult.model_json_schema()}}},
                                     **access_responses})

    json_route("roi", RoiRequest, roi, "ROI statistics of a series (CT: mean and maximum HU interpreted)", ("series",))
    json_route("chemical-shift", ChemicalShiftRequest, chemical_shift, "Chemical shift: signal ratio and drop",
               ("in_phase", "opposed_phase"))
    json_route("dixon", DixonRequest, dixon, "Dixon fat fraction", ("fat", "water"))
    json_route("adc", AdcRequest, adc, "Mean ADC of an ADC map", ("series",))

    @app.post(f"{API}/sr", tags=["dicom"], summary="The ROI measurement as a DICOM SR (TID 1500)",
              response_class=Response, openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": SrRequest.model_json_schema()}}}},
              responses={200: {"description": "The DICOM Comprehensive 3D SR", "content": {"application/dicom": {}}},
                         **access_responses}, description=note)
    async def sr(request: Request) -> Response:
        _check_media_type(request, "sr")
        inp = parse_body(SrRequest, await request.body(), "sr")
        refused = await run_in_threadpool(gate, request, "create" if inp.store else "read", [inp.series])
        if refused is not None:
            return refused
        try:
            data, uid = await run_in_threadpool(sr_bytes, inp)
        except UpstreamError as exc:
            return _bad_gateway(exc)
        return Response(data, media_type="application/dicom",
                        headers={"content-disposition": f'attachment; filename="spinemets-sr-{uid}.dcm"'})
