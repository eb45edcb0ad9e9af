"""What an image source says besides its pixels: ICC profile, EXIF block, true greyscale.

The reader returns upright RGB pixels and what the header said; an encoder that rewrites the
image needs the rest to keep the photo's colour and metadata: the embedded ICC
profile (pixels are not colour-managed, so the profile must travel with them), the EXIF block
with its orientation reset to 1 (the reader has already rotated the pixels), and whether the
source is greyscale (so a 1-component JPEG can be written). Nothing here opens a file:
:mod:`sspcodec.source` reads it once and passes the header on.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Pillow modes of single-channel sources (alpha allowed), 1-bit to float.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION = 0x0112
#: TIFF field types an orientation value may legally be stored as (count 1), and the struct code
#: of each: BYTE, SHORT, LONG, SBYTE, UNDEFINED, SSHORT, SLONG. Readers take any of them.
_INTEGER_TYPES = {1: "B", 3: "H", 4: "I", 6: "b", 7: "B", 8: "h", 9: "i"}


@dataclass(frozen=True)
class ImageMeta:
    """Metadata of one source: `icc_profile` bytes as embedded, `exif` as a TIFF block (no "Exif"
    header) with orientation 1, `greyscale` for single-channel sources."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    greyscale: bool = False

    def stripped(self) -> ImageMeta:
        """The same source with its ICC profile and EXIF dropped (greyscale is a pixel property)."""
        return ImageMeta(greyscale=self.greyscale)


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


def meta_from_header(mode: str | None, info: Mapping[str, Any]) -> ImageMeta:
    """ICC profile, upright EXIF and greyscale-ness from what a file's header said (Pillow's
    mode and info, as :class:`sspnet.files.pixels.LoadedImage` carries them)."""
    icc = info.get("icc_profile") or None
    exif = info.get("exif")
    return ImageMeta(
        icc_profile=bytes(icc) if icc else None,
        exif=upright_exif(bytes(exif)) if exif else None,
        greyscale=mode in GREY_MODES,
    )


def array_meta(arr: np.ndarray) -> ImageMeta:
    """An array has no metadata; HxW, HxWx1 and grey+alpha HxWx2 arrays are greyscale."""
    return ImageMeta(greyscale=arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 2)))


__all__ = ["GREY_MODES", "ImageMeta", "array_meta", "meta_from_header", "upright_exif"]
