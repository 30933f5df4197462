"""DICOM adapter (issue 14): series read into volumes, ROI measurements, interpretation by the quantitative engine, and
the DICOM Structured Report written back."""
