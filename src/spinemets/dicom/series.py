"""A DICOM series read into a volume in patient coordinates (issue 14, "Read").

:func:`load_folder` reads every DICOM file of a folder (pydicom), :func:`from_datasets` builds the volume from datasets
(those of a folder, or of a DICOMweb retrieve):

* one series, one frame of reference, one orientation, single-frame images with pixel spacing, position and
  orientation; anything else is an error naming the reason (two series in the folder, mixed frames of reference, a
  missing spacing, a multi-frame image, a compressed transfer syntax no installed decoder reads, slices at the same
  position, unevenly spaced or not stacked along the normal (a tilted gantry), pixels stored differently, a damaged
  file, a value that is not a number);
* slices sorted by their position along the normal of the image plane (the order of the files, and the instance
  numbers, are not trusted);
* each slice's stored values rescaled by its own slope and intercept (CT in Hounsfield units);
* the affine matrix from voxel indices (column i, row j, slice k) to patient coordinates in millimetres (DICOM LPS).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinemets.errors import InvalidInputError

DICOMDIR = "1.2.840.10008.1.3.10"
SLICE_TOLERANCE = 0.01  # relative variation of slice spacing tolerated (1 %)


class SeriesError(InvalidInputError):
    """A series that cannot be read as one volume; the message names the reason."""

    def __init__(self, message: str, field: str = "series") -> None:
        super().__init__(field, message)


@dataclass
class Instance:
    """What a measurement report references of each image: its SOP class and instance."""

    sop_class_uid: str
    sop_instance_uid: str
    instance_number: int | None = None  # the image number a PACS shows (not trusted for the order)


@dataclass
class Volume:
    """A series as a volume: ``stored[k, j, i]`` (slice, row, column) with one rescale (``slope``, ``intercept``) for
    every slice, or already rescaled float32 values when the slices were rescaled differently (then slope 1,
    intercept 0); ``affine`` maps (i, j, k, 1) to patient (x, y, z, 1) in mm.  ``values(box)`` gives the rescaled
    values of a part (a ROI's box), ``array`` the whole volume rescaled (made on first use).

    The slices' pixels are read when first used (``reader``): a ROI reads the slices it crosses, not the series;
    ``stored`` reads them all.  Thread-safe: a volume may be shared by requests."""

    data: np.ndarray  # the stored values; slices not yet read are filled by ``reader`` on first use
    affine: np.ndarray
    modality: str
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    instances: list[Instance]
    units: str | None = None  # "HU" for CT; None when the values have no stated unit (MR signal intensity)
    description: str = ""
    slice_spacing_from_thickness: bool = False
    header: Any = field(default=None, repr=False)  # the first slice's dataset (without pixels): patient and study
    slope: float = 1.0
    intercept: float = 0.0
    window: tuple[float, float] | None = None  # the series' own display window (centre, width), for viewers only
    voi_function: str = "LINEAR"  # how that window maps values to grey (LINEAR, LINEAR_EXACT, SIGMOID), for viewers
    inverted: bool = False  # MONOCHROME1: low values white (for viewers only)
    padding: tuple[float, float] | None = None  # stored values marking pixels outside the scanned field (inclusive)
    vendor_scales: frozenset[float] = frozenset()  # Philips MR private scale slopes of the slices (none: not Philips)
    echo: dict[str, float] = field(default_factory=dict)  # MR: echo_time_ms, imaging_mhz, field_t (those stated)
    rescales: frozenset[tuple[float, float]] = frozenset()  # every slice's (slope, intercept), as stored
    reader: Callable[[int], np.ndarray] | None = field(default=None, repr=False)  # slice k's stored values
    _loaded: np.ndarray | None = field(default=None, repr=False)
    _lock: Any = field(default_factory=threading.Lock, repr=False)
    _array: np.ndarray | None = field(default=None, repr=False)

    def _read(self, slices: Iterable[int]) -> None:
        """Read the slices not yet read (all of them once, whoever asks first)."""
        if self.reader is None:
            return
        wanted = np.fromiter(slices, dtype=int) if not isinstance(slices, np.ndarray) else slices
        if self._loaded is not None and bool(self._loaded[wanted].all()):
            return  # read already: no waiting behind another request's reading
        with self._lock:
            if self.reader is None:
                return
            if self._loaded is None:
                self._loaded = np.zeros(self.data.shape[0], dtype=bool)
            for k in wanted:
                k = int(k)
                if not self._loaded[k]:
                    self.data[k] = self.reader(k)
                    self._loaded[k] = True
            if self._loaded.all():
                self.reader = None  # every slice read: the source datasets are let go

    def _slices_of(self, box: Any) -> np.ndarray:
        first = box[0] if isinstance(box, tuple) and box else box
        if first is Ellipsis:
            return np.arange(self.data.shape[0])
        return np.atleast_1d(np.arange(self.data.shape[0])[first])

    @property
    def stored(self) -> np.ndarray:
        """Every slice's stored values (all read)."""
        self._read(range(self.data.shape[0]))
        return self.data

    def _rescaled(self, stored: np.ndarray) -> np.ndarray:
        """Rescaled values; pixels outside the scanned field (padding) are NaN, never a number."""
        part = stored.astype(np.float64)
        if self.slope != 1.0:
            part *= self.slope
        if self.intercept != 0.0:
            part += self.intercept
        if self.padding is not None:
            part[(stored >= self.padding[0]) & (stored <= self.padding[1])] = np.nan
        return part

    def values(self, box: Any = ...) -> np.ndarray:
        """The rescaled values (float64) of ``stored[box]`` (only the slices of the box are read)."""
        self._read(self._slices_of(box))
        return self._rescaled(self.data[box])

    def masked_values(self, mask: np.ndarray) -> np.ndarray:
        """The rescaled values (float64) of the voxels of a whole-volume mask (only the slices it covers are read)."""
        if mask.dtype != bool or mask.shape != self.data.shape:
            raise SeriesError("a mask must be true or false for every voxel of the series", "mask")
        self._read(np.nonzero(mask.reshape(mask.shape[0], -1).any(axis=1))[0])
        return self._rescaled(self.data[mask])

    def value_range(self) -> tuple[float, float]:
        """The lowest and the highest rescaled value of the series."""
        stored = self.stored
        if self.padding is not None:
            stored = stored[(stored < self.padding[0]) | (stored > self.padding[1])]
        stored = stored[~np.isnan(stored)] if stored.dtype.kind == "f" else stored
        if not stored.size:
            raise SeriesError("every pixel of the series is padding (outside the scanned field)", "series")
        ends = sorted(float(self._rescaled(v[None])[0]) for v in (stored.min(), stored.max()))
        return ends[0], ends[1]

    @property
    def array(self) -> np.ndarray:
        """The whole volume rescaled (float32), made on first use."""
        if self._array is None:
            stored = self.stored
            if self.slope == 1.0 and self.intercept == 0.0 and stored.dtype == np.float32:
                self._array = stored
            else:
                self._array = (stored.astype(np.float32) * np.float32(self.slope) + np.float32(self.intercept))
                if self.padding is not None:
                    self._array[(stored >= self.padding[0]) & (stored <= self.padding[1])] = np.nan
        return self._array

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j and k (mm)."""
        return tuple(float(np.linalg.norm(self.affine[:3, n])) for n in range(3))  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape  # type: ignore[return-value]

    def to_voxel(self, xyz: Sequence[float]) -> np.ndarray:
        """Patient coordinates (mm) to continuous voxel indices (i, j, k)."""
        return (np.linalg.inv(self.affine) @ np.array([*xyz, 1.0]))[:3]

    def to_patient(self, ijk: Sequence[float]) -> np.ndarray:
        return (self.affine @ np.array([*ijk, 1.0]))[:3]


def load_folder(folder: str | Path, fast: bool = True) -> Volume:
    """The volume of the one series in *folder* (subfolders are not read).  Files in the common form are read by
    :mod:`spinemets.dicom.header` (*fast*), every other file, and all with ``fast=False``, by pydicom."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from spinemets.dicom import header as quick

    path = Path(folder)
    if not path.exists():
        raise SeriesError(f"{folder}: no such folder")
    if not path.is_dir():
        raise SeriesError(f"{folder}: not a folder (give the folder of one series)")
    datasets = []
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        try:
            stamp = _stamp(f)
            light = quick.read(f) if fast else None
            if light is not None:
                light.spinemets_file = (str(f), stamp)
                datasets.append(light)
                continue
            d = pydicom.dcmread(f, defer_size=DEFER_BYTES)
            _check_deferred(d, f)
            d.spinemets_file = (str(f), stamp)  # what the file was when opened (a slice is read from it later)
            if "SOPClassUID" not in d:
                stored_class = str(getattr(getattr(d, "file_meta", None), "MediaStorageSOPClassUID", ""))
                if stored_class == DICOMDIR:
                    continue  # the folder's index, not an image
                raise SeriesError(f"{f}: a damaged DICOM file (no SOP class): the series would be incomplete")
            datasets.append(d)
        except SeriesError:
            raise
        except InvalidDicomError:
            if _looks_like_dicom(f):
                raise SeriesError(f"{f}: a damaged DICOM file (its header does not parse): the series would be "
                                  "incomplete") from None
            continue  # not a DICOM file (no DICM preamble: a README): not part of the series
        except PermissionError:
            raise SeriesError(f"{f}: cannot be read (permission denied)") from None
        except Exception as exc:  # a DICOM file that does not parse: never dropped silently
            raise SeriesError(f"{f}: a damaged DICOM file ({type(exc).__name__}): the series would be incomplete"
                              ) from None
    datasets = [d for d in datasets if d.SOPClassUID != DICOMDIR]
    if not datasets:
        raise SeriesError(f"{folder}: no DICOM image files")
    return from_datasets(datasets, where=str(folder), release=True)


DEFLATED = "1.2.840.10008.1.2.1.99"  # deflated explicit VR little endian
DEFER_BYTES = 64 * 1024  # values larger than this (the pixel data) are read when a ROI needs their slice


def _check_deferred(d: Any, f: Path) -> None:
    """The pixel data must be as long as its header says, whether read or deferred (a file cut short is said when
    the series is opened, not when a ROI reaches its slice)."""
    try:
        element = d.get_item("PixelData", keep_deferred=True)
    except KeyError:
        return
    if element is None or not getattr(element, "is_raw", False) or element.length == 0xFFFFFFFF:
        return  # already converted, or encapsulated (compressed) frames of undefined length: the decoder checks
    if str(getattr(getattr(d, "file_meta", None), "TransferSyntaxUID", "")) == DEFLATED:
        return  # offsets count in the inflated stream, not in the file
    held = len(element.value) if element.value is not None else f.stat().st_size - int(element.value_tell)
    if held < int(element.length):
        raise SeriesError(f"{f}: a damaged DICOM file (its pixel data is cut short): the series would be incomplete")


def _looks_like_dicom(f: Path) -> bool:
    try:
        with open(f, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


IN_WORDS = {"ImageOrientationPatient": "image orientation", "ImagePositionPatient": "image position",
            "PixelSpacing": "pixel spacing", "RescaleSlope": "rescale slope", "RescaleIntercept": "rescale intercept",
            "SliceThickness": "slice thickness", "FrameOfReferenceUID": "frame of reference"}


def _named(keyword: str) -> str:
    """A DICOM attribute in words, its keyword after it (for whoever looks it up in the images' header)."""
    return f"{IN_WORDS[keyword]} ({keyword})" if keyword in IN_WORDS else keyword


def _raw_numbers(ds: Any, keyword: str) -> list[float] | None:
    """The numbers of a decimal string (DS) element still in its file form, parsed straight from its bytes (pydicom's
    conversion is most of the time a large series takes to open); None when it is not raw or not plain numbers."""
    try:
        element = ds.get_item(keyword)
    except (KeyError, TypeError, ValueError):
        return None
    value = getattr(element, "value", None)
    if not getattr(element, "is_raw", False) or not isinstance(value, bytes):
        return None
    try:
        return [float(v) for v in value.split(b"\\")]
    except ValueError:
        return None


def _floats(ds: Any, keyword: str, n: int, where: str) -> list[float]:
    raw = _raw_numbers(ds, keyword)
    if raw is not None and len(raw) == n and all(math.isfinite(v) for v in raw):
        return raw
    try:
        value = ds.get(keyword)
    except (TypeError, ValueError):
        raise SeriesError(f"{where}: {_named(keyword)} of {ds.get('SOPInstanceUID', 'an image')} is not numbers") from None
    if value is None:
        raise SeriesError(f"{where}: {ds.get('SOPInstanceUID', 'an image')} has no {_named(keyword)}: the image cannot be "
                          "placed in patient coordinates")
    try:
        values = [float(v) for v in (value if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not
                                      isinstance(value, str) else [value])]
    except (TypeError, ValueError):
        raise SeriesError(f"{where}: {_named(keyword)} of {ds.get('SOPInstanceUID', 'an image')} is not numbers") from None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise SeriesError(f"{where}: the {_named(keyword)} must have {n} numbers")
    return values


def _number(ds: Any, keyword: str, default: float, where: str) -> float:
    """A single number of the dataset (its default when absent); a value that is not a number is an error."""
    raw = _raw_numbers(ds, keyword)
    if raw is not None and len(raw) == 1 and math.isfinite(raw[0]):
        return raw[0]
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return default
        number = float(value)
    except (TypeError, ValueError):
        raise SeriesError(f"{where}: {_named(keyword)} of {ds.get('SOPInstanceUID', 'an image')} is not a number") from None
    if not math.isfinite(number):
        raise SeriesError(f"{where}: {_named(keyword)} of {ds.get('SOPInstanceUID', 'an image')} is not a finite number")
    return number


def _one(values: Iterable[str], what: str, where: str, hint: str) -> str:
    distinct = sorted(set(values))
    if len(distinct) != 1:
        plural = {"series": "series", "frame of reference": "frames of reference"}.get(what, what + "s")
        raise SeriesError(f"{where}: the images belong to {len(distinct)} {plural} ({', '.join(distinct[:4])}"
                          f"{' ...' if len(distinct) > 4 else ''}): {hint}")
    return distinct[0]


def from_datasets(datasets: Sequence[Any], where: str = "series", release: bool = False) -> Volume:
    """The volume of one series from its datasets (see the module docstring).  With *release* (datasets read here,
    not the caller's), each slice's pixel data is dropped from its dataset once copied into the volume."""
    if not datasets:
        raise SeriesError(f"{where}: no images")
    series_uid = _one((str(d.get("SeriesInstanceUID", "")) for d in datasets), "series", where,
                      "give the images of one series")
    frame = _one((str(d.get("FrameOfReferenceUID", "")) for d in datasets), "frame of reference", where,
                 "the images of one volume share one")
    if not frame:
        raise SeriesError(f"{where}: the images have no frame of reference (FrameOfReferenceUID)")
    orient = np.array(_floats(datasets[0], "ImageOrientationPatient", 6, where))
    row_dir, col_dir = orient[:3], orient[3:]
    if abs(np.linalg.norm(row_dir) - 1) > 1e-3 or abs(np.linalg.norm(col_dir) - 1) > 1e-3 or \
            abs(float(row_dir @ col_dir)) > 1e-3:
        raise SeriesError(f"{where}: the image orientation (ImageOrientationPatient) is not two perpendicular unit vectors")
    normal = np.cross(row_dir, col_dir)
    spacing = _floats(datasets[0], "PixelSpacing", 2, where)  # [between rows, between columns]
    if min(spacing) <= 0:
        raise SeriesError(f"{where}: the pixel spacing (PixelSpacing) must be positive")
    for d in datasets:
        if "Rows" not in d or "Columns" not in d or not _pixel_bytes(d):
            raise SeriesError(f"{where}: {d.get('SOPInstanceUID', 'an image')} has no image (Rows, Columns or pixel "
                              "data missing)")
        if int(d.get("NumberOfFrames", 1) or 1) > 1:
            raise SeriesError(f"{where}: multi-frame images (enhanced CT or MR) are not read yet: export the series "
                              "as single-frame images")
    pixel_formats = {(d.get("BitsAllocated"), d.get("BitsStored"), d.get("PixelRepresentation")) for d in datasets}
    if len(pixel_formats) > 1:
        raise SeriesError(f"{where}: the images store their pixels differently (bits or sign): give the images of "
                          "one volume")
    rows, cols = int(datasets[0].Rows), int(datasets[0].Columns)
    placed = []
    for d in datasets:
        o = np.array(_floats(d, "ImageOrientationPatient", 6, where))
        if np.max(np.abs(o - orient)) > 1e-4:
            raise SeriesError(f"{where}: the images have different orientations (a localiser or a reformat mixed in): "
                              "give the images of one volume")
        if [float(x) for x in _floats(d, "PixelSpacing", 2, where)] != spacing or int(d.Rows) != rows or \
                int(d.Columns) != cols:
            raise SeriesError(f"{where}: the images have different sizes or pixel spacings")
        position = np.array(_floats(d, "ImagePositionPatient", 3, where))
        placed.append((float(position @ normal), position, d))
    placed.sort(key=lambda p: p[0])
    distances = [b[0] - a[0] for a, b in zip(placed, placed[1:])]
    if any(abs(x) < 1e-3 for x in distances):
        raise SeriesError(f"{where}: two images lie at the same position: give the images of one volume")
    first = placed[0][1]
    for _, position, d in placed[1:]:  # every slice on the normal through the first: no tilt, no shear
        offset = position - first
        sideways = offset - (offset @ normal) * normal
        if np.linalg.norm(sideways) > 0.1 * min(spacing):
            raise SeriesError(f"{where}: the slices are not stacked along the normal of the image plane "
                              f"({np.linalg.norm(sideways):.1f} mm sideways: a tilted gantry or a sheared stack), "
                              "which is not read")
    from_thickness = False
    if distances:
        step = float(np.median(distances))
        if max(abs(x - step) for x in distances) > SLICE_TOLERANCE * step:
            raise SeriesError(f"{where}: the slices are unevenly spaced (from {min(distances):.2f} to "
                              f"{max(distances):.2f} mm): a slice is missing, or the gantry was tilted")
    else:
        thickness = placed[0][2].get("SpacingBetweenSlices") or placed[0][2].get("SliceThickness")
        step = float(thickness) if thickness else 0.0
        if step <= 0:
            raise SeriesError(f"{where}: one image without a slice thickness (SliceThickness): its extent along the normal is not known")
        from_thickness = True
    affine = np.eye(4)
    affine[:3, 0] = row_dir * spacing[1]  # i: along a row, columns apart
    affine[:3, 1] = col_dir * spacing[0]  # j: down a column, rows apart
    affine[:3, 2] = normal * step
    affine[:3, 3] = first
    rescales = {(_number(d, "RescaleSlope", 1.0, where), _number(d, "RescaleIntercept", 0.0, where))
                for _, _, d in placed}
    if str(datasets[0].get("Modality", "")) == "CT":
        unscaled = [d for _, _, d in placed if d.get("RescaleSlope") in (None, "") or d.get("RescaleIntercept")
                    in (None, "")]
        if unscaled:
            raise SeriesError(f"{where}: {unscaled[0].get('SOPInstanceUID', 'a CT image')} has no rescale slope or "
                              "intercept: its Hounsfield units are not known (a CT image must state them)")
    if any(slope == 0 for slope, _ in rescales):
        raise SeriesError(f"{where}: a rescale slope (RescaleSlope) of 0 would make every value the intercept")
    if any("ModalityLUTSequence" in d for _, _, d in placed):
        raise SeriesError(f"{where}: the images map their values through a Modality LUT, which is not applied yet: "
                          "the values would be wrong")
    paddings = {_padding(d, where) for _, _, d in placed}
    if len(paddings) > 1:
        raise SeriesError(f"{where}: the images mark the pixels outside the scanned field differently (pixel "
                          "padding): give the images of one volume")
    padding = next(iter(paddings))
    one_rescale = len(rescales) == 1
    sources = [d for _, _, d in placed]

    def pixels_of(k: int) -> np.ndarray:
        d = sources[k]
        _unchanged(d, where)
        try:
            pixels = _raw_pixels(d, rows, cols)
            if pixels is None:
                pixels = d.pixel_array
        except Exception as exc:  # pydicom names the transfer syntax and the decoders it would need
            ts = getattr(getattr(d, "file_meta", None), "TransferSyntaxUID", None)
            name = getattr(ts, "name", str(ts))
            hint = (" (the JPEG decoders on PyPI are pylibjpeg with pylibjpeg-libjpeg and pylibjpeg-openjpeg, or gdcm)"
                    if getattr(ts, "is_compressed", False) else "")
            raise SeriesError(f"{where}: the pixel data of {d.get('SOPInstanceUID', 'an image')} cannot be decoded "
                              f"({name}): {_first_line(str(exc))}{hint}") from None
        if pixels.ndim != 2 or pixels.shape != (rows, cols):
            raise SeriesError(f"{where}: colour, multi-sample or mis-sized images are not measured")
        if release and "PixelData" in d and not getattr(d, "reads_pixels_from_file", False):
            pixels = pixels.copy()
            del d.PixelData  # copied into the volume: not kept twice
            if getattr(d, "_pixel_array", None) is not None:
                d._pixel_array = None  # pydicom's decoded copy too
        if one_rescale:
            return pixels
        out = np.multiply(pixels, np.float32(_number(d, "RescaleSlope", 1.0, where)), dtype=np.float32)
        out += np.float32(_number(d, "RescaleIntercept", 0.0, where))
        if padding is not None:  # rescaled here: the padding becomes NaN, as a ROI reads it
            out[(pixels >= padding[0]) & (pixels <= padding[1])] = np.nan
        return out

    first_pixels = pixels_of(0)  # read now: a transfer syntax without a decoder is said when the series is opened
    stored = np.empty((len(placed), rows, cols), dtype=first_pixels.dtype)  # pages are taken as slices are read
    stored[0] = first_pixels
    loaded = np.zeros(len(placed), dtype=bool)
    loaded[0] = True
    slope, intercept = next(iter(rescales)) if len(rescales) == 1 else (1.0, 0.0)
    modality = str(datasets[0].get("Modality", ""))
    units = "HU" if modality == "CT" else (str(datasets[0].get("RescaleType")) if datasets[0].get("RescaleType")
                                           and datasets[0].get("RescaleType") != "US" else None)
    first_slice = placed[0][2]
    header = _header(first_slice.full() if getattr(first_slice, "reads_pixels_from_file", False) else first_slice)
    middle = placed[len(placed) // 2][2]
    return Volume(
        data=stored, reader=pixels_of if len(placed) > 1 else None, _loaded=loaded, slope=slope, intercept=intercept,
        affine=affine, modality=modality, series_uid=series_uid,
        study_uid=str(datasets[0].get("StudyInstanceUID", "")), frame_of_reference_uid=frame,
        instances=[Instance(str(d.SOPClassUID), str(d.SOPInstanceUID), _instance_number(d)) for _, _, d in placed],
        units=units, description=str(header.get("SeriesDescription", "") or ""),
        slice_spacing_from_thickness=from_thickness, header=header, window=_window(middle),
        voi_function=str(middle.get("VOILUTFunction", "") or "LINEAR").upper(),
        padding=padding if one_rescale else None,
        vendor_scales=frozenset(v for v in (_philips_scale(d) for _, _, d in placed) if v is not None),
        echo=_echo(sources), rescales=frozenset(rescales),
        inverted=str(middle.get("PhotometricInterpretation", "")) == "MONOCHROME1")


PHILIPS_MR = (0x2005, "Philips MR Imaging DD 001", 0x0E)  # the private "scale slope" of Philips MR images


def _philips_scale(d: Any) -> float | None:
    """The private scale slope Philips MR images carry besides the DICOM rescale (it differs between series, so that
    their stored values are not comparable without it), or None."""
    group, creator, element = PHILIPS_MR
    try:
        value = d.private_block(group, creator)[element].value
        return float(value[0] if isinstance(value, (list, tuple)) else value)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


ECHO_KEYWORDS = {"echo_time_ms": "EchoTime", "imaging_mhz": "ImagingFrequency", "field_t": "MagneticFieldStrength"}


def _echo(sources: Sequence[Any]) -> dict[str, float]:
    """The echo time, imaging frequency and field strength the series states, each only when every slice states the
    same value (a series that mixes echoes gives none)."""
    out = {}
    for name, keyword in ECHO_KEYWORDS.items():
        values = set()
        for d in sources:
            try:
                value = d.get(keyword)
                values.add(float(value) if value not in (None, "") else None)
            except (TypeError, ValueError):
                values.add(None)
        if len(values) == 1 and None not in values:
            value = values.pop()
            if value is not None and math.isfinite(value) and value > 0:
                out[name] = value
    return out


def _padding(d: Any, where: str) -> tuple[float, float] | None:
    """The stored values that mark pixels outside the scanned field (PixelPaddingValue, up to PixelPaddingRangeLimit
    when given), or None."""
    try:
        value, limit = d.get("PixelPaddingValue"), d.get("PixelPaddingRangeLimit")
        if value is None:
            return None
        bits = int(d.get("BitsStored") or d.get("BitsAllocated") or 16)
        signed = int(d.get("PixelRepresentation") or 0) == 1
        low = _as_stored(int(value), bits, signed)
        high = _as_stored(int(limit), bits, signed) if limit is not None else low
    except (TypeError, ValueError):
        raise SeriesError(f"{where}: the pixel padding value of {d.get('SOPInstanceUID', 'an image')} is not a "
                          "number") from None
    return (float(min(low, high)), float(max(low, high)))


def _as_stored(value: int, bits: int, signed: bool) -> int:
    """A padding value in the pixels' own bit pattern: written unsigned for signed pixels (65536 - 2000 for -2000),
    as some scanners do, it is the same stored value."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if signed and value >= 1 << (bits - 1) else value


def _instance_number(d: Any) -> int | None:
    try:
        value = d.get("InstanceNumber")
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _window(d: Any) -> tuple[float, float] | None:
    """The display window a slice carries (the first when it lists several), or None: a viewer's starting point, never
    used for a measurement."""
    try:
        center, width = d.get("WindowCenter"), d.get("WindowWidth")
        if center is None or width is None:
            return None
        if not isinstance(center, (str, int, float)):  # several windows listed: the first
            center = center[0]
        if not isinstance(width, (str, int, float)):
            width = width[0]
        c, w = float(center), float(width)
    except (TypeError, ValueError, IndexError):
        return None
    return (c, w) if math.isfinite(c) and math.isfinite(w) and w > 0 else None


HEADER_KEYWORDS = ("SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
                   "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
                   "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality", "FrameOfReferenceUID",
                   "Manufacturer")


def _header(d: Any) -> Any:
    """The patient, study and series of a slice, in a new dataset (the caller's datasets are never changed)."""
    from pydicom.dataset import Dataset

    header = Dataset()
    for keyword in HEADER_KEYWORDS:
        if keyword in d:
            setattr(header, keyword, d.get(keyword))
    return header


NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")  # explicit and implicit VR little endian


def _raw_pixels(d: Any, rows: int, cols: int) -> np.ndarray | None:
    """The stored values of an uncompressed little-endian single-sample image read straight from its bytes (what
    pydicom's pixel handler does, without its generality); None when another path is needed."""
    ts = str(getattr(getattr(d, "file_meta", None), "TransferSyntaxUID", ""))
    if ts not in NATIVE_LITTLE_ENDIAN or int(d.get("SamplesPerPixel", 1)) != 1:
        return None
    bits, stored = int(d.get("BitsAllocated", 0)), int(d.get("BitsStored", 0))
    if bits not in (8, 16) or stored != bits:  # packed or masked bits: pydicom's handler
        return None
    dtype = {(8, 0): np.uint8, (8, 1): np.int8, (16, 0): "<u2", (16, 1): "<i2"}[(bits, int(d.PixelRepresentation))]
    data = d.PixelData
    if len(data) < rows * cols * bits // 8:
        return None
    return np.frombuffer(data, dtype=dtype, count=rows * cols).reshape(rows, cols)


def _stamp(f: str | Path) -> tuple[int, int, int]:
    st = os.stat(f)
    return st.st_size, st.st_ino, st.st_mtime_ns


def _unchanged(d: Any, where: str) -> None:
    """A slice read later from its file: the file must be the one opened, the same size, inode and modification time
    to the nanosecond (pydicom would only warn on a changed time)."""
    opened = getattr(d, "spinemets_file", None)
    if opened is None:
        return  # not read from a file by load_folder (a DICOMweb answer, or the caller's datasets)
    filename, stamp = opened
    try:
        changed = _stamp(filename) != stamp
    except OSError:
        raise SeriesError(f"{where}: {filename} can no longer be read (moved or deleted since the series was "
                          "opened): open the series again") from None
    if changed:
        raise SeriesError(f"{where}: {filename} has changed since the series was opened: open the series again")


def _pixel_bytes(d: Any) -> int:
    """How many bytes of pixel data an image holds, without reading them when their reading was deferred."""
    try:
        element = d.get_item("PixelData", keep_deferred=True)
    except KeyError:
        return 0
    if element is None:
        return 0
    value = element.value
    if value is None and getattr(element, "is_raw", False):
        return int(element.length or 0)  # deferred: read when a ROI needs the slice
    return len(value or b"")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())
