"""libjpeg-turbo back-end (jpeglib's bundled build): the default, fast and
bit-exact with the decoders people actually use."""

from __future__ import annotations

import numpy as np

from ._libjpeg import TURBO_VERSION, decode_spatial, encode_spatial


class TurboBackend:
    """Baseline/progressive JPEG through libjpeg-turbo 2.1 (via jpeglib)."""

    name = "turbo"
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
        """Encode with the IJG standard tables scaled to *quality*."""
        return encode_spatial(
            TURBO_VERSION,
            rgb,
            quality,
            subsampling=subsampling,
            optimize=optimize,
            progressive=progressive,
        )

    def decode(self, data: bytes) -> np.ndarray:
        """Decode with libjpeg-turbo (ISLOW IDCT, fancy upsampling)."""
        return decode_spatial(TURBO_VERSION, data)
