"""Regions of interest over a volume and their statistics (issue 14, "Measure"): pure functions over arrays and the
volume's geometry.

* A **sphere** in patient coordinates (centre in mm, radius in mm): the voxels whose centres lie within the radius.
  Only the box of voxels that can hold the sphere is visited, so the cost follows the ROI's size, not the volume's.
* A **circle** in the image plane of the slice nearest the centre (radius in mm): the same on one slice.
* A **voxel sphere** (centre as voxel indices, radius in mm) for callers that place the ROI on the image.

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
    area_mm2: float | None = Field(default=None, description="a circle's area (pixels x pixel area)")
    slice_index: int | None = Field(default=None, description="a circle's slice (0 = the first along the normal)")
    units: str | None = Field(default=None, description="HU for CT; none for MR signal intensity")
    shape: str = Field(description="sphere, circle, or mask (a SEG's segment)")
    center_mm: list[float]
    radius_mm: float


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


def _stats(volume: Volume, box: tuple[slice, slice, slice], mask: np.ndarray, shape: str,
           center_mm: Sequence[float], radius_mm: float) -> RoiStats:
    values = volume.values(box)[mask]
    sx, sy, sz = volume.spacing
    planar = shape == "circle"
    return RoiStats(mean=float(values.mean()), max=float(values.max()), min=float(values.min()),
                    sd=float(values.std()), n=int(values.size),
                    volume_mm3=None if planar else values.size * sx * sy * sz,
                    area_mm2=values.size * sx * sy if planar else None, slice_index=box[0].start if planar else None,
                    units=volume.units, shape=shape, center_mm=[float(c) for c in center_mm],
                    radius_mm=float(radius_mm))


def same_frame(a: Volume, b: Volume, what: str) -> None:
    """Two series measured with one ROI must share the frame of reference."""
    if a.frame_of_reference_uid != b.frame_of_reference_uid:
        raise SeriesError(f"{what}: the two series have different frames of reference (they were not acquired in one "
                          "position): one ROI cannot be placed on both")
