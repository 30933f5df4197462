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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

SERVERS_ENV = "SPINEMETS_DICOMWEB_SERVERS"
API = "/api/v1/dicom"


class _Roi(BaseModel):
    model_config = ConfigDict(extra="forbid")

    center: list[float] | None = Field(default=None, min_length=3, max_length=3,
                                       description="a sphere's or circle's centre x, y, z in mm (DICOM LPS)")
    radius_mm: float | None = Field(default=None, gt=0, le=50, allow_inf_nan=False,
                                    description="a sphere's or circle's radius in mm (at most 50)")
    shape: Literal["sphere", "circle", "polygon"] = Field(
        default="sphere", description="a sphere, a circle in the image plane, or a polygon drawn on one image")
    points: list[Annotated[list[float], Field(min_length=3, max_length=3)]] | None = Field(
        default=None, min_length=3, max_length=1001,
        description="a polygon's corners x, y, z in mm, on one image (instead of centre and radius); at most "
                    "1000, the first may be repeated last")
    treated: bool | None = Field(default=None, description="the lesion has been treated")

    def region(self) -> dict[str, Any]:
        return {"center": self.center, "radius_mm": self.radius_mm, "shape": self.shape, "points": self.points}


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


class SeriesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series: str = Field(max_length=2000, description="the series' DICOMweb URL: {base}/studies/{study}/series/{series}")


class SliceRequest(SeriesRequest):
    index: int = Field(ge=0, description="the slice, 0 = the first along the normal of the image plane")


class SeriesView(BaseModel):
    """What a viewer needs to show a series and turn a click into patient coordinates."""

    rows: int
    columns: int
    slices: int
    spacing_mm: list[float] = Field(description="voxel size along a row, down a column and between slices (mm)")
    affine: list[list[float]] = Field(description="4 x 4: (column, row, slice, 1) to patient (x, y, z, 1) in mm")
    modality: str
    units: str | None
    description: str
    window: list[float] | None = Field(description="the series' own display window (centre, width), if it has one")
    window_function: str = Field(description="how the window maps values to grey: LINEAR, LINEAR_EXACT or SIGMOID "
                                             "(DICOM VOI LUT Function)")
    inverted: bool = Field(description="MONOCHROME1: the lowest values are shown white")
    image_numbers: list[int | None] = Field(description="each slice's image (instance) number, in slice order")
    value_range: list[float] = Field(description="the lowest and highest value of the series")
    kb_version: str
    disclaimer: str


Point = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=3, max_length=3)]


class Landmarks(BaseModel):
    """The superior and inferior endplate points of the anterior, middle and posterior walls, x, y, z in mm."""

    model_config = ConfigDict(extra="forbid")

    anterior_superior: Point
    anterior_inferior: Point
    middle_superior: Point
    middle_inferior: Point
    posterior_superior: Point
    posterior_inferior: Point


class HeightRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Landmarks = Field(description="the six landmarks x, y, z in mm, as placed on a sagittal image")
    reference_mm: list[Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]] | None = Field(
        default=None, min_length=1, max_length=4,
        description="the heights expected for this vertebra (e.g. the adjacent vertebrae's posterior heights), "
                    "averaged")


class HeightAnswer(BaseModel):
    result: Any
    summary: list[str]
    kb_version: str
    disclaimer: str


class DicomResult(BaseModel):
    measurement: Any
    summary: list[str] = Field(description="the measurement and its interpretation in words, one line each")
    kb_version: str
    disclaimer: str


class VolumeCache:
    """The last few series read, for a few minutes: a viewer asks for one slice at a time, and a series is read from
    the PACS once, not per request.  Access is checked on every request before the cache is used.

    * Keyed by the series (server, study, series), not the URL's spelling.
    * One read per series at a time (other requests for it wait for that read), at most ``size`` reads at once, at
      most ``size`` series kept; expired series are dropped on every use (never kept past ``seconds`` after read).
    * ``fresh(volume)``, when given, is asked before a kept series is used (a measurement checks that the series'
      images on the server are still the ones read); a series that is not fresh is read again."""

    def __init__(self, size: int = 2, seconds: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.seconds, self.clock = size, seconds, clock
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._reading: dict[str, threading.Lock] = {}
        self._slots = threading.BoundedSemaphore(size)

    @staticmethod
    def key(url: str) -> str:
        from spinemets.dicom.dicomweb import SERIES_URL

        m = SERIES_URL.match(url)
        return f"{m.group('base').rstrip('/')}|{m.group('study')}|{m.group('series')}" if m else url

    def _sweep(self, now: float) -> None:
        for k in [k for k, (at, _) in self._items.items() if now - at > self.seconds]:
            del self._items[k]

    def _kept(self, key: str) -> Any:
        with self._lock:
            self._sweep(self.clock())
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[1]

    def get(self, url: str, load: Callable[[str], Any], fresh: Callable[[Any], bool] | None = None) -> Any:
        key = self.key(url)
        volume = self._kept(key)
        if volume is not None and (fresh is None or fresh(volume)):
            return volume
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:  # one read of a series at a time; who waited finds it read
            kept = self._kept(key)
            if kept is not None and kept is not volume:
                return kept
            with self._slots:
                volume = load(url)
            with self._lock:
                self._items[key] = (self.clock(), volume)
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._reading.pop(key, None)
        return volume

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = VolumeCache()


def allowed_servers() -> list[str]:
    return [s.strip().rstrip("/") for s in os.environ.get(SERVERS_ENV, "").split(",") if s.strip()]


def _load(url: str, field: str, check: bool = True) -> Any:
    """The series at *url* on an allowed server; with *check*, a kept copy is used only while the server still holds
    the same images (a measurement, or opening the series); a viewer's slices use the kept copy as it is."""
    from spinemets.dicom.dicomweb import SERIES_URL, instance_uids, load_series
    from spinemets.errors import InvalidInputError

    m = SERIES_URL.match(url)
    if m is None:
        raise InvalidInputError(field, "a DICOMweb series URL: {base}/studies/{StudyInstanceUID}/series/"
                                       "{SeriesInstanceUID}")
    if m.group("base").rstrip("/") not in allowed_servers():
        raise InvalidInputError(field, f"the DICOMweb server {m.group('base')} is not one this site allows "
                                       f"({SERVERS_ENV})")
    fresh = (lambda volume: instance_uids(url) == {i.sop_instance_uid for i in volume.instances}) if check else None
    return CACHE.get(url, load_series, fresh)


def _result(m: Any) -> DicomResult:
    from spinemets.dicom.measure import describe
    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    return DicomResult(measurement=m.model_dump(mode="json"), summary=describe(m), kb_version=kb.version,
                       disclaimer=kb.manifest.disclaimer)


def series_view(r: SeriesRequest) -> SeriesView:
    from spinemets.knowledge.loader import load_kb

    volume = _load(r.series, "series")
    low, high = volume.value_range()
    kb = load_kb()
    return SeriesView(rows=volume.shape[1], columns=volume.shape[2], slices=volume.shape[0],
                      spacing_mm=[round(x, 6) for x in volume.spacing], affine=volume.affine.tolist(),
                      modality=volume.modality, units=volume.units, description=volume.description,
                      window=list(volume.window) if volume.window else None, window_function=volume.voi_function,
                      inverted=volume.inverted, image_numbers=[i.instance_number for i in volume.instances],
                      value_range=[low, high],
                      kb_version=kb.version, disclaimer=kb.manifest.disclaimer)


def height(r: HeightRequest) -> HeightAnswer:
    from spinemets.dicom.height import describe, vertebral_height
    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    result = vertebral_height(r.points.model_dump(), r.reference_mm, kb)
    return HeightAnswer(result=result.model_dump(mode="json"), summary=describe(result, kb), kb_version=kb.version,
                        disclaimer=kb.manifest.disclaimer)


def slice_bytes(r: SliceRequest) -> bytes:
    """One slice's values (rescaled) as little-endian float32, row after row."""
    from spinemets.errors import InvalidInputError

    volume = _load(r.series, "series", check=False)
    if r.index >= volume.shape[0]:
        raise InvalidInputError("slice.index", f"the series has {volume.shape[0]} slices (0 to {volume.shape[0] - 1}), "
                                         f"not {r.index + 1}")
    return volume.values(r.index).astype("<f4").tobytes()


def roi(r: RoiRequest) -> DicomResult:
    from spinemets.dicom.measure import roi as measure

    return _result(measure(_load(r.series, "series"), treated=r.treated, **r.region()))


def chemical_shift(r: ChemicalShiftRequest) -> DicomResult:
    from spinemets.dicom.measure import chemical_shift as measure

    return _result(measure(_load(r.in_phase, "in_phase"), _load(r.opposed_phase, "opposed_phase"), treated=r.treated,
                           **r.region()))


def dixon(r: DixonRequest) -> DicomResult:
    from spinemets.dicom.measure import dixon as measure

    return _result(measure(_load(r.fat, "fat"), _load(r.water, "water"), treated=r.treated, **r.region()))


def adc(r: AdcRequest) -> DicomResult:
    from spinemets.dicom.measure import adc as measure

    return _result(measure(_load(r.series, "series"), unit=r.unit, treated=r.treated, **r.region()))


def sr_bytes(r: SrRequest) -> tuple[bytes, str]:
    """The SR of the ROI on the series (and stored on the server when asked): its bytes and SOP instance UID."""
    from spinemets.dicom.dicomweb import SERIES_URL, store
    from spinemets.dicom.measure import roi as measure
    from spinemets.dicom.sr import measurement_report

    volume = _load(r.series, "series")
    sr = measurement_report(volume, measure(volume, treated=r.treated, **r.region()))
    if r.store:
        match = SERIES_URL.match(r.series)
        assert match is not None  # checked by _load
        store(match.group("base"), [sr])
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), str(sr.SOPInstanceUID)


def _install_page(app: FastAPI) -> None:
    """The slice viewer page (``/images``): markup and script only; it measures through the REST routes above."""
    from fastapi.responses import HTMLResponse

    from spinemets.web.routes import _ctx, env, render

    extra = env.globals.setdefault("nav_extra", [])
    if not any(item["href"] == "/images" for item in extra):
        extra.append({"href": "/images", "label": "Measure on images", "before": "/assess"})

    async def page(request: Request) -> Response:
        return render(request, "images.html", _ctx(request, "images"))

    app.add_api_route("/images", page, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)


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

    def route(path: str, model: type[BaseModel], func: Any, summary: str, fields: tuple[str, ...],
              ok: dict[str, Any], answer: Callable[[Any], Response],
              action: Callable[[Any], str] = lambda inp: "read") -> None:
        name = path.replace("-", "_")

        async def handle(request: Request) -> Response:
            _check_media_type(request, name)
            inp = parse_body(model, await request.body(), name)
            refused = await run_in_threadpool(gate, request, action(inp), [getattr(inp, f) for f in fields])
            if refused is not None:
                return refused
            try:
                result = await run_in_threadpool(func, inp)
            except UpstreamError as exc:
                return _bad_gateway(exc)
            return answer(result)

        app.add_api_route(f"{API}/{path}", handle, methods=["POST"], tags=["dicom"], summary=summary,
                          description=note, response_class=Response,
                          openapi_extra={"requestBody": {"required": True, "content": {
                              "application/json": {"schema": model.model_json_schema()}}}},
                          responses={200: ok, **access_responses})

    def json_route(path: str, model: type[BaseModel], func: Any, summary: str, fields: tuple[str, ...],
                   schema: type[BaseModel] = DicomResult, what: str = "The measurement and its interpretation") -> None:
        route(path, model, func, summary, fields,
              {"description": what, "content": {"application/json": {"schema": schema.model_json_schema()}}},
              lambda result: Response(result.model_dump_json(), media_type="application/json"))

    json_route("roi", RoiRequest, roi, "ROI statistics of a series (CT: mean and maximum HU interpreted)", ("series",))
    json_route("chemical-shift", ChemicalShiftRequest, chemical_shift, "Chemical shift: signal ratio and drop",
               ("in_phase", "opposed_phase"))
    json_route("dixon", DixonRequest, dixon, "Dixon fat fraction", ("fat", "water"))
    json_route("adc", AdcRequest, adc, "Mean ADC of an ADC map", ("series",))
    json_route("series", SeriesRequest, series_view, "A series' size and geometry, for a viewer", ("series",),
               SeriesView, "The series' size, voxel geometry, display window and value range")
    route("slice", SliceRequest, slice_bytes, "One slice's values, for a viewer", ("series",),
          {"description": "The slice's rescaled values as little-endian 32-bit floats, row after row (rows x columns "
                          "of the series)", "content": {"application/octet-stream": {}}},
          lambda data: Response(data, media_type="application/octet-stream"))
    route("sr", SrRequest, sr_bytes, "The ROI measurement as a DICOM SR (TID 1500)", ("series",),
          {"description": "The DICOM Comprehensive 3D SR", "content": {"application/dicom": {}}},
          lambda done: Response(done[0], media_type="application/dicom", headers={
              "content-disposition": f'attachment; filename="spinemets-sr-{done[1]}.dcm"'}),
          lambda inp: "create" if inp.store else "read")

    @app.post(f"{API}/height", tags=["dicom"], summary="Vertebral body heights from six landmark points",
              response_class=Response, openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": HeightRequest.model_json_schema()}}}},
              responses={200: {"description": "The heights, ratios and, against the expected height, the loss, its "
                                              "Genant grade and the SINS collapse it supports",
                               "content": {"application/json": {"schema": HeightAnswer.model_json_schema()}}},
                         **problem_responses},
              description="Landmark points only (no images are read): no sign-in needed. Decision support for "
                          "healthcare professionals.")
    async def height_route(request: Request) -> Response:
        _check_media_type(request, "height")
        inp = parse_body(HeightRequest, await request.body(), "height")
        return Response(height(inp).model_dump_json(), media_type="application/json")

    if web:
        _install_page(app)
