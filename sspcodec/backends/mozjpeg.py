"""mozjpeg back-end (jpeglib's bundled mozjpeg 4.0.3): trellis quantisation and
its own (ImageMagick-derived) quantisation tables, so smaller files at a given
nominal quality."""

from __future__ import annotations

import numpy as np

from ._libjpeg import MOZJPEG_VERSION, JpeglibBackend
from .dct import transcode_baseline


class MozjpegBackend(JpeglibBackend):
    """JPEG through mozjpeg.

    mozjpeg's default profile always writes a progressive scan script and
    jpeglib cannot switch that off, so for ``progressive=False`` the mozjpeg
    output is transcoded *losslessly* (same coefficients) to a sequential
    baseline file by :func:`sspcodec.backends.dct.transcode_baseline`.
    """

    name = "mozjpeg"
    version = MOZJPEG_VERSION

    def encode(self, rgb: np.ndarray, quality: int, **options) -> bytes:
        """Encode with mozjpeg; sequential baseline unless ``progressive=True``."""
        progressive = options.pop("progressive", False)
        data = super().encode(rgb, quality, progressive=True, **options)  # what mozjpeg does anyway
        if progressive:
            return data
        return transcode_baseline(data, optimize=options.get("optimize", True))
