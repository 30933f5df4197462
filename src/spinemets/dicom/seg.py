"""ROI masks as DICOM Segmentations (issue 14): a drawn ROI written as a SEG that references the source images
(highdicom), and a SEG read back as the mask of a ROI on its source series.

* Writing: the sphere or circle mask over the whole series, one binary segment labelled "spinemets ROI", its frames
  referencing the source images; frames without the ROI are left out.
* Reading: the SEG must share the series' frame of reference; the mask is taken frame by frame from the source images
  the SEG references, in the order of the volume's slices; a segment number that is not in the SEG, a SEG of another
  series, or an empty segment is an error naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spinemets.dicom.roi import RoiStats, inside_field, polygon_mask, sphere_mask
from spinemets.dicom.series import SeriesError, Volume


def full_mask(volume: Volume, center: Sequence[float] | None, radius_mm: float | None, shape: str,
              points: Sequence[Sequence[float]] | None = None) -> np.ndarray:
    """The ROI's mask over the whole volume (k, j, i): a sphere or circle, or a polygon (its corners)."""
    if shape == "polygon":
        if points is None or center is not None or radius_mm is not None:
            raise SeriesError("a polygon ROI is given by its corners only", "points")
        box, mask, _ = polygon_mask(volume, points)
    else:
        if center is None or radius_mm is None or points is not None:
            raise SeriesError(f"a {shape} ROI is given by its centre and radius", "center")
        box, mask, _ = sphere_mask(volume, center, radius_mm, in_plane=shape == "circle")
    out = np.zeros(volume.shape, dtype=bool)
    out[box] = mask
    return out


def write(volume: Volume, datasets: Sequence[Any], mask: np.ndarray) -> Any:
    """A binary SEG of *mask* on the series' source images (highdicom Segmentation)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    from spinemets import __version__

    by_uid = {str(d.SOPInstanceUID): d for d in datasets}
    try:
        sources = [by_uid[i.sop_instance_uid] for i in volume.instances]
    except KeyError:
        raise SeriesError("the SEG needs the source images of the measured series", "series") from None
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="spinemets ROI", segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=mask.astype(np.uint8), segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=generate_uid(), series_number=9902,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="spinemets",
        manufacturer_model_name="spinemets", software_versions=__version__, device_serial_number="none",
        content_description="ROI drawn in spinemets (decision support)")


def read_mask(volume: Volume, path: str | Path, segment: int = 1) -> np.ndarray:
    """The mask (k, j, i) of *segment* of the SEG at *path* on *volume*."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
    except FileNotFoundError:
        raise SeriesError(f"{path}: no such file", "seg") from None
    except Exception as exc:  # not a SEG, or a damaged one
        raise SeriesError(f"{path}: not a readable DICOM Segmentation ({type(exc).__name__})", "seg") from None
    if str(seg.get("FrameOfReferenceUID", "")) != volume.frame_of_reference_uid:
        raise SeriesError(f"{path}: the SEG is in another frame of reference than the series", "seg")
    if segment not in seg.get_segment_numbers():
        raise SeriesError(f"{path}: no segment {segment} (the segments are {seg.get_segment_numbers()})", "segment")
    referenced = {str(uid) for _, _, uid in seg.get_source_image_uids()}
    uids = [i.sop_instance_uid for i in volume.instances]
    if not referenced & set(uids):
        raise SeriesError(f"{path}: the SEG references none of the series' images", "seg")
    mask = np.zeros(volume.shape, dtype=bool)
    for k, uid in enumerate(uids):
        if uid not in referenced:
            continue
        frame = seg.get_pixels_by_source_instance(source_sop_instance_uids=[uid], segment_numbers=[segment],
                                                  assert_missing_frames_are_empty=True)
        mask[k] = frame[0, :, :, 0] > 0
    if not mask.any():
        raise SeriesError(f"{path}: segment {segment} is empty on this series", "segment")
    return mask


def mask_stats(volume: Volume, mask: np.ndarray) -> RoiStats:
    """Statistics of the voxels of *mask* (a SEG's segment, an RTSTRUCT's structure); its centre is the mask's
    centroid."""
    values = inside_field(volume.masked_values(mask))
    sx, sy, sz = volume.spacing
    k, j, i = np.nonzero(mask)
    centroid = volume.to_patient([float(i.mean()), float(j.mean()), float(k.mean())])
    volume_mm3 = values.size * sx * sy * sz
    return RoiStats(mean=float(values.mean()), max=float(values.max()), min=float(values.min()),
                    sd=float(values.std()), n=int(values.size), volume_mm3=volume_mm3, units=volume.units,
                    shape="mask", center_mm=[float(c) for c in centroid])
