#!/usr/bin/env python
"""Hold-out set 1 for spinemets' DICOM measurements: phantoms and expectations.

    python make.py OUTDIR

writes one folder of single-frame DICOM files per series into OUTDIR, and the
cases (command line, expected exit code and values, tolerances, rationale) to
cases.json next to this script and to OUTDIR/cases.json.

Written without reading spinemets' implementation or tests: the geometry below
is the DICOM Image Plane module (PS3.3 C.7.6.2.1.1),

    P(i, j) = S + i * dc * X + j * dr * Y

with X the row direction cosine (ImageOrientationPatient[0:3]), Y the column
direction cosine (ImageOrientationPatient[3:6]), i the column index, j the row
index, dc = PixelSpacing[1] (column spacing: between columns), dr =
PixelSpacing[0] (row spacing: between rows), S = ImagePositionPatient of the
slice (centre of the first transmitted voxel).  Each slice is placed at its own
ImagePositionPatient as written in its file, and its stored values are mapped
by its own RescaleSlope and RescaleIntercept (PS3.3 C.11.1.1.2 / C.7.6.16.2.9).

A voxel belongs to a ROI when its centre does (closed sphere |P - C| <= r; a
circle is the closed disc of radius r around the projection of C on the plane
of the nearest slice; a polygon takes the pixel centres inside it by the
even-odd rule).  Every case except the one marked "ties" is checked here to
have no voxel centre within MARGIN_MM of the ROI boundary, so that float
round-off or the <= vs < choice cannot change the expectation.

Only numpy and pydicom are used; everything is seeded, UIDs are derived from a
SHA-256 of fixed strings under the 2.25 root (PS3.5 B.2), so two runs give
byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

HERE = Path(__file__).resolve().parent
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
MARGIN_MM = 1e-3  # no voxel centre closer than this to a ROI boundary
EDGE_VOXELS = 1.0  # a valid ROI keeps this many voxels from the outermost voxel centres

# Tolerances (absolute).  Stored values are integers and slopes are binary
# fractions (0.25, 0.5, 1.5, 2, 2.5), so the true values are exact in float64
# and a float64 mean is exact to ~1e-10.  The tolerances leave room for a
# float32 accumulation and for a tool that rounds its JSON to the 0.1 HU
# (signal, %) it displays: half a display step (0.05) plus float slack.
TOL = {
    "hu": 0.06,  # HU / MR signal means, max, min
    "count": 0,  # voxel counts are exact
    "percent": 0.06,  # drop %, fat fraction %: half of 0.1 % plus slack
    "ratio": 0.0006,  # signal intensity ratio: half of 0.001 plus slack
    "adc": 0.0006,  # ADC in 10^-3 mm2/s: below one unit of a 10^-6 map
}


# --------------------------------------------------------------------------- helpers


def uid(*parts: object) -> str:
    """A fixed UID under the 2.25 (UUID-derived) root: 2.25.<128-bit integer>."""
    digest = hashlib.sha256(("spinemets-holdout1/" + "/".join(map(str, parts))).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def ds_str(v: float, nd: int = 6) -> str:
    """A DS string of at most 16 characters."""
    s = f"{v:.{nd}f}".rstrip("0").rstrip(".")
    if s in ("-0", "", "-"):
        s = "0"
    assert len(s) <= 16, s
    return s


def rot_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def rot_x(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])


class Series:
    """A series on a regular grid, with its header strings and exact values.

    Slice k sits at origin + k * step * N (N = X x Y); step may be negative.
    """

    def __init__(self, name, modality, X, Y, origin, dr, dc, rows, cols, nz, step,
                 thickness=None, slopes="1", intercepts="0", signed=False, seed=0,
                 frame_uid=None, series_uid=None, study="study-1", description=None):
        self.name, self.modality = name, modality
        self.iop = [ds_str(v, 10) for v in list(X) + list(Y)]
        self.X = np.array([float(s) for s in self.iop[:3]])
        self.Y = np.array([float(s) for s in self.iop[3:]])
        self.N = np.cross(self.X, self.Y)
        self.ps = [ds_str(dr), ds_str(dc)]  # PixelSpacing = [row spacing, column spacing]
        self.dr, self.dc = float(self.ps[0]), float(self.ps[1])
        self.rows, self.cols, self.nz = rows, cols, nz
        self.step = step
        self.thickness = ds_str(thickness if thickness is not None else abs(step))
        origin = np.asarray(origin, float)
        self.ipp = [[ds_str(v) for v in origin + k * step * self.N] for k in range(nz)]
        self.pos = np.array([[float(s) for s in p] for p in self.ipp])
        sl = slopes if isinstance(slopes, (list, tuple)) else [slopes] * nz
        ic = intercepts if isinstance(intercepts, (list, tuple)) else [intercepts] * nz
        self.slope_str = [str(sl[k % len(sl)]) for k in range(nz)]
        self.icpt_str = [str(ic[k % len(ic)]) for k in range(nz)]
        self.slope = np.array([float(s) for s in self.slope_str])
        self.icpt = np.array([float(s) for s in self.icpt_str])
        self.signed = signed
        self.rng = np.random.default_rng(seed)
        self.frame_uid = frame_uid or uid(name, "frame")
        self.series_uid = series_uid or uid(name, "series")
        self.study = study
        self.description = description or f"holdout1 {name}"
        # voxel centres P[k, j, i] (mm, LPS) from each slice's own position
        i = np.arange(cols)[None, None, :, None]
        j = np.arange(rows)[None, :, None, None]
        self.P = (self.pos[:, None, None, :] + i * self.dc * self.X + j * self.dr * self.Y)
        self.stored = None

    # values -------------------------------------------------------------
    def set_values(self, phys: np.ndarray) -> None:
        """Quantise wanted physical values to stored integers; keep the exact result."""
        assert phys.shape == (self.nz, self.rows, self.cols)
        st = np.rint((phys - self.icpt[:, None, None]) / self.slope[:, None, None])
        lo, hi = (-32768, 32767) if self.signed else (0, 65535)
        assert st.min() >= lo and st.max() <= hi, (self.name, st.min(), st.max())
        self.stored = st.astype(np.int16 if self.signed else np.uint16)
        self.values = self.stored.astype(np.float64) * self.slope[:, None, None] + self.icpt[:, None, None]

    def noise(self, lo: int, hi: int) -> np.ndarray:
        return self.rng.integers(lo, hi + 1, size=(self.nz, self.rows, self.cols)).astype(float)

    def in_sphere(self, c, r) -> np.ndarray:
        return np.linalg.norm(self.P - np.asarray(c, float), axis=-1) <= r

    # index coordinates of a patient point --------------------------------
    def index_of(self, p) -> np.ndarray:
        d = np.asarray(p, float) - self.pos[0]
        stepv = self.pos[1] - self.pos[0]
        return np.array([d @ self.X / self.dc, d @ self.Y / self.dr, d @ stepv / (stepv @ stepv)])

    def spacing(self) -> float:
        return float(np.linalg.norm(self.pos[1] - self.pos[0]))

    # writing -------------------------------------------------------------
    def datasets(self, order_seed=None):
        """One pydicom Dataset per slice; file names and instance numbers."""
        nz = self.nz
        if order_seed is None:
            names = [f"IM{k + 1:04d}.dcm" for k in range(nz)]
            inst = list(range(1, nz + 1))
        else:
            r = np.random.default_rng(order_seed)
            names = [f"{h}.dcm" for h in (uid(self.name, "file", x)[-12:] for x in r.permutation(nz))]
            inst = [int(x) + 1 for x in r.permutation(nz)]
        out = []
        for k in range(nz):
            out.append((names[k], self.dataset(k, inst[k])))
        return out

    def dataset(self, k, instance_number):
        ds = Dataset()
        sop_class = CT_STORAGE if self.modality == "CT" else MR_STORAGE
        sop_uid = uid(self.name, "sop", k, self.series_uid)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = uid("implementation")
        meta.ImplementationVersionName = "HOLDOUT1"
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if self.modality == "CT" else "OTHER"]
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = "20240102"
        ds.StudyTime = "101500"
        ds.AccessionNumber = "HOLDOUT1"
        ds.Modality = self.modality
        ds.Manufacturer = "holdout1 phantom"
        ds.ReferringPhysicianName = ""
        ds.SeriesDescription = self.description
        ds.PatientName = "Phantom^Holdout1"
        ds.PatientID = "HOLDOUT1"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = uid(self.study, "study")
        ds.SeriesInstanceUID = self.series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = int(hashlib.sha256(self.series_uid.encode()).hexdigest()[:4], 16) % 900 + 1
        ds.InstanceNumber = instance_number
        ds.FrameOfReferenceUID = self.frame_uid
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = list(self.ipp[k])
        ds.ImageOrientationPatient = list(self.iop)
        ds.PixelSpacing = list(self.ps)
        ds.SliceThickness = self.thickness
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = self.rows
        ds.Columns = self.cols
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if self.signed else 0
        ds.RescaleIntercept = self.icpt_str[k]
        ds.RescaleSlope = self.slope_str[k]
        if self.modality == "CT":
            ds.RescaleType = "HU"
            ds.KVP = "120"
        else:
            ds.ScanningSequence = "GR"
            ds.SequenceVariant = "SP"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "2D"
            ds.RepetitionTime = "150"
            ds.EchoTime = "4.6"
            ds.EchoTrainLength = 1
            ds.MagneticFieldStrength = "1.5"
        ds.AcquisitionNumber = 1
        arr = self.stored[k].astype("<i2" if self.signed else "<u2")
        ds.PixelData = arr.tobytes()
        return ds

    def write(self, outdir: Path, folder=None, order_seed=None, mutate=None):
        """Write the series; mutate(k, ds) may alter or drop (return None) a slice."""
        d = Path(outdir) / (folder or self.name)
        d.mkdir(parents=True, exist_ok=True)
        for k, (fname, ds) in enumerate(self.datasets(order_seed)):
            if mutate is not None:
                ds = mutate(k, ds)
                if ds is None:
                    continue
            ds.save_as(d / fname, enforce_file_format=True)
            if mutate is None:
                self.verify(d / fname, k)
        return d

    def verify(self, path, k):
        """Read the file back: its header and rescaled pixels are what the expectations use."""
        back = pydicom.dcmread(path)
        assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert [float(x) for x in back.ImagePositionPatient] == list(self.pos[k])
        assert [float(x) for x in back.ImageOrientationPatient] == list(self.X) + list(self.Y)
        assert [float(x) for x in back.PixelSpacing] == [self.dr, self.dc]
        arr = back.pixel_array.astype(np.float64) * float(back.RescaleSlope) + float(back.RescaleIntercept)
        assert arr.shape == (self.rows, self.cols) and np.array_equal(arr, self.values[k])


# --------------------------------------------------------------------------- expectations


def stats(values: np.ndarray, mask: np.ndarray) -> dict:
    v = values[mask]
    assert v.size > 0
    return {"n": int(v.size), "mean": float(v.mean()), "max": float(v.max()), "min": float(v.min())}


def check_inside(s: Series, c, r, in_plane_only=False):
    """The ROI keeps EDGE_VOXELS voxels inside the outermost voxel centres."""
    u, v, w = s.index_of(c)
    ext = [(u, r / s.dc, s.cols), (v, r / s.dr, s.rows)]
    if not in_plane_only:
        ext.append((w, r / s.spacing(), s.nz))
    for centre, half, n in ext:
        assert centre - half >= EDGE_VOXELS and centre + half <= n - 1 - EDGE_VOXELS, (s.name, c, r)


def sphere_roi(s: Series, c, r, ties_ok=False):
    c = np.asarray(c, float)
    d = np.linalg.norm(s.P - c, axis=-1)
    if ties_ok:
        # exact lattice: compare squared distances in float64 (exact for these integers)
        d2 = ((s.P - c) ** 2).sum(-1)
        mask = d2 <= r * r
    else:
        assert np.abs(d - r).min() > MARGIN_MM, (s.name, "voxel centre on sphere surface", np.abs(d - r).min())
        mask = d <= r
    check_inside(s, c, r)
    out = stats(s.values, mask)
    out["volume_mm3"] = out["n"] * s.dr * s.dc * s.spacing()
    return out, mask


def nearest_slice(s: Series, c):
    dist = np.abs((np.asarray(c, float) - s.pos) @ s.N)
    order = np.argsort(dist)
    assert dist[order[1]] - dist[order[0]] > 0.1, (s.name, "nearest slice ambiguous")
    return int(order[0]), float(dist[order[0]])


def circle_roi(s: Series, c, r):
    c = np.asarray(c, float)
    k, off = nearest_slice(s, c)
    rel = s.P[k] - c
    h = rel @ s.N  # signed distance of the plane from c, along the normal
    d = np.sqrt(np.maximum((rel ** 2).sum(-1) - h ** 2, 0.0))  # in-plane distance to the projected centre
    assert np.abs(d - r).min() > MARGIN_MM, (s.name, "pixel centre on circle")
    check_inside(s, c, r, in_plane_only=True)
    mask = np.zeros(s.values.shape, bool)
    mask[k] = d <= r
    out = stats(s.values, mask)
    out["area_mm2"] = out["n"] * s.dr * s.dc
    out["slice_k"] = k
    out["centre_off_plane_mm"] = off
    return out, mask


def point_in_polygon(x, y, poly) -> np.ndarray:
    """Even-odd rule (crossing number) for arrays of points x, y."""
    inside = np.zeros(np.shape(x), bool)
    n = len(poly)
    for a in range(n):
        x1, y1 = poly[a]
        x2, y2 = poly[(a + 1) % n]
        cond = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= cond & (x < xc)
    return inside


def seg_dist(px, py, a, b) -> np.ndarray:
    ax, ay = a
    bx, by = b
    vx, vy = bx - ax, by - ay
    t = np.clip(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy), 0, 1)
    return np.hypot(px - ax - t * vx, py - ay - t * vy)


def polygon_roi(s: Series, k: int, corners_uv):
    """Corners given in (column, row) index units on slice k -> patient strings + stats."""
    pts = []
    for u, v in corners_uv:
        p = s.pos[k] + u * s.dc * s.X + v * s.dr * s.Y
        pts.append([ds_str(x) for x in p])
    arg = ";".join(",".join(p) for p in pts)
    P = np.array([[float(x) for x in p] for p in pts])
    rel = P - s.pos[k]
    assert np.abs(rel @ s.N).max() < 1e-4
    # corners in mm in the image plane (x along X, y along Y)
    poly = [(float(q @ s.X), float(q @ s.Y)) for q in rel]
    i = np.arange(s.cols)[None, :] * s.dc
    j = np.arange(s.rows)[:, None] * s.dr
    ii, jj = np.broadcast_arrays(i, j)
    dmin = np.min([seg_dist(ii, jj, poly[a], poly[(a + 1) % len(poly)]) for a in range(len(poly))], axis=0)
    assert dmin.min() > MARGIN_MM, (s.name, "pixel centre on polygon edge", dmin.min(), np.unravel_index(dmin.argmin(), dmin.shape))
    for x, y in poly:
        assert s.dc * EDGE_VOXELS <= x <= (s.cols - 1 - EDGE_VOXELS) * s.dc
        assert s.dr * EDGE_VOXELS <= y <= (s.rows - 1 - EDGE_VOXELS) * s.dr
    mask = np.zeros(s.values.shape, bool)
    mask[k] = point_in_polygon(ii, jj, poly)
    out = stats(s.values, mask)
    out["area_mm2"] = out["n"] * s.dr * s.dc
    out["slice_k"] = k
    return out, mask, arg


def c_arg(c) -> str:
    return "--center=" + ",".join(ds_str(x) for x in c)


# --------------------------------------------------------------------------- the set


def build(outdir: Path) -> list:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    cases = []

    def O(folder):
        return "{out}/" + folder

    def add(name, args, expect, why):
        cases.append({"name": name, "args": args, "expect": expect, "rationale": why})

    def vals(st, prefix="rois.series", keys=("mean", "max", "min", "n"), extra=()):
        exp = {}
        for key in keys:
            tol = TOL["count"] if key == "n" else TOL["hu"]
            exp[f"{prefix}.{key}"] = {"value": st[key], "tol": tol}
        for key in extra:
            exp[f"{prefix}.{key}"] = {"value": st[key], "tol": max(0.06, 1e-6 * st[key])}
        return exp

    def ok(values):
        return {"exit": 0, "values": values}

    def err(*words):
        return {"exit": 2, "message_any": list(words)}

    AX = (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    SAG = (np.array([0, 1.0, 0]), np.array([0, 0, -1.0]))
    COR = (np.array([1.0, 0, 0]), np.array([0, 0, -1.0]))

    # S1: axial, 1 mm isotropic, voxel centres on the integer lattice. A uniform
    # 1200 HU sphere (bone island) of radius 6 at (2,-3,0) in cancellous bone 250 +/- 150.
    s1 = Series("ct-iso", "CT", *AX, origin=(-20, -20, -15), dr=1, dc=1, rows=40, cols=40, nz=30,
                step=1, slopes="1", intercepts="-1024", seed=101)
    phys = 250 + s1.noise(-150, 150)
    phys[s1.in_sphere((2, -3, 0), 6)] = 1200
    s1.set_values(phys)
    s1.write(outdir)
    st, _ = sphere_roi(s1, (2, -3, 0), 4, ties_ok=True)
    assert st["n"] == 257
    add("ct-bone-island-1200-ties", ["dicom", "roi", O("ct-iso"), c_arg((2, -3, 0)), "--radius-mm", "4", "--json"],
        ok({**vals(st, extra=("volume_mm3",)), "derived.mean_hu": {"value": 1200.0, "tol": TOL["hu"]},
            "derived.max_hu": {"value": 1200.0, "tol": TOL["hu"]}}),
        "uniform 1200 HU sphere r=6 mm, ROI r=4 mm on a 1 mm lattice: 257 integer points with a^2+b^2+c^2<=16 "
        "(closed sphere; the docs' example, 125 voxels for r=4 at 1x1x2 mm, is the closed-sphere count too); "
        "volume = n x 1 mm3")

    c = (-5.5, 6.5, 3.5)  # exactly between voxel centres along all three axes
    st, _ = sphere_roi(s1, c, 2.5)
    add("ct-centre-between-voxels", ["dicom", "roi", O("ct-iso"), c_arg(c), "--radius-mm", "2.5", "--json"],
        ok(vals(st)),
        "centre at half-integers on the 1 mm lattice: squared distances are k+0.75, none equal to 6.25; "
        f"mean/max/min over the {st['n']} selected noisy voxels (offsets +/-0.5, +/-1.5) from the phantom array")

    add("ct-centre-outside", ["dicom", "roi", O("ct-iso"), c_arg((0, 0, 40)), "--radius-mm", "3", "--json"],
        err("outside"), "slices span z -15..14 mm; z=40 is 26 mm past the last one")
    c = (17, 0, 0)
    u = s1.index_of(c)[0]
    assert u < s1.cols - 1 and u + 6 > s1.cols - 0.5 + 1  # centre inside, sphere 3.5 mm past the voxel edges
    add("ct-roi-partly-outside", ["dicom", "roi", O("ct-iso"), c_arg(c), "--radius-mm", "6", "--json"],
        err("outside", "edge", "past", "beyond", "exceed"),
        "centre x=17 inside (last column centre x=19, edge 19.5) but the sphere reaches x=23")
    add("ct-roi-too-small", ["dicom", "roi", O("ct-iso"), c_arg((0.5, 0.5, 0.5)), "--radius-mm", "0.1", "--json"],
        err("small", "voxel", "half"), "r=0.1 mm is below half of a 1 mm voxel (and holds no voxel centre)")
    # polygon corners 0.4 mm off the nearest slice (spacing 1 mm: limit is a quarter, 0.25 mm)
    add("ct-polygon-off-plane",
        ["dicom", "roi", O("ct-iso"), "--polygon=-5,-5,0.4;5,-5,0.4;5,5,0.4;-5,5,0.4", "--json"],
        err("plane", "slice", "off"), "corners at z=0.4: 0.4 mm from slice z=0 and 0.6 from z=1, over a quarter of 1 mm")
    add("ct-polygon-past-edge",
        ["dicom", "roi", O("ct-iso"), "--polygon=10,-5,0;25,-5,0;25,5,0;10,5,0", "--json"],
        err("edge", "outside", "past", "beyond", "image"), "corners at x=25, past the last column (x=19, edge 19.5)")

    # S1b: a second CT series in the same frame of reference, for the MR-only check
    s1b = Series("ct-iso-b", "CT", *AX, origin=(-20, -20, -15), dr=1, dc=1, rows=40, cols=40, nz=30,
                 step=1, slopes="1", intercepts="-1024", seed=102, frame_uid=s1.frame_uid)
    s1b.set_values(250 + s1b.noise(-100, 100))
    s1b.write(outdir)
    add("cs-on-ct-series", ["dicom", "chemical-shift", O("ct-iso"), O("ct-iso-b"), c_arg((0, 0, 0)),
                            "--radius-mm", "3", "--json"],
        err("MR"), "chemical shift needs MR series (docs: 'The MR measures need MR series'); both are CT")

    # S2: axial, 0.8 mm pixels, 3 mm slices stored from head to feet, slope 0.5,
    # intercept -1024, files under random names with shuffled instance numbers.
    s2 = Series("ct-random-order", "CT", *AX, origin=(-18.4, -20.0, 30), dr=0.8, dc=0.8, rows=48, cols=48,
                nz=16, step=-3, slopes="0.5", intercepts="-1024", seed=202)
    phys = 300 + s2.noise(-200, 200)
    les = s2.in_sphere((1.2, -2.4, 15), 7)
    phys[les] = 1100 + s2.noise(-100, 100)[les]
    s2.set_values(phys)
    s2.write(outdir, order_seed=2020)
    c = (1.5, -2, 16.5)
    st, _ = sphere_roi(s2, c, 6.5)
    add("ct-random-order-slope-half", ["dicom", "roi", O("ct-random-order"), c_arg(c), "--radius-mm", "6.5",
                                       "--json"],
        ok(vals(st, extra=("volume_mm3",))),
        "files named at random, instance numbers shuffled, slope 0.5/intercept -1024: HU = 0.5*stored-1024; "
        "voxels placed by their own ImagePositionPatient; volume = n x 0.8 x 0.8 x 3")

    # S3: per-slice slope and intercept
    slopes = ["1", "0.5", "2", "0.25", "1.5"]
    icpts = ["-1024", "-1000", "-2048", "-1500", "-3000", "-512"]
    s3 = Series("ct-per-slice-rescale", "CT", *AX, origin=(-15.05, -10.85, -20), dr=0.7, dc=0.7, rows=32,
                cols=44, nz=20, step=2, slopes=slopes, intercepts=icpts, seed=303)
    phys = 700 + s3.noise(-400, 400) + 30 * (np.arange(20)[:, None, None] - 10)
    s3.set_values(phys)
    s3.write(outdir)
    c = (0.21, -0.93, -0.6)
    st, _ = sphere_roi(s3, c, 5.25)
    add("ct-per-slice-rescale", ["dicom", "roi", O("ct-per-slice-rescale"), c_arg(c), "--radius-mm", "5.25",
                                 "--json"],
        ok(vals(st)),
        "slopes cycle 1,0.5,2,0.25,1.5 and intercepts -1024,-1000,-2048,-1500,-3000,-512 per slice; each slice "
        "rescaled with its own pair before the ROI statistics")

    # S4: axial plane rotated 20 degrees about z, values a gradient in patient
    # coordinates plus noise (a wrong orientation moves the ROI onto other values)
    s4 = Series("ct-oblique-z20", "CT", *(rot_z(20) @ AX[0], rot_z(20) @ AX[1]),
                origin=(rot_z(20) @ np.array([-21.15, -21.15, 0]) + np.array([0, 0, -19])),
                dr=0.9, dc=0.9, rows=48, cols=48, nz=20, step=2, slopes="1", intercepts="-1024", seed=404)
    phys = 400 + 8 * s4.P[..., 0] - 5 * s4.P[..., 1] + 3 * s4.P[..., 2] + s4.noise(-60, 60)
    s4.set_values(phys)
    s4.write(outdir)
    c = (3, -4, 1.3)
    st, _ = sphere_roi(s4, c, 5)
    add("ct-oblique-axial-z20-sphere", ["dicom", "roi", O("ct-oblique-z20"), c_arg(c), "--radius-mm", "5", "--json"],
        ok(vals(st)),
        "IOP (cos20,sin20,0,-sin20,cos20,0); voxel centres S+i*0.9*X+j*0.9*Y; HU = 400+8x-5y+3z+noise")
    c = (-2.5, 6, 1)  # exactly on slice k=10 (z=1)
    st, _ = circle_roi(s4, c, 4.5)
    assert st["slice_k"] == 10 and st["centre_off_plane_mm"] < 1e-9
    add("ct-oblique-axial-z20-circle", ["dicom", "roi", O("ct-oblique-z20"), c_arg(c), "--radius-mm", "4.5",
                                        "--shape", "circle", "--json"],
        ok(vals(st)),
        "circle r=4.5 mm centred on the slice z=1 (k=10): pixels of that slice within 4.5 mm in-plane")

    # S5: double oblique (Rz 25 deg after Rx -15 deg), anisotropic pixels 0.6 (rows) x 0.9 (columns),
    # 56 rows x 40 columns, 2.5 mm spacing with 3 mm thickness (overlapping reconstruction)
    R5 = rot_z(25) @ rot_x(-15)
    X5, Y5 = R5 @ AX[0], R5 @ AX[1]
    N5 = np.cross(X5, Y5)
    origin5 = np.array([4.0, -3.0, 10.0]) - 19.5 * 0.9 * X5 - 27.5 * 0.6 * Y5 - 9.5 * 2.5 * N5
    s5 = Series("ct-double-oblique", "CT", X5, Y5, origin=origin5, dr=0.6, dc=0.9, rows=56, cols=40, nz=20,
                step=2.5, thickness=3.0, slopes="2", intercepts="-2048", seed=505)
    phys = 200 + 6 * s5.P[..., 0] - 4 * s5.P[..., 1] + 10 * s5.P[..., 2] + s5.noise(-80, 80)
    les = s5.in_sphere((5, -2, 11), 6)
    phys[les] = 1300 + s5.noise(-150, 150)[les]
    s5.set_values(phys)
    s5.write(outdir, order_seed=5050)
    c = (4.2, -2.7, 10.6)
    st, _ = sphere_roi(s5, c, 6)
    add("ct-double-oblique-aniso-sphere", ["dicom", "roi", O("ct-double-oblique"), c_arg(c), "--radius-mm", "6",
                                           "--json"],
        ok(vals(st, extra=("volume_mm3",))),
        "double-oblique plane, PixelSpacing [0.6,0.9] (row,col) on 56x40 images, slope 2/intercept -2048; "
        "volume = n x 0.6 x 0.9 x 2.5 (slice spacing from positions, not the 3 mm SliceThickness)")
    st, _, parg = polygon_roi(s5, 9, [(8.3, 12.2), (30.63, 9.77), (27.1, 40.4), (18.2, 30.1), (10.9, 44.6)])
    add("ct-double-oblique-polygon", ["dicom", "roi", O("ct-double-oblique"), "--polygon=" + parg, "--json"],
        ok({**vals(st), "rois.series.area_mm2": {"value": st["area_mm2"], "tol": 0.01}}),
        "non-convex pentagon on slice k=9, corners mapped with P=S+u*0.9*X+v*0.6*Y; pixel centres inside "
        "by the even-odd rule; area = n x 0.54 mm2")

    # S6: sagittal, PixelSpacing [0.8, 0.5] (rows run feet-ward at 0.8 mm, columns
    # anterior->posterior at 0.5 mm), 40 rows x 64 columns, slices 1.5 mm apart along -x.
    s6 = Series("ct-sagittal-aniso", "CT", *SAG, origin=(17.25, -15.75, 15.6), dr=0.8, dc=0.5, rows=40, cols=64,
                nz=24, step=1.5, slopes="1", intercepts="-1024", seed=606)
    phys = 300 + 20 * s6.P[..., 2] - 7 * s6.P[..., 1] + 3 * s6.P[..., 0] + s6.noise(-50, 50)
    s6.set_values(phys)
    s6.write(outdir, order_seed=6060)
    c = (-1.17, 2.33, -3.06)
    st, _ = sphere_roi(s6, c, 5)
    add("ct-sagittal-aniso-sphere", ["dicom", "roi", O("ct-sagittal-aniso"), c_arg(c), "--radius-mm", "5", "--json"],
        ok(vals(st, extra=("volume_mm3",))),
        "sagittal IOP (0,1,0,0,0,-1), normal -x; row spacing 0.8 along -z, column spacing 0.5 along +y; "
        "HU = 300+20z-7y+3x+noise; volume = n x 0.8 x 0.5 x 1.5")
    c = (17.25 - 1.5 * 9 + 0.4, -3.0, 2.0)  # 0.4 mm beside slice k=9 (x=3.75)
    st, _ = circle_roi(s6, c, 6)
    assert st["slice_k"] == 9
    add("ct-sagittal-circle-off-slice", ["dicom", "roi", O("ct-sagittal-aniso"), c_arg(c), "--radius-mm", "6",
                                         "--shape", "circle", "--json"],
        ok(vals(st)),
        "centre 0.4 mm beside slice x=3.75 (next slice 1.1 mm away): circle r=6 around the centre projected on "
        "that slice, in-plane distances with 0.5 mm columns and 0.8 mm rows")
    st, _, parg = polygon_roi(s6, 14, [(12.4, 6.3), (51.7, 10.1), (33.2, 33.6)])
    add("ct-sagittal-polygon", ["dicom", "roi", O("ct-sagittal-aniso"), "--polygon=" + parg, "--json"],
        ok({**vals(st), "rois.series.area_mm2": {"value": st["area_mm2"], "tol": 0.01}}),
        "triangle on the sagittal slice x=-3.75 (k=14); pixel centres inside; area = n x 0.4 mm2")

    # S7: coronal, signed pixels (PixelRepresentation 1), intercept 0, fat (-100) above z=0
    # and bone (400) below, PixelSpacing [0.5, 0.8] on 64 rows x 40 columns, slices stored
    # posterior to anterior (positions decreasing in y).
    s7 = Series("ct-coronal-signed", "CT", *COR, origin=(-15.6, 19.0, 15.75), dr=0.5, dc=0.8, rows=64, cols=40,
                nz=20, step=-2, slopes="1", intercepts="0", signed=True, seed=707)
    z = s7.P[..., 2]
    phys = np.where(z > 0.2, -100 + s7.noise(-30, 30), 400 + s7.noise(-100, 100))
    s7.set_values(phys)
    s7.write(outdir)
    c = (0.4, 1.0, 0.3)
    st, _ = sphere_roi(s7, c, 5)
    add("ct-coronal-signed-sphere", ["dicom", "roi", O("ct-coronal-signed"), c_arg(c), "--radius-mm", "5",
                                     "--json"],
        ok(vals(st)),
        "coronal IOP (1,0,0,0,0,-1), normal +y, slices stored in -y; signed int16 values, negative fat "
        "(-100+/-30) above z=0.2 and bone below: a sign error or unsigned read shifts the mean by thousands")

    # S8: larger CT for the radius limit
    s8 = Series("ct-large", "CT", *AX, origin=(-63, -63, -58.5), dr=2, dc=2, rows=64, cols=64, nz=40, step=3,
                slopes="1", intercepts="-1024", seed=808)
    s8.set_values(500 + s8.noise(-300, 300))
    s8.write(outdir)
    st, _ = sphere_roi(s8, (0, 0, 0), 50)
    add("ct-radius-50-allowed", ["dicom", "roi", O("ct-large"), c_arg((0, 0, 0)), "--radius-mm", "50", "--json"],
        ok(vals(st, extra=("volume_mm3",))),
        "r=50 mm is not 'over 50 mm' and fits (grid 128x128x120 mm, centre between voxels so no ties)")
    add("ct-radius-over-50", ["dicom", "roi", O("ct-large"), c_arg((0, 0, 0)), "--radius-mm", "51", "--json"],
        err("50", "radius"), "r=51 mm fits in the volume but is over the documented 50 mm limit")

    # error series ------------------------------------------------------------
    def small_ct(name, seed, **kw):
        s = Series(name, "CT", *AX, origin=(-15.5, -15.5, -11), dr=1, dc=1, rows=32, cols=32, nz=12, step=2,
                   slopes="1", intercepts="-1024", seed=seed, **kw)
        s.set_values(300 + s.noise(-50, 50))
        return s

    ea = small_ct("ct-two-series", 901)
    ea.write(outdir)
    eb = small_ct("ct-two-series-b", 902, frame_uid=ea.frame_uid)
    eb.write(outdir, folder="ct-two-series", order_seed=9020)
    add("ct-two-series-in-folder", ["dicom", "roi", O("ct-two-series"), c_arg((0, 0, 0)), "--radius-mm", "3",
                                    "--json"],
        err("series"), "the folder holds two SeriesInstanceUIDs (same frame of reference, same positions)")

    e = small_ct("ct-missing-position", 903)
    e.write(outdir, mutate=lambda k, ds: (delattr(ds, "ImagePositionPatient") or ds) if k == 5 else ds)
    add("ct-missing-position", ["dicom", "roi", O("ct-missing-position"), c_arg((0, 0, 0)), "--radius-mm", "3",
                                "--json"],
        err("position"), "slice 6 of 12 has no ImagePositionPatient (Type 1 in the Image Plane module)")

    e = small_ct("ct-missing-slice", 904)
    e.write(outdir, mutate=lambda k, ds: None if k == 6 else ds)
    add("ct-missing-slice-gap", ["dicom", "roi", O("ct-missing-slice"), c_arg((0, 0, -3)), "--radius-mm", "3",
                                 "--json"],
        err("spac", "missing", "gap", "uneven"), "positions z=-11,-9,...,+11 with z=1 removed: a 4 mm gap among 2 mm steps")

    e = small_ct("ct-duplicate-position", 905)
    d = e.write(outdir)
    dup = e.dataset(4, 99)
    dup.SOPInstanceUID = dup.file_meta.MediaStorageSOPInstanceUID = uid("ct-duplicate-position", "extra")
    dup.save_as(d / "IM0099.dcm", enforce_file_format=True)
    add("ct-duplicate-position", ["dicom", "roi", O("ct-duplicate-position"), c_arg((0, 0, 0)), "--radius-mm", "3",
                                  "--json"],
        err("position", "same", "duplicate"), "two images of the series at the same ImagePositionPatient (z=-3)")

    e = small_ct("ct-mixed-orientation", 906)
    iop_rot = [ds_str(v, 10) for v in list(rot_z(10) @ AX[0]) + list(rot_z(10) @ AX[1])]

    def mix(k, ds):
        if k == 7:
            ds.ImageOrientationPatient = iop_rot
        return ds

    e.write(outdir, mutate=mix)
    add("ct-mixed-orientation", ["dicom", "roi", O("ct-mixed-orientation"), c_arg((0, 0, 0)), "--radius-mm", "3",
                                 "--json"],
        err("orientation"), "slice 8 of 12 is rotated 10 degrees about z (different ImageOrientationPatient)")

    # MR: chemical shift ---------------------------------------------------------
    def mr_axial(name, seed, **kw):
        return Series(name, "MR", *AX, origin=(-22.03125, -18.28125, -28), dr=0.9375, dc=0.9375, rows=40,
                      cols=48, nz=16, step=4, seed=seed, **kw)

    lesion = ((5, -6, 2), 9)
    ip = mr_axial("mr-cs-ip", 1001, slopes="1", intercepts="0", study="study-mr")
    ip.description = "in phase"
    phys_ip = 400 + ip.noise(-60, 60)
    phys_ip[ip.in_sphere(*lesion)] = 600
    ip.set_values(phys_ip)
    ip.write(outdir)
    op = mr_axial("mr-cs-op", 1002, slopes="1", intercepts="0", study="study-mr", frame_uid=ip.frame_uid)
    op.description = "opposed phase"
    phys_op = 380 + op.noise(-60, 60)
    phys_op[op.in_sphere(*lesion)] = 240
    op.set_values(phys_op)
    op.write(outdir, order_seed=1020, mutate=lambda k, ds: (setattr(ds, "EchoTime", "2.3") or ds))
    c = (5, -6, 2)
    st_ip, _ = sphere_roi(ip, c, 4.5)
    st_op, _ = sphere_roi(op, c, 4.5)
    assert st_ip["mean"] == 600 and st_op["mean"] == 240
    cs_vals = lambda a, b: {  # noqa: E731
        "rois.in_phase.mean": {"value": a["mean"], "tol": TOL["hu"]},
        "rois.in_phase.n": {"value": a["n"], "tol": 0},
        "rois.opposed_phase.mean": {"value": b["mean"], "tol": TOL["hu"]},
        "rois.opposed_phase.n": {"value": b["n"], "tol": 0},
        "derived.drop_percent": {"value": 100 * (a["mean"] - b["mean"]) / a["mean"], "tol": TOL["percent"]},
        "derived.sir": {"value": b["mean"] / a["mean"], "tol": TOL["ratio"]},
    }
    add("cs-drop-60", ["dicom", "chemical-shift", O("mr-cs-ip"), O("mr-cs-op"), c_arg(c), "--radius-mm", "4.5",
                       "--json"],
        ok(cs_vals(st_ip, st_op)),
        "ROI inside a lesion of uniform in-phase 600 / opposed 240: drop (600-240)/600 = 60 %, ratio 240/600 = 0.4")

    e = mr_axial("mr-cs-op-other-frame", 1002, slopes="1", intercepts="0", study="study-mr")
    e.set_values(phys_op)
    e.write(outdir)
    add("cs-different-frame", ["dicom", "chemical-shift", O("mr-cs-ip"), O("mr-cs-op-other-frame"), c_arg(c),
                               "--radius-mm", "4.5", "--json"],
        err("frame of reference", "frames of reference"), "same grid and values as mr-cs-op but another FrameOfReferenceUID")
    add("cs-same-series-twice", ["dicom", "chemical-shift", O("mr-cs-ip"), O("mr-cs-ip"), c_arg(c),
                                 "--radius-mm", "4.5", "--json"],
        err("same"), "docs: the same series twice is refused")
    e = mr_axial("mr-cs-op-slope2", 1002, slopes="2", intercepts="0", study="study-mr", frame_uid=ip.frame_uid)
    e.set_values(phys_op)
    e.write(outdir)
    add("cs-rescale-differs", ["dicom", "chemical-shift", O("mr-cs-ip"), O("mr-cs-op-slope2"), c_arg(c),
                               "--radius-mm", "4.5", "--json"],
        err("rescale", "slope", "scal"), "in-phase slope 1, opposed-phase slope 2: docs refuse pairs whose rescales differ")

    # sagittal heterogeneous pair, slope 2 on both, anisotropic pixels
    def mr_sag(name, seed, **kw):
        return Series(name, "MR", *SAG, origin=(18.15, -17.55, 16.45), dr=0.7, dc=0.9, rows=48, cols=40, nz=12,
                      step=3.3, slopes="2", intercepts="0", seed=seed, study="study-mr", **kw)

    ip2 = mr_sag("mr-cs-sag-ip", 1101)
    phys2 = 500 + 4 * ip2.P[..., 2] + ip2.noise(-100, 100)
    ip2.set_values(phys2)
    ip2.write(outdir)
    op2 = mr_sag("mr-cs-sag-op", 1102, frame_uid=ip2.frame_uid)
    f = 0.55 + 0.02 * op2.P[..., 1] + 0.01 * op2.P[..., 0]
    op2.set_values(ip2.values * np.clip(f, 0.1, 1.0) + op2.noise(-20, 20))
    op2.write(outdir, order_seed=1120)
    c = (1.1, -2.2, 0.9)
    a, _ = sphere_roi(ip2, c, 5.5)
    b, _ = sphere_roi(op2, c, 5.5)
    add("cs-sagittal-heterogeneous", ["dicom", "chemical-shift", O("mr-cs-sag-ip"), O("mr-cs-sag-op"), c_arg(c),
                                      "--radius-mm", "5.5", "--json"],
        ok(cs_vals(a, b)),
        "sagittal, pixels 0.7 (rows) x 0.9 (cols), 3.3 mm slices, slope 2 on both; opposed = in-phase x "
        "position-dependent factor + noise; drop and ratio from the two ROI means")
    add("mr-roi-sagittal-stats", ["dicom", "roi", O("mr-cs-sag-ip"), c_arg(c), "--radius-mm", "5.5", "--json"],
        ok(vals(a)), "MR statistics only: the same sphere on the in-phase series alone")

    # Dixon -------------------------------------------------------------------
    def dixon(name, seed, **kw):
        return Series(name, "MR", *COR, origin=(-25.5, 19.5, 25.8), dr=1.2, dc=1.0, rows=44, cols=52, nz=14,
                      step=-3, slopes="1", intercepts="0", seed=seed, study="study-mr", **kw)

    fat = dixon("mr-dixon-fat", 1201)
    water = dixon("mr-dixon-water", 1202, frame_uid=fat.frame_uid)
    lesion = ((2, 0.5, -1), 10)
    pf = 100 + fat.noise(0, 800)
    pw = 100 + water.noise(0, 800)
    pf[fat.in_sphere(*lesion)] = 300
    pw[water.in_sphere(*lesion)] = 700
    fat.set_values(pf)
    water.set_values(pw)
    fat.write(outdir)
    water.write(outdir, order_seed=1220)
    ff_vals = lambda a, b: {  # noqa: E731
        "rois.fat.mean": {"value": a["mean"], "tol": TOL["hu"]},
        "rois.fat.n": {"value": a["n"], "tol": 0},
        "rois.water.mean": {"value": b["mean"], "tol": TOL["hu"]},
        "rois.water.n": {"value": b["n"], "tol": 0},
        "derived.fat_fraction_percent": {"value": 100 * a["mean"] / (a["mean"] + b["mean"]), "tol": TOL["percent"]},
    }
    c = (2.3, 0.4, -0.7)
    a, _ = sphere_roi(fat, c, 4.6)
    b, _ = sphere_roi(water, c, 4.6)
    assert a["mean"] == 300 and b["mean"] == 700
    add("dixon-ff-30", ["dicom", "dixon", O("mr-dixon-fat"), O("mr-dixon-water"), c_arg(c), "--radius-mm", "4.6",
                        "--json"],
        ok(ff_vals(a, b)), "coronal Dixon, ROI inside fat 300 / water 700: fat fraction 300/1000 = 30 %")
    a, _, parg = polygon_roi(fat, 3, [(5.2, 20.3), (21.7, 18.6), (24.4, 38.1), (6.6, 36.7)])
    b, _, parg2 = polygon_roi(water, 3, [(5.2, 20.3), (21.7, 18.6), (24.4, 38.1), (6.6, 36.7)])
    assert parg == parg2
    add("dixon-polygon-heterogeneous", ["dicom", "dixon", O("mr-dixon-fat"), O("mr-dixon-water"),
                                        "--polygon=" + parg, "--json"],
        ok(ff_vals(a, b)),
        "quadrilateral on coronal slice k=3 over random fat and water (100..900): FF = mean fat/(fat+water)")

    # ADC ---------------------------------------------------------------------
    adc = Series("mr-adc-1e6", "MR", *AX, origin=(-29.25, -23.25, -22.5), dr=1.5, dc=1.5, rows=32, cols=40, nz=10,
                 step=5, slopes="1", intercepts="0", seed=1301, study="study-mr")
    lesion = ((1, 2, 0), 12)
    pa = 600 + adc.noise(0, 1600)
    pa[adc.in_sphere(*lesion)] = 900
    adc.set_values(pa)
    adc.write(outdir)
    c = (1.4, 2.3, 0.6)
    st, _ = sphere_roi(adc, c, 6)
    assert st["mean"] == 900
    add("adc-900-1e-6", ["dicom", "adc", O("mr-adc-1e6"), "--unit", "1e-6 mm2/s", c_arg(c), "--radius-mm", "6",
                         "--json"],
        ok({"rois.adc.n": {"value": st["n"], "tol": 0},
            "derived.adc_1e-3_mm2_s": {"value": st["mean"] / 1000, "tol": TOL["adc"]}}),
        "ADC map stored as 900 x 10^-6 mm2/s inside the lesion: 0.9 x 10^-3 mm2/s")
    c = (-12.2, -9.1, 7.4)
    st, _ = circle_roi(adc, c, 7)
    add("adc-circle-heterogeneous", ["dicom", "adc", O("mr-adc-1e6"), "--unit", "1e-6 mm2/s", c_arg(c),
                                     "--radius-mm", "7", "--shape", "circle", "--json"],
        ok({"rois.adc.n": {"value": st["n"], "tol": 0},
            "derived.adc_1e-3_mm2_s": {"value": st["mean"] / 1000, "tol": TOL["adc"]}}),
        "circle r=7 on the slice z=7.5 (0.1 mm away) over random ADC 600..2200 x 10^-6: mean / 1000")

    adc3 = Series("mr-adc-1e3-slope", "MR", *AX, origin=(-23.25, -23.25, -20), dr=1.5, dc=1.5, rows=32, cols=32,
                  nz=9, step=5, slopes="0.001", intercepts="0", seed=1401, study="study-mr")
    pa = (600 + adc3.noise(0, 1600)) / 1000
    pa[adc3.in_sphere((0, 0, 0), 10)] = 1.1
    adc3.set_values(pa)
    adc3.write(outdir)
    st, _ = sphere_roi(adc3, (0.4, -0.3, 0.2), 6)
    assert abs(st["mean"] - 1.1) < 1e-9
    add("adc-1e-3-slope", ["dicom", "adc", O("mr-adc-1e3-slope"), "--unit", "1e-3 mm2/s", c_arg((0.4, -0.3, 0.2)),
                           "--radius-mm", "6", "--json"],
        ok({"rois.adc.n": {"value": st["n"], "tol": 0},
            "derived.adc_1e-3_mm2_s": {"value": st["mean"], "tol": TOL["adc"]}}),
        "stored 1100 with RescaleSlope 0.001 = 1.1 in 10^-3 mm2/s as declared")
    add("adc-unit-given-wrong", ["dicom", "adc", O("mr-adc-1e3-slope"), "--unit", "1e-6 mm2/s",
                                 c_arg((0.4, -0.3, 0.2)), "--radius-mm", "6", "--json"],
        err("unit"), "the same 1.1 x 10^-3 map declared as 10^-6: 0.0011 x 10^-3 mm2/s, a thousand times below tissue")

    return cases


def main(argv):
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out = Path(argv[1])
    cases = build(out)
    text = json.dumps({"set": "holdout1", "tolerances": TOL, "cases": cases}, indent=1) + "\n"
    (out / "cases.json").write_text(text)
    if os.environ.get("HOLDOUT1_NO_WRITE_CASES") != "1":
        (HERE / "cases.json").write_text(text)
    print(f"holdout1: {len(cases)} cases, series in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
