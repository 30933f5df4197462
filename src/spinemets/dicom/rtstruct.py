"""ROI masks from a DICOM RT Structure Set (issue 14): a structure's closed planar contours, as drawn in a planning
or contouring system, rasterised onto the series they were drawn on.

* The structure set must share the series' frame of reference; the structure is chosen by its name or number (a set
  with one structure needs neither; with several, the names are listed).
* Each contour must be closed and planar and lie on one image of the series; its pixels are those whose centres lie
  inside it (even-odd rule).  On one image, CLOSED_PLANAR contours that are apart add up and one inside another cuts
  a hole (an island inside the hole adds again); two that partly overlap are refused (ambiguous: their overlap would
  be counted once or lost).  CLOSEDPLANAR_XOR contours combine by exclusive or, as DICOM defines.  A contour around
  no pixel centre (a tiny end cap) adds nothing.  Points, open contours, contours off the images and contours drawn
  on images of another series (their referenced images) are errors naming the contour.
* The statistics are those of any mask (:func:`spinemets.dicom.seg.mask_stats`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spinemets.dicom.roi import polygon_mask
from spinemets.dicom.series import SeriesError, Volume

RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
CLOSED = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")


def _structures(rs: Any, path: str | Path) -> list[tuple[int, str, str]]:
    """(number, name, frame of reference) of each structure of the set."""
    out = []
    for n, r in enumerate(rs.get("StructureSetROISequence", []), start=1):
        try:
            number = int(r.ROINumber)
        except (AttributeError, TypeError, ValueError):
            raise SeriesError(f"{path}: structure {n} of the set has no number (ROI Number)", "rtstruct") from None
        out.append((number, str(r.get("ROIName", "") or ""), str(r.get("ReferencedFrameOfReferenceUID", ""))))
    return out


def read_mask(volume: Volume, path: str | Path, structure: str | None = None) -> tuple[np.ndarray, str]:
    """The mask (k, j, i) of *structure* (its name or number) of the RT Structure Set at *path* on *volume*, and the
    structure's name."""
    import pydicom

    try:
        rs = pydicom.dcmread(path, force=True)  # structure sets written without the preamble exist
    except FileNotFoundError:
        raise SeriesError(f"{path}: no such file", "rtstruct") from None
    except Exception as exc:  # not DICOM, or damaged
        raise SeriesError(f"{path}: not a readable DICOM file ({type(exc).__name__})", "rtstruct") from None
    if str(rs.get("SOPClassUID", "")) != RTSTRUCT_CLASS:
        raise SeriesError(f"{path}: not an RT Structure Set", "rtstruct")
    structures = _structures(rs, path)
    if not structures:
        raise SeriesError(f"{path}: the structure set holds no structure", "rtstruct")
    names = ", ".join(f"{n} ({name or 'unnamed'})" for n, name, _ in structures)
    if structure is None:
        if len(structures) > 1:
            raise SeriesError(f"{path}: the structure set holds {len(structures)} structures ({names}): choose one "
                              "by its name or number", "structure")
        chosen = structures[0]
    else:
        matches = [s for s in structures if s[1] == structure or str(s[0]) == structure.strip()]
        if not matches:
            matches = [s for s in structures if s[1].casefold() == structure.strip().casefold()]
        if len(matches) != 1:
            raise SeriesError(f"{path}: {'no' if not matches else 'more than one'} structure named {structure!r} "
                              f"(the structures are {names})", "structure")
        chosen = matches[0]
    number, name, frame = chosen
    label = name or f"structure {number}"
    if frame != volume.frame_of_reference_uid:
        raise SeriesError(f"{path}: {label} was drawn in another frame of reference than the series", "rtstruct")
    contours = next((c for c in rs.get("ROIContourSequence", []) if int(c.get("ReferencedROINumber", -1)) == number),
                    None)
    if contours is None or not contours.get("ContourSequence"):
        raise SeriesError(f"{path}: {label} has no contours", "structure")
    images = {i.sop_instance_uid for i in volume.instances}
    per_slice: dict[int, list[tuple[str, np.ndarray, str]]] = {}
    for n, contour in enumerate(contours.ContourSequence, start=1):
        kind = str(contour.get("ContourGeometricType", ""))
        what = f"{label}, contour {n}"
        if kind not in CLOSED:
            raise SeriesError(f"{path}: {what} is {kind.replace('_', ' ').lower() or 'of no stated type'}, not a "
                              "closed planar contour: it encloses no region", "structure")
        drawn_on = {str(i.get("ReferencedSOPInstanceUID", "")) for i in contour.get("ContourImageSequence", [])}
        if drawn_on and not drawn_on & images:
            raise SeriesError(f"{path}: {what} was drawn on images of another series: give the series it was drawn on",
                              "structure")
        try:
            data = [float(v) for v in contour.ContourData]
        except (AttributeError, TypeError, ValueError):
            raise SeriesError(f"{path}: {what} has no readable points", "structure") from None
        if len(data) % 3:
            raise SeriesError(f"{path}: {what} has {len(data)} coordinates, not a multiple of three", "structure")
        try:
            box, inside, _ = polygon_mask(volume, np.reshape(data, (-1, 3)), what, max_points=None, empty_ok=True)
        except SeriesError as exc:
            raise SeriesError(f"{path}: {exc.message}", "structure") from None
        if inside.any():
            full = np.zeros(volume.shape[1:], dtype=bool)
            full[box[1], box[2]] = inside[0]
            per_slice.setdefault(box[0].start, []).append((kind, full, what))
    mask = np.zeros(volume.shape, dtype=bool)
    for k, drawn in per_slice.items():
        for (kind_a, a, what_a), (kind_b, b, what_b) in ((x, y) for i, x in enumerate(drawn) for y in drawn[i + 1:]):
            both = a & b
            nested = not both.any() or np.array_equal(both, a) or np.array_equal(both, b)
            if not nested and "CLOSED_PLANAR" in (kind_a, kind_b):
                raise SeriesError(f"{path}: {what_a} and {what_b} partly overlap on one image: whether their overlap "
                                  "counts once or is a hole is not defined; correct the structure", "structure")
        for _, full, _ in drawn:
            mask[k] ^= full  # apart: they add; nested: a hole (and an island in it again)
    if not mask.any():
        raise SeriesError(f"{path}: {label} encloses no voxel of the series", "structure")
    return mask, label
