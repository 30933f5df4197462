"""Phantoms made by the tests (issue 14): DICOM series with known values, written with pydicom.

* :func:`ct_spheres`: a CT volume of water (0 HU) holding spheres of known HU, stored with a chosen rescale slope and
  intercept, optionally with the files written in reverse slice order and an oblique-free orientation.
* :func:`mr_pair`: in-phase and opposed-phase series of one frame of reference with a region of known signal.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid


def new_dataset(sop_class, modality):
    """An empty instance of *sop_class* with its file meta information (explicit VR little endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    return ds


def _dataset(sop_class, modality, rows, cols, spacing, position, orientation, stored, slope, intercept, study, series,
             frame, number, description):
    ds = new_dataset(sop_class, modality)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Test", "PHANTOM1", "19600101", "O"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    ds.StudyDate = ds.SeriesDate = dt.date(2026, 1, 2).strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = "120000"
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, number
    ds.AccessionNumber, ds.ReferringPhysicianName = "ACC1", ""
    ds.Manufacturer = "spinemets tests"
    ds.SeriesDescription = description
    ds.Rows, ds.Columns = rows, cols
    ds.PixelSpacing = [spacing[1], spacing[0]]
    ds.SliceThickness = spacing[2]
    ds.ImagePositionPatient = [float(x) for x in position]
    ds.ImageOrientationPatient = [float(x) for x in orientation]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if modality == "CT":
        ds.RescaleType = "HU"
    ds.PixelData = stored.astype(np.int16).tobytes()
    return ds


def write_series(folder: Path, values: np.ndarray, *, modality="CT", spacing=(0.8, 0.8, 2.0), origin=(-100.0, -100.0, 0.0),
                 slope=1.0, intercept=0.0, reverse=False, frame=None, study=None, description="phantom") -> dict:
    """Write *values* (k, j, i) as single-frame images; returns the UIDs.  Stored = (value - intercept) / slope."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = study or generate_uid(), generate_uid(), frame or generate_uid()
    sop = CTImageStorage if modality == "CT" else MRImageStorage
    orientation = (1, 0, 0, 0, 1, 0)
    k_count, rows, cols = values.shape
    order = range(k_count - 1, -1, -1) if reverse else range(k_count)
    for n, k in enumerate(order):
        stored = np.round((values[k] - intercept) / slope)
        position = (origin[0], origin[1], origin[2] + k * spacing[2])
        ds = _dataset(sop, modality, rows, cols, spacing, position, orientation, stored, slope, intercept, study,
                      series, frame, n + 1, description)
        ds.save_as(folder / f"img{n:04d}.dcm", enforce_file_format=True)
    return {"study": study, "series": series, "frame": frame}


def ct_spheres(folder: Path, spheres, *, shape=(40, 128, 128), spacing=(0.8, 0.8, 2.0), origin=(-50.0, -50.0, 0.0),
               background=0.0, **kw) -> dict:
    """A CT of *background* HU with spheres [(centre_mm, radius_mm, hu)]; returns the UIDs and the exact values."""
    k, j, i = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    x = origin[0] + i * spacing[0]
    y = origin[1] + j * spacing[1]
    z = origin[2] + k * spacing[2]
    values = np.full(shape, background, dtype=np.float64)
    for (cx, cy, cz), radius, hu in spheres:
        values[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= radius ** 2] = hu
    uids = write_series(folder, values, spacing=spacing, origin=origin, **kw)
    return {**uids, "values": values}
