"""What an image source says besides its pixels: ICC profile, EXIF, XMP, IPTC, comments, greyscale.

The reader returns upright RGB pixels and what the header said; an encoder that rewrites the
image needs the rest to keep the photo's colour and metadata: the embedded ICC
profile (pixels are not colour-managed, so the profile must travel with them), the EXIF block
with its orientation reset to 1 (the reader has already rotated the pixels), and whether the
source is greyscale (so a 1-component JPEG can be written). Nothing here opens a file:
:mod:`sspcodec.source` reads it once and passes the header on.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .backends.markers import (
    APP1,
    APP13,
    COM,
    EXIF_TAG,
    MAX_SEGMENT_PAYLOAD,
    PHOTOSHOP_TAG,
    XMP_EXTENSION_TAG,
    XMP_TAG,
    MarkerError,
    segments,
)

#: Pillow modes of single-channel sources (alpha allowed), 1-bit to float.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION = 0x0112
#: TIFF field types an orientation value may legally be stored as (count 1), and the struct code
#: of each: BYTE, SHORT, LONG, SBYTE, UNDEFINED, SSHORT, SLONG. Readers take any of them.
_INTEGER_TYPES = {1: "B", 3: "H", 4: "I", 6: "b", 7: "B", 8: "h", 9: "i"}


#: The metadata blocks a JPEG can carry, by the names `--keep` and `keep=` use.
BLOCKS = ("icc", "exif", "xmp", "iptc", "comment")


@dataclass(frozen=True)
class ImageMeta:
    """Metadata of one source: `icc_profile` bytes as embedded, `exif` as a TIFF block (no "Exif"
    header) with orientation 1, `greyscale` for single-channel sources; `xmp`, `iptc` and
    `comments` as the JPEG segment payloads that carry them (APP1 XMP packet then any Extended
    XMP chunks, APP13 Photoshop resources, COM), byte for byte as the source held them.
    `dropped` says what could not be carried, in words."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    greyscale: bool = False
    xmp: tuple[bytes, ...] = ()
    iptc: tuple[bytes, ...] = ()
    comments: tuple[bytes, ...] = ()
    dropped: tuple[str, ...] = ()

    def kept(self, keep: frozenset[str]) -> ImageMeta:
        """Only the blocks named in `keep` (a subset of :data:`BLOCKS`); greyscale is a pixel
        property and stays."""
        return replace(
            self, icc_profile=self.icc_profile if "icc" in keep else None, exif=self.exif if "exif" in keep else None,
            xmp=self.xmp if "xmp" in keep else (), iptc=self.iptc if "iptc" in keep else (),
            comments=self.comments if "comment" in keep else (),
        )

    def stripped(self) -> ImageMeta:
        """The same source with every metadata block dropped."""
        return self.kept(frozenset())

    def others(self) -> list[tuple[int, bytes]]:
        """(marker, payload) of the blocks beyond ICC and EXIF, in the order they are written."""
        return ([(APP1, p) for p in self.xmp] + [(APP13, p) for p in self.iptc]
                + [(COM, p) for p in self.comments])

    def names(self) -> list[str]:
        """The names of the blocks present (for reports and JSON)."""
        present = (self.icc_profile, self.exif, self.xmp, self.iptc, self.comments)
        return [name for name, block in zip(BLOCKS, present) if block]


def upright_exif(block: bytes) -> bytes | None:
    """An EXIF block (TIFF bytes, optionally behind an "Exif" header) with its IFD0 orientation
    tag set to 1 whatever integer type stores it (SHORT as usual; LONG, BYTE and the signed
    types are legal TIFF too, and a reset of SHORT alone left viewers rotating the upright
    pixels again), either byte order; every other byte kept. None when the block is not
    parseable TIFF."""
    tiff = block[len(_EXIF_HEADER) :] if block.startswith(_EXIF_HEADER) else block
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"
    magic, ifd = struct.unpack(order + "HI", tiff[2:8])
    if magic != 42 or ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    if ifd + 2 + 12 * count > len(tiff):
        return None
    out = bytearray(tiff)
    for k in range(count):
        at = ifd + 2 + 12 * k
        tag, kind, n = struct.unpack(order + "HHI", tiff[at : at + 8])
        if tag == _ORIENTATION and kind in _INTEGER_TYPES and n == 1:
            code = _INTEGER_TYPES[kind]  # the value sits left-justified in the 4-byte field
            out[at + 8 : at + 12] = struct.pack(order + code, 1).ljust(4, b"\x00")
    return bytes(out)


def meta_from_header(mode: str | None, info: Mapping[str, Any], data: bytes | None = None) -> ImageMeta:
    """Every metadata block from what a file's header said (Pillow's mode and info, as
    :class:`sspnet.files.pixels.LoadedImage` carries them) and, for a JPEG, its raw bytes `data`:
    XMP, Extended XMP, IPTC and comments are then copied segment by segment, byte-exact. Other
    formats give their XMP packet (Pillow's ``xmp``) and text comment; a packet too large for one
    JPEG segment is dropped and said in `dropped` (writing it as Extended XMP would rewrite it)."""
    icc = info.get("icc_profile") or None
    exif = info.get("exif")
    base = ImageMeta(
        icc_profile=bytes(icc) if icc else None,
        exif=upright_exif(bytes(exif)) if exif else None,
        greyscale=mode in GREY_MODES,
    )
    base = _carriable(base)
    if data is not None and data[:2] == b"\xff\xd8":
        with contextlib.suppress(MarkerError):  # a header Pillow read but we cannot walk: use its info
            return _jpeg_blocks(base, data)
    xmp, dropped = info.get("xmp"), []
    xmp = xmp.encode("utf-8") if isinstance(xmp, str) else xmp
    packets: tuple[bytes, ...] = ()
    if xmp:
        if len(XMP_TAG) + len(xmp) <= MAX_SEGMENT_PAYLOAD:
            packets = (XMP_TAG + bytes(xmp),)
        else:
            dropped.append(f"its XMP packet ({len(xmp):,} bytes) is larger than one JPEG segment holds "
                           f"({MAX_SEGMENT_PAYLOAD - len(XMP_TAG):,}); it was not carried")
    comment = info.get("comment", info.get("Comment"))
    comment = comment.encode("utf-8") if isinstance(comment, str) else comment
    comments: tuple[bytes, ...] = ()
    if comment:
        cut = [bytes(comment[i : i + MAX_SEGMENT_PAYLOAD]) for i in range(0, len(comment), MAX_SEGMENT_PAYLOAD)]
        comments = tuple(cut)  # COM segments may repeat; a long comment continues in the next
    return replace(base, xmp=packets, comments=comments, dropped=base.dropped + tuple(dropped))


def _carriable(meta: ImageMeta) -> ImageMeta:
    """`meta` without an ICC profile or EXIF block that the output JPEG cannot carry, each said
    in `dropped`: a profile of another colour space than the RGB/grey pixels, an EXIF block
    larger than one segment."""
    icc, exif, said = meta.icc_profile, meta.exif, []
    space = icc[16:20] if icc else None
    if space is not None and space not in (b"RGB ", b"GRAY"):
        icc = None
        said.append(f"its ICC profile describes {space.decode('latin-1').strip()} colour, but the pixels were "
                    "converted to RGB; the profile was not carried")
    if exif is not None and len(EXIF_TAG) + len(exif) > MAX_SEGMENT_PAYLOAD:
        said.append(f"its EXIF block ({len(exif):,} bytes) is larger than one JPEG segment holds; it was not carried")
        exif = None
    return replace(meta, icc_profile=icc, exif=exif, dropped=meta.dropped + tuple(said))


def _jpeg_blocks(base: ImageMeta, data: bytes) -> ImageMeta:
    """XMP (and Extended XMP), Photoshop/IPTC and comment segments of a JPEG, as they are."""
    xmp, extended, iptc, comments = [], [], [], []
    for marker, start, end in segments(data, headers_only=True):
        payload = data[start + 4 : end]
        if marker == APP1 and payload.startswith(XMP_TAG):
            xmp.append(payload)
        elif marker == APP1 and payload.startswith(XMP_EXTENSION_TAG):
            extended.append(payload)
        elif marker == APP13 and payload.startswith(PHOTOSHOP_TAG):
            iptc.append(payload)
        elif marker == COM:
            comments.append(payload)
    return replace(base, xmp=tuple(xmp + extended), iptc=tuple(iptc), comments=tuple(comments))


def array_meta(arr: np.ndarray) -> ImageMeta:
    """An array has no metadata; HxW, HxWx1 and grey+alpha HxWx2 arrays are greyscale."""
    return ImageMeta(greyscale=arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 2)))


__all__ = ["BLOCKS", "GREY_MODES", "ImageMeta", "array_meta", "meta_from_header", "upright_exif"]
