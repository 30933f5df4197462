"""The measurement written back as a DICOM Comprehensive 3D SR, TID 1500 Measurement Report (highdicom).

* The evidence: every image of the measured series (its SOP class and instance), with the patient and study of the
  series, so that the report files with the study in PACS.
* The ROI: a volumetric ROI in the series' frame of reference (SCOORD3D): for a sphere, a volume surface (TID 1411)
  that is an ELLIPSOID (the three axes' end points) of the source series; for a circle, a planar ROI (TID 1410)
  whose region is an ELLIPSE in the image plane.
* The measurements: mean, maximum and standard deviation of the ROI (SNOMED CT concepts) in UCUM units (Hounsfield
  unit for CT, "no units" for MR signal), the volume of a sphere in mm³ or the area of a circle in mm² (the circle
  drawn on the slice it was measured on).
* The interpretation: one qualitative evaluation per measure compared with the published cut-offs ("malignant side
  of N of M cut-offs"), in a private coding scheme (99SPINEMETS), and the algorithm named with spinemets' version and
  the knowledge-base version.  The report is marked preliminary (not complete, not verified): decision support that a
  clinician confirms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spinemets.dicom.series import SeriesError, Volume
from spinemets.interpret import quantitative as q

SCHEME = "99SPINEMETS"
CODE_VALUE_MAX = 16  # DICOM: a code value (SH) holds at most 16 characters
MEASURE_CODES = {q.CT_MEAN: "CT-MEAN-HU", q.CT_MAX: "CT-MAX-HU", q.SIR: "CS-SIR", q.DROP: "CS-DROP-PCT",
                 q.FAT: "DIXON-FF-PCT", q.ADC: "ADC"}


def measure_code(measure: str) -> str:
    """The private code value of a measure (at most 16 characters: DICOM's limit)."""
    code = MEASURE_CODES.get(measure)
    if code is None:  # a measure added to the knowledge base without a code here: never a truncated, ambiguous one
        raise SeriesError(f"the report has no code for the measure {measure.replace('_', ' ')} yet", "measure")
    return code


def evaluation_code(malignant: int, applicable: int) -> str:
    """The private code value of "malignant side of M of N cut-offs" ("M3-OF-4")."""
    return f"M{malignant}-OF-{applicable}"


def _units(volume: Volume) -> Any:
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    return codes.UCUM.HounsfieldUnit if volume.units == "HU" else Code("1", "UCUM", "no units")


def _region(volume: Volume, stats: Any) -> Any:
    import highdicom as hd

    if stats.shape == "polygon":  # a closed ring: the first corner repeated last
        corners = np.array(stats.points_mm + stats.points_mm[:1], dtype=float)
        return hd.sr.ImageRegion3D(hd.sr.GraphicTypeValues3D.POLYGON, corners, volume.frame_of_reference_uid)
    if stats.radius_mm is None:
        raise SeriesError("a mask (a segmentation or a structure set) is already stored as such: the report is "
                          "written for a sphere, a circle or a polygon", "shape")
    c = np.array(stats.center_mm, dtype=float)
    r = float(stats.radius_mm)
    if stats.shape == "sphere":
        axes = [np.array(a, dtype=float) for a in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
        points = np.array([p for a in axes for p in (c - r * a, c + r * a)])
        return hd.sr.VolumeSurface(hd.sr.GraphicTypeValues3D.ELLIPSOID, points, volume.frame_of_reference_uid,
                                   source_series=hd.sr.SourceSeriesForSegmentation(volume.series_uid))
    row_dir = volume.affine[:3, 0] / np.linalg.norm(volume.affine[:3, 0])
    col_dir = volume.affine[:3, 1] / np.linalg.norm(volume.affine[:3, 1])
    points = np.array([c - r * row_dir, c + r * row_dir, c - r * col_dir, c + r * col_dir])
    return hd.sr.ImageRegion3D(hd.sr.GraphicTypeValues3D.ELLIPSE, points, volume.frame_of_reference_uid)


def measurement_report(volume: Volume, m: Any, datasets: list[Any] | None = None) -> Any:
    """The SR (a highdicom Comprehensive3DSR) of measurement *m* on *volume*."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code
    from pydicom.uid import generate_uid

    from spinemets import __version__
    from spinemets.knowledge.loader import load_kb

    kb = load_kb()
    stats = next(iter(m.rois.values()))
    algorithm = hd.sr.AlgorithmIdentification(name="spinemets", version=f"{__version__} (knowledge base {kb.version})")
    unit = _units(volume)
    measurements = [
        hd.sr.Measurement(name=codes.SCT.Mean, value=float(stats.mean), unit=unit, algorithm_id=algorithm),
        hd.sr.Measurement(name=codes.SCT.Maximum, value=float(stats.max), unit=unit, algorithm_id=algorithm),
        hd.sr.Measurement(name=codes.SCT.StandardDeviation, value=float(stats.sd), unit=unit, algorithm_id=algorithm),
        hd.sr.Measurement(name=codes.SCT.Volume, value=float(stats.volume_mm3), unit=codes.UCUM.CubicMillimeter,
                          algorithm_id=algorithm) if stats.volume_mm3 is not None else
        hd.sr.Measurement(name=codes.SCT.Area, value=float(stats.area_mm2), unit=codes.UCUM.SquareMillimeter,
                          algorithm_id=algorithm),
    ]
    evaluations = []
    result = m.interpretation
    if result is not None:
        for summary in result.by_measure:
            name = Code(measure_code(summary.measure), SCHEME, q.LABELS[summary.measure])
            applicable = summary.malignant_side + summary.benign_side
            value = Code(evaluation_code(summary.malignant_side, applicable), SCHEME,
                         f"malignant side of {summary.malignant_side} of {applicable} cut-offs")
            evaluations.append(hd.sr.QualitativeEvaluation(name=name, value=value))
    region = _region(volume, stats)
    common = {"tracking_identifier": hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="spinemets ROI 1"),
              "finding_type": codes.SCT.Lesion, "algorithm_id": algorithm, "measurements": measurements,
              "qualitative_evaluations": evaluations or None}
    if stats.shape == "sphere":
        group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(referenced_volume_surface=region, **common)
    else:
        group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_region=region, **common)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name="spinemets", manufacturer_name="spinemets", model_name=__version__))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=Code("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=[group])
    evidence = datasets if datasets is not None else [_evidence(volume, i) for i in volume.instances]
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report, series_instance_uid=generate_uid(), series_number=9901,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="spinemets",
        is_complete=False, is_final=False, is_verified=False, record_evidence=True)
    sr.SeriesDescription = f"spinemets measurement (decision support, knowledge base {kb.version})"[:64]
    return sr


def _evidence(volume: Volume, instance: Any) -> Any:
    """A dataset carrying what the SR needs of a source image: its identifiers and the patient and study."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.update(volume.header)
    ds.SOPClassUID, ds.SOPInstanceUID = instance.sop_class_uid, instance.sop_instance_uid
    return ds

