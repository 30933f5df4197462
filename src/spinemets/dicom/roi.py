"""Regions of interest over a volume and their statistics (issue 14, "Measure"): pure functions over arrays and the
volume's geometry.

* A **sphere** in patient coordinates (centre in mm, radius in mm): the voxels whose centres lie within the radius.
  Only the box of voxels that can hold the sphere is visited, so the cost follows the ROI's size, not the volume's.
* A **circle** in the image plane of the slice nearest the centre (radius in mm): the same on one slice.
* A **voxel sphere** (centre as voxel indices, radius in mm) for callers that place the ROI on the image.
* A **polygon** (its corners in patient coordinates, mm) drawn on one image: the pixels whose centres lie inside it
  (even-odd rule, so a contour around a hole leaves the hole out); an RTSTRUCT contour is one.

A ROI whose centre lies outside the volume, that reaches past its edge, that holds no voxel centre or whose radius is
over 50 mm is an error naming it.  The statistics: mean, maximum, minimum, standard deviation (population), voxel
count, and the volume of a sphere or the area (and slice) of a circle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from spinemets.dicom.series import SeriesError, Volume


class RoiStats(BaseModel):
    mean: float
    max: float
    min: float
    sd: float = Field(description="population standard deviation")
    n: int = Field(description="voxels in the ROI")
    volume_mm3: float | None = Field(default=None, description="a sphere's volume (voxels x voxel volume)")
    area_mm2: float | None = Field(default=None, description="a circle's or polygon's area (pixels x pixel area)")
    slice_index: int | None = Field(default=None, description="a circle's or polygon's slice (0 = the first along "
                                                              "the normal)")
    image_number: int | None = Field(default=None, description="that slice's image (instance) number, as a PACS "
                                                               "shows it")
    units: str | None = Field(default=None, description="HU for CT; none for MR signal intensity")
    shape: str = Field(description="sphere, circle, polygon, or mask (a SEG's segment, an RTSTRUCT's structure)")
    center_mm: list[float] = Field(description="the centre; a polygon's or a mask's centroid")
    radius_mm: float | None = Field(default=None, description="a sphere's or circle's radius")
    points_mm: list[list[float]] | None = Field(default=None, description="a polygon's corners, as placed")


MAX_RADIUS_MM = 50.0  # input bound: larger than a vertebral body


def _check_radius(radius_mm: float) -> None:
    if not isinstance(radius_mm, (int, float)) or not math.isfinite(radius_mm) or radius_mm <= 0:
        raise SeriesError(f"the ROI radius must be a positive number of mm, not {radius_mm!r}", "radius_mm")
    if radius_mm > MAX_RADIUS_MM:
        raise SeriesError(f"the ROI radius must be at most {MAX_RADIUS_MM:g} mm (larger than a vertebral body)",
                          "radius_mm")


def _inside(volume: Volume, ijk: np.ndarray, what: str) -> None:
    k, j, i = volume.shape
    limits = np.array([i, j, k]) - 0.5
    if np.any(ijk < -0.5) or np.any(ijk > limits):
        lo = volume.to_patient([0, 0, 0])
        hi = volume.to_patient([i - 1, j - 1, k - 1])
        raise SeriesError(f"the ROI centre {what} lies outside the volume (which spans {_mm(lo)} to {_mm(hi)} mm)",
                          "center")


def _mm(xyz: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in xyz) + ")"


def sphere_mask(volume: Volume, center_mm: Sequence[float], radius_mm: float,
                in_plane: bool = False) -> tuple[tuple[slice, slice, slice], np.ndarray, list[float]]:
    """The box of the volume that holds the ROI (k, j, i slices), the boolean mask within it, and the ROI's centre
    as measured (for a circle, projected onto the slice it lies on).  The index axes are orthogonal, so distances are
    summed per axis by broadcasting: memory follows the box, not a coordinate array."""
    _check_radius(radius_mm)
    center = np.asarray(center_mm, dtype=float)
    if center.shape != (3,) or not np.all(np.isfinite(center)):
        raise SeriesError("the ROI centre must be three numbers x,y,z in mm", "center")
    ijk = volume.to_voxel(center)
    _inside(volume, ijk, _mm(center))
    spacing = np.array(volume.spacing)
    reach = radius_mm / spacing  # the sphere's extent along each index axis
    if in_plane:
        reach[2] = 0.0
        ijk[2] = round(float(ijk[2]))
    k, j, i = volume.shape
    size = np.array([i, j, k])
    over = np.maximum(0.0, np.maximum(-0.5 - (ijk - reach), (ijk + reach) - (size - 0.5))) * spacing
    if np.any(over[:2 if in_plane else 3] > 1e-6):
        raise SeriesError(f"the ROI reaches {float(over.max()):.1f} mm past the edge of the volume: move it inside "
                          "or make it smaller (a cut ROI would not be the region asked for)", "center")
    lo = np.maximum(np.ceil(ijk - reach), 0).astype(int)
    hi = np.minimum(np.floor(ijk + reach), size - 1).astype(int)
    d2 = 0.0
    for axis in range(2 if in_plane else 3):
        idx = np.arange(lo[axis], hi[axis] + 1, dtype=float)
        term = ((idx - ijk[axis]) * spacing[axis]) ** 2
        shape = [1, 1, 1]
        shape[2 - axis] = idx.size  # (k, j, i) order
        d2 = d2 + term.reshape(shape)
    if in_plane:
        d2 = np.broadcast_to(d2, (1, hi[1] - lo[1] + 1, hi[0] - lo[0] + 1))
    mask = np.asarray(d2 <= radius_mm ** 2)
    box = (slice(lo[2], hi[2] + 1), slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
    if not mask.any():
        raise SeriesError(f"the ROI (radius {radius_mm} mm) holds no voxel centre: make it larger than half a voxel "
                          f"({min(volume.spacing[:2]) / 2:.2f} mm)", "radius_mm")
    measured = volume.to_patient(ijk).tolist() if in_plane else [float(c) for c in center]
    return box, mask, measured


def sphere(volume: Volume, center_mm: Sequence[float], radius_mm: float) -> RoiStats:
    """Statistics of a sphere in patient coordinates."""
    box, mask, measured = sphere_mask(volume, center_mm, radius_mm)
    return _stats(volume, box, mask, "sphere", measured, radius_mm)


def circle(volume: Volume, center_mm: Sequence[float], radius_mm: float) -> RoiStats:
    """Statistics of a circle in the image plane of the slice nearest the centre (the centre projected onto it)."""
    box, mask, measured = sphere_mask(volume, center_mm, radius_mm, in_plane=True)
    return _stats(volume, box, mask, "circle", measured, radius_mm)


def voxel_sphere(volume: Volume, center_ijk: Sequence[float], radius_mm: float) -> RoiStats:
    """A sphere whose centre is given as voxel indices (i = column, j = row, k = slice)."""
    if len(center_ijk) != 3:
        raise SeriesError("the voxel centre must be three indices i,j,k", "center")
    return sphere(volume, volume.to_patient(center_ijk).tolist(), radius_mm)


def inside_field(values: np.ndarray) -> np.ndarray:
    """The ROI's values, refused when any voxel lies outside the scanned field (padding, read as NaN): a ROI that
    counts them, or leaves them out, is not the region asked for."""
    outside = int(np.isnan(values).sum())
    if outside:
        raise SeriesError(f"the ROI includes {outside} voxel{'s' if outside > 1 else ''} outside the scanned field "
                          "of view (marked as padding in the images): move it inside the image", "center")
    return values


def _stats(volume: Volume, box: tuple[slice, slice, slice], mask: np.ndarray, shape: str,
           center_mm: Sequence[float], radius_mm: float) -> RoiStats:
    values = inside_field(volume.values(box)[mask])
    sx, sy, sz = volume.spacing
    planar = shape == "circle"
    return RoiStats(mean=float(values.mean()), max=float(values.max()), min=float(values.min()),
                    sd=float(values.std()), n=int(values.size),
                    volume_mm3=None if planar else values.size * sx * sy * sz,
                    area_mm2=values.size * sx * sy if planar else None, slice_index=box[0].start if planar else None,
                    image_number=volume.instances[box[0].start].instance_number if planar else None,
                    units=volume.units, shape=shape, center_mm=[float(c) for c in center_mm],
                    radius_mm=float(radius_mm))


MAX_POLYGON_POINTS = 1000  # input bound: a contour traced point by point around a vertebra has hundreds


SNAP = 2.0 ** -20  # of a pixel: corners meant to lie on pixel centres do, whatever the rounding of the geometry


def polygon_mask(volume: Volume, points_mm: Sequence[Sequence[float]], what: str = "the polygon",
                 max_points: int | None = MAX_POLYGON_POINTS,
                 empty_ok: bool = False) -> tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray]:
    """The box (one slice), the mask of the pixels whose centres lie inside the polygon (even-odd rule; a centre
    exactly on an edge counts on its left and upper edges, not on its right and lower ones), and the corners as
    continuous voxel indices (i, j) of that slice.  The corners must lie on one image of the series and inside it.
    With *empty_ok*, a polygon around no pixel centre gives an empty mask instead of an error."""
    try:
        pts = np.asarray(points_mm, dtype=float)
    except (TypeError, ValueError):
        raise SeriesError(f"{what}: each corner must be three numbers x,y,z in mm", "points") from None
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.all(np.isfinite(pts)):
        raise SeriesError(f"{what}: each corner must be three numbers x,y,z in mm", "points")
    if len(pts) > 1 and np.allclose(pts[0], pts[-1]):
        pts = pts[:-1]  # a closed ring repeats its first corner
    if len(pts) < 3 or (max_points is not None and len(pts) > max_points):
        limit = f"3 to {max_points}" if max_points is not None else "at least 3"
        raise SeriesError(f"{what}: a polygon needs {limit} corners, not {len(pts)}", "points")
    inverse = np.linalg.inv(volume.affine)
    ijk = (inverse[:3, :3] @ pts.T).T + inverse[:3, 3]
    k = ijk[:, 2]
    slice_k = int(round(float(k.mean())))
    spread_mm = float(np.max(np.abs(k - slice_k))) * volume.spacing[2]
    if spread_mm > 0.25 * volume.spacing[2] + 1e-6:
        raise SeriesError(f"{what}: its corners do not lie on one image of the series (up to {spread_mm:.1f} mm off "
                          "the image plane): draw it on one image", "points")
    depth, rows, cols = volume.shape
    if not 0 <= slice_k < depth:
        raise SeriesError(f"{what}: it lies on no image of the series", "points")
    ij = np.round(ijk[:, :2] / SNAP) * SNAP
    if np.any(ij < -0.5) or np.any(ij[:, 0] > cols - 0.5) or np.any(ij[:, 1] > rows - 0.5):
        raise SeriesError(f"{what}: it reaches past the edge of the image", "points")
    lo = np.maximum(np.ceil(ij.min(axis=0)), 0).astype(int)
    hi = np.minimum(np.floor(ij.max(axis=0)), [cols - 1, rows - 1]).astype(int)
    xs = np.arange(lo[0], hi[0] + 1, dtype=float)[None, :]
    ys = np.arange(lo[1], hi[1] + 1, dtype=float)[:, None]
    inside = np.zeros((ys.size, xs.size), dtype=bool)
    for (x1, y1), (x2, y2) in zip(ij, np.roll(ij, -1, axis=0)):
        if y1 == y2:
            continue  # a horizontal edge crosses no row of centres the rule counts
        crosses = (y1 > ys) != (y2 > ys)
        x_at = x1 + (ys - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xs < x_at)
    if not inside.any() and not empty_ok:
        raise SeriesError(f"{what}: it holds no pixel centre", "points")
    box = (slice(slice_k, slice_k + 1), slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
    return box, inside[None], ij


def polygon(volume: Volume, points_mm: Sequence[Sequence[float]]) -> RoiStats:
    """Statistics of a polygon drawn on one image (corners in patient coordinates, mm)."""
    box, mask, ij = polygon_mask(volume, points_mm)
    values = inside_field(volume.values(box)[mask])
    sx, sy, _ = volume.spacing
    k = box[0].start
    jj, ii = np.nonzero(mask[0])
    centroid = volume.to_patient([float(ii.mean()) + box[2].start, float(jj.mean()) + box[1].start, k])
    corners = [volume.to_patient([x, y, k]).tolist() for x, y in ij]  # as placed, on the image plane
    return RoiStats(mean=float(values.mean()), max=float(values.max()), min=float(values.min()),
                    sd=float(values.std()), n=int(values.size), area_mm2=values.size * sx * sy, slice_index=k,
                    image_number=volume.instances[k].instance_number,
                    units=volume.units, shape="polygon", center_mm=[float(c) for c in centroid],
                    points_mm=[[float(c) for c in p] for p in corners])


def same_frame(a: Volume, b: Volume, what: str) -> None:
    """Two series measured with one ROI must share the frame of reference."""
    if a.frame_of_reference_uid != b.frame_of_reference_uid:
        raise SeriesError(f"{what}: the two series have different frames of reference (they were not acquired in one "
                          "position): one ROI cannot be placed on both")
