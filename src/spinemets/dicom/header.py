"""The few header values a volume needs, read straight from a DICOM file's bytes (issue 14, "loading a series at least
as fast as a plain pydicom dcmread loop").

Only the common case is read here: a file with its preamble, uncompressed little-endian pixels (explicit or implicit
VR), 8 or 16 bits per pixel with every bit stored, one sample per pixel, pixel data of defined length.  Anything else
(another transfer syntax, a Modality LUT, Philips private tags, a value this reader does not expect, a file cut
short, any parsing surprise) gives None and the caller reads the file with pydicom instead: this reader never
guesses.  The values are those pydicom gives (tests compare them on pydicom's own test files and on the phantoms).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
PIXEL_DATA = 0x7FE00010
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
CHUNK = 16384
DS_NUMBER = re.compile(r" *[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? *\Z")
IS_NUMBER = re.compile(r" *[+-]?\d+ *\Z")
PLAIN_TEXT = re.compile(r"[!-\[\]-~]([ -\[\]-~]*[!-\[\]-~])?\Z")  # printable ASCII, no backslash, no edge spaces
SIGNED_OK = {"PixelPaddingValue", "PixelPaddingRangeLimit"}
# tag -> (keyword, value representation) of what a volume reads
NEEDED: dict[int, tuple[str, str]] = {
    0x00080016: ("SOPClassUID", "UI"), 0x00080018: ("SOPInstanceUID", "UI"), 0x00080060: ("Modality", "CS"),
    0x00180050: ("SliceThickness", "DS"), 0x00180081: ("EchoTime", "DS"), 0x00180084: ("ImagingFrequency", "DS"),
    0x00180087: ("MagneticFieldStrength", "DS"), 0x00180088: ("SpacingBetweenSlices", "DS"),
    0x0020000D: ("StudyInstanceUID", "UI"), 0x0020000E: ("SeriesInstanceUID", "UI"),
    0x00200013: ("InstanceNumber", "IS"), 0x00200032: ("ImagePositionPatient", "DS"),
    0x00200037: ("ImageOrientationPatient", "DS"), 0x00200052: ("FrameOfReferenceUID", "UI"),
    0x00280002: ("SamplesPerPixel", "US"), 0x00280004: ("PhotometricInterpretation", "CS"),
    0x00280008: ("NumberOfFrames", "IS"), 0x00280010: ("Rows", "US"), 0x00280011: ("Columns", "US"),
    0x00280030: ("PixelSpacing", "DS"), 0x00280100: ("BitsAllocated", "US"), 0x00280101: ("BitsStored", "US"),
    0x00280103: ("PixelRepresentation", "US"), 0x00280120: ("PixelPaddingValue", "US"),
    0x00280121: ("PixelPaddingRangeLimit", "US"), 0x00281050: ("WindowCenter", "DS"),
    0x00281051: ("WindowWidth", "DS"), 0x00281052: ("RescaleIntercept", "DS"), 0x00281053: ("RescaleSlope", "DS"),
    0x00281054: ("RescaleType", "LO"), 0x00281056: ("VOILUTFunction", "CS"),
}
REFUSED = {0x00283000}  # a Modality LUT Sequence: pydicom's path names it
REFUSED_GROUPS = {0x2005}  # Philips MR private tags (their scale slope is read by pydicom's path)


class _Unexpected(Exception):
    """Anything this reader does not read: the file goes to pydicom."""


class _Meta:
    def __init__(self, transfer_syntax: str) -> None:
        self.TransferSyntaxUID = transfer_syntax


class PixelElement:
    """The pixel data's place in the file (what pydicom calls a deferred raw element)."""

    is_raw = True
    value = None

    def __init__(self, value_tell: int, length: int) -> None:
        self.value_tell, self.length = value_tell, length


class Header:
    """A slice's header values by keyword, with the dataset access a volume uses (``get``, ``in``, attributes,
    ``file_meta.TransferSyntaxUID``, ``PixelData`` read from the file when asked, ``full()`` the whole dataset)."""

    reads_pixels_from_file = True  # each PixelData access reads the file: nothing is kept to release

    def __init__(self, path: str, values: dict[str, Any], transfer_syntax: str, pixel: PixelElement) -> None:
        self.__dict__.update(_path=path, _values=values, file_meta=_Meta(transfer_syntax), _pixel=pixel)

    def get(self, keyword: str, default: Any = None) -> Any:
        value = self._values.get(keyword, default)
        return default if value is None else value

    def __contains__(self, keyword: object) -> bool:
        return keyword == "PixelData" or keyword in self._values

    def __getattr__(self, keyword: str) -> Any:
        if keyword == "PixelData":
            with open(self._path, "rb") as fh:
                fh.seek(self._pixel.value_tell)
                return fh.read(self._pixel.length)
        if keyword in self._values and self._values[keyword] is not None:
            return self._values[keyword]
        raise AttributeError(keyword)

    def __delattr__(self, keyword: str) -> None:
        if keyword not in ("PixelData", "_pixel_array"):
            raise AttributeError(keyword)

    def __setattr__(self, keyword: str, value: Any) -> None:
        self.__dict__[keyword] = value

    def get_item(self, keyword: str, keep_deferred: bool = False) -> Any:
        if keyword == "PixelData":
            return self._pixel
        raise KeyError(keyword)  # values are parsed already: callers use get()

    def private_block(self, group: int, creator: str) -> Any:
        raise KeyError(creator)  # files with the private groups read are given to pydicom

    def full(self) -> Any:
        """The whole dataset without its pixels (patient and study for the report)."""
        import pydicom

        return pydicom.dcmread(self._path, stop_before_pixels=True)


def read(path: str | Path) -> Header | None:
    """The header of the DICOM file at *path*, or None when the file is not the common case (see the module)."""
    try:
        return _read(str(path))
    except (_Unexpected, struct.error, UnicodeDecodeError, ValueError, IndexError):
        return None


class _Buffer:
    def __init__(self, fh: Any) -> None:
        self.fh, self.data = fh, fh.read(CHUNK)

    def need(self, end: int) -> None:
        while len(self.data) < end:
            more = self.fh.read(max(CHUNK, end - len(self.data)))
            if not more:
                raise _Unexpected("the file ends inside its header")
            self.data += more


def _read(path: str) -> Header:
    import os

    size = os.stat(path).st_size
    with open(path, "rb") as fh:
        buf = _Buffer(fh)
        buf.need(132)
        if buf.data[128:132] != b"DICM":
            raise _Unexpected("no preamble")
        pos, transfer_syntax = 132, None
        while True:  # the file meta information: explicit VR little endian, group 2
            buf.need(pos + 8)
            group, = struct.unpack_from("<H", buf.data, pos)
            if group != 2:
                break
            _check_vr(bytes(buf.data[pos + 4:pos + 6]))
            tag, length, start = _explicit(buf, pos)
            buf.need(start + length)
            if tag == 0x00020010:
                transfer_syntax = buf.data[start:start + length].rstrip(b"\x00 ").decode("ascii")
            pos = start + length
        if transfer_syntax not in (EXPLICIT, IMPLICIT):
            raise _Unexpected("transfer syntax")
        implicit = transfer_syntax == IMPLICIT
        values: dict[str, Any] = {}
        previous = -1
        while True:
            buf.need(pos + 8)
            tag, length, start, vr = _element(buf, pos, implicit)
            if tag <= previous or tag >> 16 == 0xFFFE:
                raise _Unexpected("elements out of order, repeated, or a delimiter at the top level")
            previous = tag
            _check_vr(vr)
            if tag >> 16 in REFUSED_GROUPS or tag in REFUSED:
                raise _Unexpected("read by pydicom")
            if tag == PIXEL_DATA:
                if length == UNDEFINED or start + length > size or length == 0:
                    raise _Unexpected("pixel data")
                pixel = PixelElement(start, length)
                break
            if tag in NEEDED and length == UNDEFINED:
                raise _Unexpected("a needed value of undefined length")
            if length == UNDEFINED:
                if vr not in (None, b"SQ"):
                    raise _Unexpected("an undefined length outside a sequence")
                pos = _skip_sequence(buf, start, implicit)
                continue
            if tag in NEEDED:
                keyword, expected = NEEDED[tag]
                if vr is not None and vr != expected.encode() and not (keyword in SIGNED_OK and vr == b"SS"):
                    raise _Unexpected("an unexpected value representation")
                buf.need(start + length)
                values[keyword] = _value(buf.data[start:start + length], expected, signed=vr == b"SS")
            pos = start + length
        fh.seek(pixel.value_tell + pixel.length)
        tail = fh.read()
        if tail.strip(b"\x00"):
            _check_tail(tail)
    if implicit and values.get("PixelRepresentation") == 1:  # pydicom reads the ambiguous US or SS as SS
        for keyword in SIGNED_OK:
            if isinstance(values.get(keyword), int):
                values[keyword] = struct.unpack("<h", struct.pack("<H", values[keyword]))[0]
    if not values.get("SOPClassUID") or not values.get("SOPInstanceUID"):
        raise _Unexpected("no SOP class or instance: pydicom's path names the damage")
    bits, stored = values.get("BitsAllocated"), values.get("BitsStored")
    if bits not in (8, 16) or stored != bits or values.get("SamplesPerPixel", 1) != 1:
        raise _Unexpected("pixels read by pydicom's handler")
    rows, cols = values.get("Rows"), values.get("Columns")
    if not isinstance(rows, int) or not isinstance(cols, int) or values.get("PixelRepresentation") not in (0, 1) \
            or pixel.length < rows * cols * bits // 8:
        raise _Unexpected("no image or pixel data shorter than the image: pydicom's path names it")
    return Header(path, values, transfer_syntax, pixel)


def _check_vr(vr: bytes | None) -> None:
    if vr is not None and not (0x41 <= vr[0] <= 0x5A and 0x41 <= vr[1] <= 0x5A):
        raise _Unexpected("a value representation pydicom reads as implicit")


def _check_tail(tail: bytes) -> None:
    """Only data set trailing padding or digital signatures after the pixel data (pydicom reads everything)."""
    pos, previous = 0, PIXEL_DATA
    while pos < len(tail):
        if pos + 12 > len(tail):
            raise _Unexpected("bytes after the pixel data")
        group, element = struct.unpack_from("<HH", tail, pos)
        tag, vr = group << 16 | element, tail[pos + 4:pos + 6]
        if vr in LONG_VRS:
            length, start = struct.unpack_from("<I", tail, pos + 8)[0], pos + 12
        else:
            length, start = struct.unpack_from("<H", tail, pos + 6)[0], pos + 8
        if tag <= previous or group not in (0xFFFA, 0xFFFC) or length == UNDEFINED or start + length > len(tail):
            raise _Unexpected("elements after the pixel data")
        previous, pos = tag, start + length


def _explicit(buf: _Buffer, pos: int) -> tuple[int, int, int]:
    group, element = struct.unpack_from("<HH", buf.data, pos)
    vr = bytes(buf.data[pos + 4:pos + 6])
    if vr in LONG_VRS:
        buf.need(pos + 12)
        return group << 16 | element, struct.unpack_from("<I", buf.data, pos + 8)[0], pos + 12
    return group << 16 | element, struct.unpack_from("<H", buf.data, pos + 6)[0], pos + 8


def _element(buf: _Buffer, pos: int, implicit: bool) -> tuple[int, int, int, bytes | None]:
    group, element = struct.unpack_from("<HH", buf.data, pos)
    tag = group << 16 | element
    if implicit or tag in (ITEM, ITEM_END, SEQUENCE_END):
        return tag, struct.unpack_from("<I", buf.data, pos + 4)[0], pos + 8, None
    tag, length, start = _explicit(buf, pos)
    return tag, length, start, bytes(buf.data[pos + 4:pos + 6])


def _skip_sequence(buf: _Buffer, pos: int, implicit: bool) -> int:
    """Past a sequence of undefined length (its items and their elements, nested sequences too)."""
    while True:
        buf.need(pos + 8)
        tag, length, start, _ = _element(buf, pos, True)
        if tag == SEQUENCE_END:
            return start
        if tag != ITEM:
            raise _Unexpected("not an item inside a sequence")
        if length != UNDEFINED:
            pos = start + length
            continue
        pos = start
        while True:  # an item of undefined length: its elements up to the item's end
            buf.need(pos + 8)
            tag, length, start, vr = _element(buf, pos, implicit)
            _check_vr(vr)
            if tag == ITEM_END:
                pos = start
                break
            if length == UNDEFINED:
                if vr not in (None, b"SQ"):
                    raise _Unexpected("an undefined length outside a sequence")
                pos = _skip_sequence(buf, start, implicit)
            else:
                pos = start + length


def _value(raw: bytes, vr: str, signed: bool = False) -> Any:
    if not raw:
        return None
    if vr == "US":
        if len(raw) % 2:
            raise _Unexpected("an odd length")
        numbers = struct.unpack(f"<{len(raw) // 2}{'h' if signed else 'H'}", raw)
        return numbers[0] if len(numbers) == 1 else list(numbers)
    text = raw.rstrip(b"\x00 ").decode("ascii")
    if vr in ("DS", "IS"):
        parts = text.split("\\")
        if not all((DS_NUMBER if vr == "DS" else IS_NUMBER).match(p) for p in parts):
            raise _Unexpected("not a plain decimal number")
        numbers = [float(p) if vr == "DS" else int(p) for p in parts]
        return numbers[0] if len(numbers) == 1 else numbers
    if text and not PLAIN_TEXT.match(text):
        raise _Unexpected("several values, edge spaces or control characters")
    return text
