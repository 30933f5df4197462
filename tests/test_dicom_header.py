"""The quick header reader (spinemets.dicom.header) against pydicom: on every uncompressed little-endian file of
pydicom's own test data (written by others) and on the phantoms, each value it reads is the value pydicom reads, or it
declines the file (then pydicom reads it); a volume opened either way is the same volume."""

from __future__ import annotations

import glob
import io
import struct
import os
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from spinemets.dicom import header as quick
from spinemets.dicom.series import _padding, load_folder
from tests.dicom_phantoms import ct_spheres

TEST_FILES = sorted(glob.glob(os.path.join(os.path.dirname(get_testdata_file("CT_small.dcm")), "*.dcm")))


def _same(ours, theirs):
    if isinstance(theirs, (list, tuple)) or type(theirs).__name__ == "MultiValue":
        return isinstance(ours, list) and len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs))
    if isinstance(theirs, float) or type(theirs).__name__ in ("DSfloat", "DSdecimal"):
        return ours == pytest.approx(float(theirs), rel=1e-12, abs=0)
    if isinstance(theirs, int):
        return ours == int(theirs)
    return str(ours) == str(theirs).strip()


def test_every_value_read_is_pydicoms_or_the_file_is_declined():
    read, declined = set(), set()
    for path in TEST_FILES:
        light = quick.read(path)
        if light is None:
            declined.add(os.path.basename(path))
            continue
        read.add(os.path.basename(path))
        full = pydicom.dcmread(path)
        for keyword, _ in quick.NEEDED.values():
            theirs = full.get(keyword)
            if keyword in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
                continue  # compared below in the pixels' own bit pattern
            if theirs is None or theirs == "":
                assert light.get(keyword) is None, (path, keyword)
            else:
                assert _same(light.get(keyword), theirs), (os.path.basename(path), keyword, light.get(keyword), theirs)
        assert light.PixelData == full.PixelData, path
        assert _padding(light, path) == _padding(full, path)
    # the uncompressed little-endian single-sample images with every bit stored are read (implicit VR and padded too);
    # colour, 12 of 16 bits, 32 bits, 1 bit, cut short, a bad value, no image, compressed: declined, pydicom reads them
    assert read == {"CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm",
                    "examples_palette.dcm"}
    assert {"MR_truncated.dcm", "badVR.dcm", "examples_overlay.dcm", "rtdose.dcm", "SC_rgb_small_odd.dcm",
            "rtstruct.dcm", "JPEG2000.dcm"} <= declined


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm",
                                  "MR_truncated.dcm", "badVR.dcm", "rtstruct.dcm", "693_J2KI.dcm"])
def test_a_volume_opened_quickly_is_the_volume_pydicom_opens(tmp_path, name):
    source = get_testdata_file(name)
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(source, folder / name)
    try:
        slow = load_folder(folder, fast=False)
    except Exception as exc:  # noqa: BLE001 - a file pydicom's path refuses must be refused the same way
        with pytest.raises(type(exc)) as again:
            load_folder(folder)
        assert str(again.value) == str(exc)
        return
    fast = load_folder(folder)
    _equal(fast, slow)


def _equal(fast, slow):
    assert np.array_equal(fast.values(), slow.values(), equal_nan=True)
    assert np.array_equal(fast.affine, slow.affine) and fast.instances == slow.instances
    for attribute in ("modality", "units", "series_uid", "study_uid", "frame_of_reference_uid", "description",
                      "window", "voi_function", "inverted", "padding", "echo", "rescales", "slope", "intercept",
                      "slice_spacing_from_thickness"):
        assert getattr(fast, attribute) == getattr(slow, attribute), attribute
    assert fast.header == slow.header


def test_phantoms_open_the_same_either_way(tmp_path):
    ct_spheres(tmp_path / "ct", [((0.0, 0.0, 40.0), 10.0, 1300.0)], slope=2.0, intercept=-1024.0, reverse=True)
    _equal(load_folder(tmp_path / "ct"), load_folder(tmp_path / "ct", fast=False))


def test_files_it_does_not_read_are_declined_not_guessed(tmp_path):
    ct_spheres(tmp_path / "ct", [], shape=(2, 16, 16))
    path = sorted((tmp_path / "ct").iterdir())[0]
    assert quick.read(path) is not None
    data = path.read_bytes()
    cases = {"no preamble": data[128:], "cut short": data[:-100], "cut in the header": data[:400]}
    ds = pydicom.dcmread(path)
    ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(0x0E, "FL", 0.5)
    ds.save_as(tmp_path / "philips.dcm", enforce_file_format=True)
    cases["philips private tags"] = (tmp_path / "philips.dcm").read_bytes()
    ds = pydicom.dcmread(path)
    ds.BitsStored = 12
    ds.save_as(tmp_path / "twelve.dcm", enforce_file_format=True)
    cases["12 of 16 bits"] = (tmp_path / "twelve.dcm").read_bytes()
    for what, content in cases.items():
        (tmp_path / "case.dcm").write_bytes(content)
        assert quick.read(tmp_path / "case.dcm") is None, what


# --- after review: files a scanner or PACS could write that pydicom reads differently ------------------------------

def _slice(tmp_path):
    ct_spheres(tmp_path / "base", [], shape=(1, 8, 8), slope=2.0, intercept=-1024.0)
    return sorted((tmp_path / "base").iterdir())[0]


def _element(group, element, vr, value):
    if vr in (b"SQ", b"OB", b"OW", b"UN", b"UT"):
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _insert_before(data, tag, extra):
    at = data.index(struct.pack("<HH", *tag), 132)
    return data[:at] + extra + data[at:]


def _variants(path):
    data = path.read_bytes()
    ds = pydicom.dcmread(path)
    without_slope = ds.copy()
    del without_slope.RescaleSlope
    buffer = io.BytesIO()
    without_slope.save_as(buffer, enforce_file_format=True)
    undefined_sq = struct.pack("<HH2sHI", 0x0028, 0x1053, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return {
        "an element after the pixel data": buffer.getvalue() + _element(0x0028, 0x1053, b"DS", b"3 "),
        "a needed value of undefined length": _insert_before(buffer.getvalue(), (0x0028, 0x2110), undefined_sq)
        if b"\x28\x00\x10\x21" in buffer.getvalue() else _insert_before(buffer.getvalue(), (0x7FE0, 0x0010),
                                                                          undefined_sq),
        "an item delimiter at the top level": _insert_before(data, (0x0028, 0x0002),
                                                             struct.pack("<HHI", 0xFFFE, 0xE00D, 0)),
        "a value representation that is not two capitals": _insert_before(
            data, (0x0010, 0x0010), _element(0x0009, 0x1010, b"??", b"abcd")),
        "bytes after the pixel data": data + b"\xff" * 13,
        "a modality with a leading space": data.replace(b"CS\x02\x00CT", b"CS\x04\x00 CT ", 1),
        "two modalities": data.replace(b"CS\x02\x00CT", b"CS\x06\x00CT\\MR ", 1),
    }


@pytest.mark.parametrize("what", ["an element after the pixel data", "a needed value of undefined length",
                                  "an item delimiter at the top level",
                                  "a value representation that is not two capitals", "bytes after the pixel data",
                                  "a modality with a leading space", "two modalities"])
def test_files_pydicom_reads_otherwise_are_declined(tmp_path, what):
    case = tmp_path / "case.dcm"
    case.write_bytes(_variants(_slice(tmp_path))[what])
    assert quick.read(case) is None, what


def test_trailing_zero_padding_is_read_and_a_signed_padding_value_is_pydicoms(tmp_path):
    path = _slice(tmp_path)
    padded = tmp_path / "padded.dcm"
    padded.write_bytes(path.read_bytes() + b"\x00" * 6)
    assert quick.read(padded) is not None
    ds = pydicom.dcmread(path)
    ds.add_new(0x00280120, "SS", -2000)
    ds.save_as(tmp_path / "ss.dcm", enforce_file_format=True)
    assert quick.read(tmp_path / "ss.dcm").get("PixelPaddingValue") == -2000 == \
        pydicom.dcmread(tmp_path / "ss.dcm").PixelPaddingValue
    ds.Rows = None  # present, empty: pydicom's path says what is missing
    ds.save_as(tmp_path / "norows.dcm", enforce_file_format=True)
    assert quick.read(tmp_path / "norows.dcm") is None
