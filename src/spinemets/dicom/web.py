"""DICOM measurements over REST (issue 14): ``POST /api/v1/dicom/{roi,chemical-shift,dixon,adc}`` answer the
measurement and its interpretation as JSON; ``POST /api/v1/dicom/sr`` answers the DICOM SR (application/dicom) and can
store it back on the server (STOW-RS).

The series are named by their DICOMweb URLs on a server the site allows (``SPINEMETS_DICOMWEB_SERVERS``, the
DICOMweb roots separated by commas): the service never fetches from an address a caller chooses.  Files are not
uploaded to the REST API (a series is tens to hundreds of megabytes); the command line reads folders.  Installed by
the app's extension hook (``APP_EXTENSIONS``).
"""

from __future__ import annotations

import io
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
    radius_mm: float = Field(gt=0, le=200, allow_inf_nan=False, description="the ROI radius in mm")
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


def install(app: FastAPI, problem_responses: dict[int | str, dict[str, Any]], web: bool = True) -> None:
    from starlette.concurrency import run_in_threadpool

    from spinemets.api.body import _check_media_type, add_body_route, parse_body

    note = ("The series are DICOMweb URLs on a server the site allows (SPINEMETS_DICOMWEB_SERVERS). Decision support "
            "for healthcare professionals.")
    for path, model, func, summary in (
            ("roi", RoiRequest, roi, "ROI statistics of a series (CT: mean and maximum HU interpreted)"),
            ("chemical-shift", ChemicalShiftRequest, chemical_shift, "Chemical shift: signal ratio and drop"),
            ("dixon", DixonRequest, dixon, "Dixon fat fraction"),
            ("adc", AdcRequest, adc, "Mean ADC of an ADC map")):
        add_body_route(app, f"{API}/{path}", prefix=path.replace("-", "_"), input_model=model, func=func,
                       result_model=DicomResult, summary=summary, description=note, tags=["dicom"],
                       responses=problem_responses, threaded=True)

    @app.post(f"{API}/sr", tags=["dicom"], summary="The ROI measurement as a DICOM SR (TID 1500)",
              response_class=Response, openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": SrRequest.model_json_schema()}}}},
              responses={200: {"description": "The DICOM Comprehensive 3D SR", "content": {"application/dicom": {}}},
                         **problem_responses}, description=note)
    async def sr(request: Request) -> Response:
        _check_media_type(request, "sr")
        inp = parse_body(SrRequest, await request.body(), "sr")
        data, uid = await run_in_threadpool(sr_bytes, inp)
        return Response(data, media_type="application/dicom",
                        headers={"content-disposition": f'attachment; filename="spinemets-sr-{uid}.dcm"'})
