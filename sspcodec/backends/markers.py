"""JPEG marker-segment surgery on finished files: JFIF component ids and APPn metadata.

libjpeg's DCT writer (jpeglib's `write_dct`) and mozjpeg number the components 0, 1, 2 where JFIF
says 1, 2, 3; :func:`jfif_component_ids` renumbers the frame header and every scan header to
match. The encoder works from pixels, so a source's ICC profile and EXIF block are inserted into
the final file here (:func:`insert_metadata`), after the JFIF APP0 as JFIF and Exif readers
expect: ICC as APP2 ``ICC_PROFILE`` chunks of at most 65,519 bytes (ICC.1 Annex B.4), EXIF as one
APP1 ``Exif`` segment. Only the header segments are parsed; entropy-coded data is skipped
byte-stuffing-aware, never decoded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
APP0, APP1, APP2, APP13, COM = 0xE0, 0xE1, 0xE2, 0xED, 0xFE
#: Start-of-frame markers (all but DHT C4, JPG C8, DAC CC).
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
#: Markers without a length field.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})

ICC_TAG = b"ICC_PROFILE\x00"
EXIF_TAG = b"Exif\x00\x00"
#: APP1 namespaces of an XMP packet and of an Extended XMP chunk (XMP Specification Part 3, 1.1.3).
XMP_TAG = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION_TAG = b"http://ns.adobe.com/xmp/extension/\x00"
#: APP13 signature of Photoshop image resources (IPTC-IIM lives in resource 0x0404).
PHOTOSHOP_TAG = b"Photoshop 3.0\x00"
#: Payload bytes of one segment: 65,535 minus the 2-byte length field.
MAX_SEGMENT_PAYLOAD = 65533
#: Profile bytes per APP2 chunk: the payload minus the tag and the two sequence bytes.
ICC_CHUNK = MAX_SEGMENT_PAYLOAD - len(ICC_TAG) - 2  # 65,519


class MarkerError(ValueError):
    """The bytes are not a JPEG this module can walk (only raised for malformed input)."""


def segments(data: bytes, headers_only: bool = False) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment, SOI to EOI; `start` is at the 0xFF, `end` past
    the segment (for SOS: past its entropy-coded data, up to the next non-RST marker).
    `headers_only`: stop before the first SOS (the metadata lies before it; no scan is walked)."""
    if data[:2] != b"\xff\xd8":
        raise MarkerError("not a JPEG: no SOI marker")
    yield SOI, 0, 2
    pos, n = 2, len(data)
    while pos < n:
        if data[pos] != 0xFF:
            raise MarkerError(f"expected a marker at byte {pos}")
        while pos + 1 < n and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 1 >= n:
            raise MarkerError("truncated marker")
        marker = data[pos + 1]
        if marker == EOI:
            yield EOI, pos, pos + 2
            return
        if marker in _STANDALONE:
            yield marker, pos, pos + 2
            pos += 2
            continue
        if pos + 4 > n:
            raise MarkerError("truncated segment length")
        end = pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if end > n:
            raise MarkerError(f"segment 0x{marker:02X} at byte {pos} runs past the end")
        if marker == SOS:
            if headers_only:
                return
            end = _scan_end(data, end)
        yield marker, pos, end
        pos = end
    raise MarkerError("no EOI marker")


def _scan_end(data: bytes, pos: int) -> int:
    """First byte after the entropy-coded data starting at `pos`: the next 0xFF that is neither
    stuffing (0xFF00) nor a restart marker (0xFFD0-D7)."""
    n = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= n:
            raise MarkerError("scan data runs past the end")
        nxt = data[pos + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            pos += 1 if nxt == 0xFF else 2
            continue
        return pos


def jfif_component_ids(data: bytes) -> bytes:
    """The same JPEG with its components numbered 1..n (JFIF) in the frame header and in every
    scan header; unchanged (the same object) when they already are."""
    out = bytearray(data)
    mapping: dict[int, int] = {}
    for marker, start, _end in segments(data):
        if marker in SOF_MARKERS:
            count = data[start + 9]
            for k in range(count):
                at = start + 10 + 3 * k
                mapping[data[at]] = k + 1
                out[at] = k + 1
            if all(old == new for old, new in mapping.items()):
                return data  # already JFIF: the scans name the same ids
        elif marker == SOS:
            count = data[start + 4]
            for k in range(count):
                at = start + 5 + 2 * k
                if data[at] not in mapping:
                    raise MarkerError(f"scan names component {data[at]}, which the frame does not have")
                out[at] = mapping[data[at]]
    return data if out == data else bytes(out)


def component_ids(data: bytes) -> list[int]:
    """The component ids of the frame header (for tests and checks)."""
    for marker, start, _end in segments(data):
        if marker in SOF_MARKERS:
            return [data[start + 10 + 3 * k] for k in range(data[start + 9])]
    raise MarkerError("no frame header")


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) > MAX_SEGMENT_PAYLOAD:
        raise MarkerError(f"a segment holds at most {MAX_SEGMENT_PAYLOAD} bytes, got {len(payload)}")
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def icc_segments(profile: bytes) -> list[bytes]:
    """APP2 segments carrying an ICC profile: chunks of at most 65,519 bytes, numbered from 1
    (ICC.1 Annex B.4 allows 255 of them)."""
    chunks = [profile[i : i + ICC_CHUNK] for i in range(0, len(profile), ICC_CHUNK)]
    if not 1 <= len(chunks) <= 255:
        raise MarkerError(f"an ICC profile of {len(profile)} bytes does not fit 255 APP2 chunks")
    return [_segment(APP2, ICC_TAG + bytes([i, len(chunks)]) + c) for i, c in enumerate(chunks, 1)]


def exif_segment(tiff: bytes) -> bytes:
    """One APP1 segment carrying an EXIF block (TIFF bytes, without the "Exif" header)."""
    return _segment(APP1, EXIF_TAG + tiff)


#: ICC data colour space (header bytes 16-19) that a JPEG of n components can use.
_ICC_SPACE = {1: b"GRAY", 3: b"RGB "}


def metadata_segments(
    icc_profile: bytes | None, exif: bytes | None, components: int = 3, others: Iterable[tuple[int, bytes]] = ()
) -> list[bytes]:
    """The segments carrying what a JPEG of `components` can carry of `icc_profile` and `exif`
    (either may be None), Exif first, then `others` as they are ((marker, payload): XMP in APP1,
    IPTC in APP13, COM comments). A profile is kept only if it describes the file's colour space
    (a CMYK source's profile would mis-colour RGB pixels) and fits 255 chunks; an EXIF block only
    if it fits one segment."""
    out = []
    if exif and len(EXIF_TAG) + len(exif) <= MAX_SEGMENT_PAYLOAD:
        out.append(exif_segment(exif))
    if icc_profile and icc_profile[16:20] == _ICC_SPACE.get(components) and len(icc_profile) <= 255 * ICC_CHUNK:
        out += icc_segments(icc_profile)
    return out + [_segment(marker, payload) for marker, payload in others]


def insert_segments(data: bytes, new: list[bytes]) -> bytes:
    """`new` segments inserted after SOI and any leading APP0 (JFIF must stay first)."""
    if not new:
        return data
    at = 2
    for marker, start, end in segments(data):
        if marker == SOI:
            continue
        if marker != APP0:
            break
        at = end if start == at else at
    return data[:at] + b"".join(new) + data[at:]


def insert_metadata(
    data: bytes, icc_profile: bytes | None = None, exif: bytes | None = None,
    others: Iterable[tuple[int, bytes]] = (),
) -> bytes:
    """The JPEG with an ICC profile, an EXIF block and `others` added (see :func:`metadata_segments`)."""
    return insert_segments(data, metadata_segments(icc_profile, exif, len(component_ids(data)), others))


__all__ = [
    "APP1",
    "APP13",
    "COM",
    "ICC_CHUNK",
    "MAX_SEGMENT_PAYLOAD",
    "PHOTOSHOP_TAG",
    "XMP_EXTENSION_TAG",
    "XMP_TAG",
    "MarkerError",
    "component_ids",
    "exif_segment",
    "icc_segments",
    "insert_metadata",
    "insert_segments",
    "jfif_component_ids",
    "metadata_segments",
    "segments",
]
