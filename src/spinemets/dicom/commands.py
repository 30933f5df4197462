"""``spinemets dicom ...``: measurements from DICOM series and the DICOM SR written back (issue 14).

    spinemets dicom roi SERIES_DIR --center X,Y,Z --radius-mm R [--shape sphere|circle] [--json]
    spinemets dicom chemical-shift IN_PHASE_DIR OPPOSED_PHASE_DIR --center X,Y,Z --radius-mm R [--json]
    spinemets dicom dixon FAT_DIR WATER_DIR --center X,Y,Z --radius-mm R [--json]
    spinemets dicom adc ADC_DIR --unit 1e-6 mm2/s --center X,Y,Z --radius-mm R [--json]
    spinemets dicom sr SERIES_DIR --center X,Y,Z --radius-mm R --out FILE.dcm

Bad input (a missing folder, no DICOM files, a ROI outside the volume) exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def _xyz(text: str) -> list[float]:
    parts = text.replace(" ", "").split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected X,Y,Z in mm (three numbers)") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected X,Y,Z in mm (three numbers)")
    return values


def _radius(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a radius in mm") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the radius must be a positive number of mm")
    return value


def _emit(m: Any, as_json: bool) -> int:
    from spinemets.cli import EXIT_OK
    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    if as_json:
        data = m.model_dump(mode="json")
        data["kb_version"], data["disclaimer"] = kb.version, kb.manifest.disclaimer
        print(json.dumps(data, indent=2))
        return EXIT_OK
    from spinemets.dicom.measure import describe

    for line in describe(m):
        print(line)
    print(f"Knowledge base {kb.version}. {kb.manifest.disclaimer}")
    return EXIT_OK


def load(where: str) -> Any:
    """A series from a folder, or from a DICOMweb series URL."""
    from spinemets.dicom.dicomweb import is_series_url, load_series
    from spinemets.dicom.series import load_folder

    return load_series(where) if is_series_url(where) else load_folder(where)


def _region(a: argparse.Namespace, masks: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ROI of the command line: a sphere or circle (--center, --radius-mm, --shape) or a polygon (--polygon),
    as keyword arguments of the measures; a mask option given (--seg, --rtstruct) leaves none of them."""
    from spinemets.dicom.series import SeriesError

    given = [m for m in masks if getattr(a, m, None)]
    if a.voxel is not None and a.center is not None:
        raise SeriesError("give the ROI's centre either in mm (--center) or as voxel indices (--voxel), not both",
                          "center")
    voxel, a.center = a.voxel, a.center if a.voxel is None else list(a.voxel)  # checked as a centre below
    drawn = a.center is not None or a.radius_mm is not None or a.polygon is not None
    if len(given) > 1 or (given and drawn):
        options = [f"--{m}" for m in given] + (["--polygon"] if a.polygon is not None else []) + \
            (["--center/--radius-mm"] if a.center is not None or a.radius_mm is not None else [])
        raise SeriesError(f"give one ROI, not {' and '.join(options)}", given[0] if given else "points")
    if given:
        return {}
    if a.polygon is not None:
        if a.center is not None or a.radius_mm is not None or a.shape is not None:
            raise SeriesError("give the ROI either as --polygon or as --center and --radius-mm (with --shape), not "
                              "both", "points")
        return {"center": None, "voxel": None, "radius_mm": None, "shape": "polygon", "points": a.polygon}
    if a.center is None or a.radius_mm is None:
        others = " or ".join(["--polygon", *(f"--{m}" for m in masks)])
        raise SeriesError(f"give the ROI: --center X,Y,Z (or --voxel I,J,K) and --radius-mm R, or {others}", "center")
    return {"center": None if voxel is not None else a.center, "voxel": voxel, "radius_mm": a.radius_mm,
            "shape": a.shape or "sphere", "points": None}


def _placed(region: dict[str, Any], volume: Any) -> dict[str, Any]:
    """The region's keyword arguments, a centre given as voxel indices turned into patient coordinates on *volume*
    (the first series of a pair: one frame of reference)."""
    region = dict(region)
    voxel = region.pop("voxel", None)
    if voxel is not None:
        region["center"] = volume.to_patient(voxel).tolist()
    return region


def cmd_roi(a: argparse.Namespace) -> int:
    from spinemets.dicom.measure import of_stats, roi

    region = _region(a, ("seg", "rtstruct"))
    volume = load(a.series)
    if a.seg:
        from spinemets.dicom.seg import mask_stats, read_mask

        return _emit(of_stats(volume, mask_stats(volume, read_mask(volume, a.seg, a.segment)), a.treated), a.json)
    if a.rtstruct:
        from spinemets.dicom.rtstruct import read_mask as read_structure
        from spinemets.dicom.seg import mask_stats

        mask, _ = read_structure(volume, a.rtstruct, a.structure)
        return _emit(of_stats(volume, mask_stats(volume, mask), a.treated), a.json)
    return _emit(roi(volume, treated=a.treated, **_placed(region, volume)), a.json)


def cmd_seg(a: argparse.Namespace) -> int:
    import pydicom

    from spinemets.cli import EXIT_OK
    from spinemets.dicom.seg import full_mask, write
    from spinemets.dicom.series import SeriesError, load_folder

    region = _region(a)
    from pathlib import Path

    if not Path(a.series).is_dir():
        raise SeriesError("a SEG is written for a series read from a folder (its source images)", "series")
    volume = load_folder(a.series)
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(Path(a.series).iterdir())
                if f.is_file() and f.read_bytes()[128:132] == b"DICM"]
    seg = write(volume, datasets, full_mask(volume, **_placed(region, volume)))
    seg.save_as(a.out, enforce_file_format=True)
    print(f"dicom seg: wrote {a.out} (one segment on {len(volume.instances)} source images)")
    return EXIT_OK


def cmd_chemical_shift(a: argparse.Namespace) -> int:
    region = _region(a)
    from spinemets.dicom.measure import chemical_shift

    in_phase = load(a.in_phase)
    return _emit(chemical_shift(in_phase, load(a.opposed_phase), treated=a.treated, **_placed(region, in_phase)),
                 a.json)


def cmd_dixon(a: argparse.Namespace) -> int:
    region = _region(a)
    from spinemets.dicom.measure import dixon

    fat = load(a.fat)
    return _emit(dixon(fat, load(a.water), treated=a.treated, **_placed(region, fat)), a.json)


def cmd_adc(a: argparse.Namespace) -> int:
    region = _region(a)
    from spinemets.dicom.measure import adc

    volume = load(a.series)
    return _emit(adc(volume, unit=a.unit, treated=a.treated, **_placed(region, volume)), a.json)


def cmd_sr(a: argparse.Namespace) -> int:
    region = _region(a)
    from spinemets.cli import EXIT_OK
    from spinemets.dicom.measure import roi
    from spinemets.dicom.sr import measurement_report

    volume = load(a.series)
    m = roi(volume, treated=a.treated, **_placed(region, volume))
    sr = measurement_report(volume, m)
    sr.save_as(a.out, enforce_file_format=True)
    print(f"dicom sr: wrote {a.out} ({len(volume.instances)} source images referenced)")
    if a.stow:
        from spinemets.dicom.dicomweb import store

        store(a.stow, [sr])
        print(f"dicom sr: stored on {a.stow} (STOW-RS)")
    return EXIT_OK


def _polygon(text: str) -> list[list[float]]:
    corners = [c for c in text.split(";") if c.strip()]
    if len(corners) < 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least three corners X,Y,Z separated by semicolons")
    return [_xyz(c) for c in corners]


def _point(text: str) -> tuple[str, list[float]]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=X,Y,Z (e.g. anterior_superior=1.5,-20,33)")
    return name.strip(), _xyz(value)


def _lengths(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected heights in mm separated by commas") from None


def cmd_height(a: argparse.Namespace) -> int:
    from spinemets.cli import EXIT_OK
    from spinemets.dicom.height import vertebral_height
    from spinemets.dicom.series import SeriesError
    from spinemets.knowledge.loader import load_kb

    points = dict(a.point or [])
    if len(points) != len(a.point or []):
        raise SeriesError("a landmark point is given twice", "points")
    r = vertebral_height(points, a.reference_mm)
    kb = load_kb()
    if a.json:
        print(json.dumps({**r.model_dump(mode="json"), "kb_version": kb.version,
                          "disclaimer": kb.manifest.disclaimer}, indent=2))
        return EXIT_OK
    from spinemets.dicom.height import describe

    for line in describe(r, kb):
        print(line)
    print(f"Knowledge base {kb.version}. {kb.manifest.disclaimer}")
    return EXIT_OK


def _roi_arguments(p: argparse.ArgumentParser) -> None:
    from spinemets.cli import _bool

    p.add_argument("--center", type=_xyz, metavar="X,Y,Z", help="the ROI centre in patient coordinates (mm, DICOM LPS)")
    p.add_argument("--voxel", type=_xyz, metavar="I,J,K", help="the ROI centre as voxel indices instead: column, row "
                   "and slice, from 0 (slices counted along the stack, not by image number)")
    p.add_argument("--radius-mm", type=_radius, metavar="R", help="the ROI radius (mm)")
    p.add_argument("--shape", choices=("sphere", "circle"),
                   help="a sphere, or a circle in the image plane of the nearest slice (default sphere)")
    p.add_argument("--polygon", type=_polygon, metavar="X,Y,Z;X,Y,Z;...",
                   help="the ROI as a polygon drawn on one image: its corners in patient coordinates (mm), separated "
                        "by semicolons (instead of --center and --radius-mm)")
    p.add_argument("--treated", type=_bool, metavar="yes|no", help="the lesion has been treated")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: Any, add: Any) -> None:
    d = sub.add_parser("dicom", help="measure from DICOM series (ROI, chemical shift, Dixon, ADC) and write a DICOM SR",
                       description="Measure a region of interest in DICOM series read from folders, interpret it "
                       "with the published cut-offs, and write the result as a DICOM Structured Report. Decision "
                       "support for healthcare professionals.")
    dsub = d.add_subparsers(dest="dicom_command", required=True, metavar="DICOM_COMMAND")
    r = dsub.add_parser("roi", help="ROI statistics of one series (CT: mean and maximum HU interpreted)")
    r.add_argument("series", help="the folder of one series, or its DICOMweb URL "
                   "({base}/studies/{study UID}/series/{series UID})")
    _roi_arguments(r)
    r.add_argument("--seg", metavar="SEG.dcm", help="the ROI as a segment of a DICOM Segmentation of this series "
                   "(instead of --center and --radius-mm)")
    r.add_argument("--segment", type=int, default=1, help="the segment number (default 1)")
    r.add_argument("--rtstruct", metavar="RS.dcm", help="the ROI as a structure of a DICOM RT Structure Set drawn on "
                   "this series (its closed planar contours; instead of --center and --radius-mm)")
    r.add_argument("--structure", metavar="NAME|NUMBER", help="the structure of --rtstruct (needed when it holds "
                   "several)")
    r.set_defaults(func=cmd_roi)
    c = dsub.add_parser("chemical-shift", help="signal intensity ratio and signal drop from in- and opposed-phase")
    c.add_argument("in_phase", help="the folder of the in-phase series")
    c.add_argument("opposed_phase", help="the folder of the opposed-phase series")
    _roi_arguments(c)
    c.set_defaults(func=cmd_chemical_shift)
    x = dsub.add_parser("dixon", help="fat fraction from the fat and water images")
    x.add_argument("fat", help="the folder of the fat images")
    x.add_argument("water", help="the folder of the water images")
    _roi_arguments(x)
    x.set_defaults(func=cmd_dixon)
    m = dsub.add_parser("adc", help="mean ADC of an ADC map")
    m.add_argument("series", help="the folder of the ADC map")
    m.add_argument("--unit", required=True, choices=("1e-6 mm2/s", "1e-3 mm2/s", "mm2/s"),
                   help="the unit of the map's values (scanners differ: it is not guessed)")
    _roi_arguments(m)
    m.set_defaults(func=cmd_adc)
    h = dsub.add_parser("height", help="vertebral body heights from landmark points, the height loss, Genant grade "
                                       "and SINS collapse")
    h.add_argument("--point", action="append", type=_point, metavar="NAME=X,Y,Z",
                   help="repeat six times: anterior_superior, anterior_inferior, middle_superior, middle_inferior, "
                        "posterior_superior, posterior_inferior (mm)")
    h.add_argument("--reference-mm", type=_lengths, metavar="H[,H...]",
                   help="the heights expected for this vertebra (the adjacent vertebrae's), averaged")
    h.add_argument("--json", action="store_true", help="machine-readable output")
    h.set_defaults(func=cmd_height)
    g = dsub.add_parser("seg", help="write the ROI as a DICOM Segmentation (SEG) of the series")
    g.add_argument("series", help="the folder of one series")
    g.add_argument("--out", required=True, metavar="SEG.dcm", help="where to write the SEG")
    _roi_arguments(g)
    g.set_defaults(func=cmd_seg)
    s = dsub.add_parser("sr", help="write the ROI measurement as a DICOM Comprehensive 3D SR (TID 1500)")
    s.add_argument("series", help="the folder of one series")
    s.add_argument("--out", required=True, metavar="FILE.dcm", help="where to write the SR")
    s.add_argument("--stow", metavar="DICOMWEB_BASE", help="also store the SR on this DICOMweb server (STOW-RS)")
    _roi_arguments(s)
    s.set_defaults(func=cmd_sr)
