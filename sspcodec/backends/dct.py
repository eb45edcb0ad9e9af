"""DCT-domain JPEG I/O: the quantised coefficients of a Huffman JPEG, read once and written back.

The requantiser (:mod:`sspcodec.quant`) only changes coefficient arrays; reading them and writing
them as a file is jpeglib's job and lives here, next to the pixel encoders. Everything runs under
libjpeg-turbo 2.1, so a rewrite is lossless (same coefficients, same tables) and the output is
sequential baseline with 8-bit tables and (optionally) optimised Huffman tables, whatever scan
structure the input had (mozjpeg writes progressive files).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._libjpeg import TURBO_VERSION, libjpeg, scratch_dir
from .markers import jfif_component_ids

Component = Literal["luma", "chroma"]


@dataclass(frozen=True)
class DctPlane:
    """One colour component of a JPEG in the DCT domain."""

    name: str  # "Y", "Cb" or "Cr"
    coeffs: np.ndarray  # (bh, bw, 8, 8) int16 quantised coefficients, natural (row-major) order
    qt: np.ndarray  # (8, 8) quantisation table of this component, natural order
    component: Component


class DctJpeg:
    """The quantised DCT of one JPEG: its planes, and a writer for new coefficients.

    `planes` are Y (and Cb, Cr for colour files); `chroma_factor` is (vertical, horizontal) luma
    blocks per chroma block, e.g. (2, 2) for 4:2:0. Markers other than the JFIF APP0 (EXIF, ICC,
    comments) are kept and written back as read.
    """

    def __init__(self, jpeg: Any) -> None:
        self._jpeg = jpeg  # jpeglib.DCTJPEG, loaded
        planes = [DctPlane("Y", np.asarray(jpeg.Y), jpeg.get_component_qt(0), "luma")]
        self.chroma_factor = (1, 1)
        if jpeg.has_chrominance:
            sf = np.asarray(jpeg.samp_factor)
            self.chroma_factor = (int(sf[0, 0] // sf[1, 0]), int(sf[0, 1] // sf[1, 1]))
            planes += [
                DctPlane(name, np.asarray(getattr(jpeg, name)), jpeg.get_component_qt(idx), "chroma")
                for idx, name in ((1, "Cb"), (2, "Cr"))
            ]
        self.planes: tuple[DctPlane, ...] = tuple(planes)

    @property
    def luma_grid(self) -> tuple[int, int]:
        """Luma 8x8 blocks (rows, columns), MCU padding blocks included."""
        return self.planes[0].coeffs.shape[:2]

    def luma_only(self) -> DctJpeg:
        """The luma plane alone, as the DCT of a 1-component (greyscale) JPEG of the same size and
        luma table. pyjpegli writes a grey source as three components whose chroma is all zero,
        so dropping it loses nothing; a file that is already greyscale is returned as is."""
        if len(self.planes) == 1:
            return self
        import jpeglib

        y = self.planes[0]
        with libjpeg(TURBO_VERSION):
            grey = jpeglib.from_dct(Y=y.coeffs.copy(), qt=y.qt[None].astype(np.uint16))
        grey.height, grey.width = self._jpeg.height, self._jpeg.width
        return DctJpeg(grey)

    def write(self, coeffs: Sequence[np.ndarray] | None = None, *, optimize: bool = True) -> bytes:
        """Baseline JPEG bytes with *coeffs* (one array per plane, same shapes) in place of the
        file's own; None writes the coefficients as read (a lossless transcode)."""
        if coeffs is not None and len(coeffs) != len(self.planes):
            raise ValueError(f"expected {len(self.planes)} coefficient planes, got {len(coeffs)}")
        jpeg = self._jpeg
        with scratch_dir() as tmp, libjpeg(TURBO_VERSION):
            dst = tmp / "out.jpg"
            try:
                for plane, new in zip(self.planes, () if coeffs is None else coeffs):
                    setattr(jpeg, plane.name, new)
                jpeg.write_dct(str(dst), flags=["+OPTIMIZE_CODING" if optimize else "-OPTIMIZE_CODING"])
            finally:
                for plane in self.planes:
                    setattr(jpeg, plane.name, plane.coeffs)
            return _read_output(dst)


def read_dct(data: bytes) -> DctJpeg:
    """Read the quantised coefficients, tables and sampling factors of any Huffman JPEG
    (baseline or progressive). Files with 16-bit tables are refused: they cannot be baseline."""
    import jpeglib

    with scratch_dir() as tmp, libjpeg(TURBO_VERSION):
        src = tmp / "in.jpg"
        src.write_bytes(bytes(data))
        jpeg = jpeglib.read_dct(str(src))
        if np.asarray(jpeg.qt).max() > 255:
            raise ValueError("the JPEG uses 16-bit quantisation tables; it cannot be written as baseline")
        jpeg.load()
    _drop_jfif_markers(jpeg)
    return DctJpeg(jpeg)


def transcode_baseline(data: bytes, *, optimize: bool = True) -> bytes:
    """Losslessly rewrite any Huffman JPEG as sequential baseline: same coefficients and tables,
    new scan structure and (optionally) optimised Huffman tables. Turns mozjpeg's progressive
    output into baseline."""
    return read_dct(data).write(optimize=optimize)


def _drop_jfif_markers(jpeg: Any) -> None:
    """Forget the saved JFIF APP0 segment before writing.

    libjpeg writes its own JFIF header when compressing and jpeglib re-emits the saved markers
    too, which would duplicate APP0. Only that segment is dropped: any other saved marker (EXIF,
    ICC profile, comment) is written back. The encoder's base JPEGs are made from pixels and
    carry no such markers; the API inserts the source's ICC profile and EXIF into the final
    file only (:func:`sspcodec.backends.markers.insert_segments`).
    """
    import jpeglib

    jpeg.markers = [
        m
        for m in jpeg.markers or []
        if not (m.type == jpeglib.JPEG_APP0 and bytes(m.content[:5]) == b"JFIF\x00")
    ]


def _read_output(path: Path) -> bytes:
    """The written file, with JFIF component ids (jpeglib's DCT writer numbers them from 0)."""
    if not path.exists() or path.stat().st_size == 0:
        raise RuntimeError("libjpeg failed to write the JPEG")
    return jfif_component_ids(path.read_bytes())


__all__ = ["DctJpeg", "DctPlane", "read_dct", "transcode_baseline"]
