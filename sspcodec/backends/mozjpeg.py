"""mozjpeg back-end (jpeglib's bundled mozjpeg 4.0.3): trellis quantisation and
its own (ImageMagick-derived) quantisation tables, so smaller files at a given
nominal quality."""

from __future__ import annotations

import numpy as np

from ._libjpeg import MOZJPEG_VERSION, decode_spatial, encode_spatial


class MozjpegBackend:
    """JPEG through mozjpeg.

    mozjpeg's default profile always writes a progressive scan script and
    jpeglib cannot switch that off, so for ``progressive=False`` the mozjpeg
    output is transcoded *losslessly* (same coefficients) to a sequential
    baseline file by :func:`sspcodec.blocks.transcode_baseline`.
    """

    name = "mozjpeg"
    supports_dct = True

    def encode(
        self,
        rgb: np.ndarray,
        quality: int,
        *,
        subsampling: str = "4:2:0",
        optimize: bool = True,
        progressive: bool = False,
    ) -> bytes:
        """Encode with mozjpeg; sequential baseline unless *progressive*."""
        data = encode_spatial(
            MOZJPEG_VERSION,
            rgb,
            quality,
            subsampling=subsampling,
            optimize=optimize,
            progressive=True,  # what mozjpeg does anyway; be explicit
        )
        if progressive:
            return data
        from ..blocks import transcode_baseline  # lazy: blocks imports us

        return transcode_baseline(data, optimize=optimize)

    def decode(self, data: bytes) -> np.ndarray:
        """Decode with mozjpeg's decoder (libjpeg-turbo derived)."""
        return decode_spatial(MOZJPEG_VERSION, data)
