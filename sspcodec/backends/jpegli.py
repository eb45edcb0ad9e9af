"""jpegli back-end via the optional ``pyjpegli`` wheel (Google's jpegli:
adaptive quantisation, better quality per byte, still standard JPEG)."""

from __future__ import annotations

import io

import numpy as np

from ._libjpeg import as_encoder_input, check_quality
from .base import BackendUnavailableError

INSTALL_HINT = "pip install pyjpegli==0.3.2"


def _import_pyjpegli():
    try:
        import pyjpegli
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the 'jpegli' back-end needs the optional package pyjpegli: {INSTALL_HINT}"
        ) from exc
    return pyjpegli


class JpegliBackend:
    """JPEG through jpegli.

    pyjpegli 0.3.2 exposes only RGB + quality: its files are always baseline,
    4:2:0 and Huffman-optimised. Other ``subsampling`` values and
    ``progressive=True`` are refused rather than silently ignored;
    ``optimize`` is accepted but has no effect. Greyscale input is encoded as
    RGB with equal channels.
    """

    name = "jpegli"
    supports_dct = True

    def __init__(self) -> None:
        self._lib = _import_pyjpegli()

    def encode(
        self,
        rgb: np.ndarray,
        quality: int,
        *,
        subsampling: str = "4:2:0",
        optimize: bool = True,
        progressive: bool = False,
    ) -> bytes:
        """Encode with jpegli at *quality* (jpegli's own quality scale)."""
        if subsampling != "4:2:0":
            raise ValueError(
                f"the jpegli back-end (pyjpegli) only writes 4:2:0, not {subsampling!r}"
            )
        if progressive:
            raise ValueError("the jpegli back-end (pyjpegli) cannot write progressive JPEG")
        pixels = as_encoder_input(rgb)
        q = check_quality(quality)
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        h, w = pixels.shape[:2]
        return bytes(self._lib.encode(np.ascontiguousarray(pixels), w, h, quality=q))

    def decode(self, data: bytes) -> np.ndarray:
        """Decode with jpegli; HxW for greyscale files, like the other back-ends."""
        if not data:
            raise ValueError("cannot decode empty data")
        try:
            raw, w, h = self._lib.decode(bytes(data))
        except RuntimeError as exc:
            raise ValueError(f"jpegli could not decode the data: {exc}") from exc
        rgb = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3).copy()
        if _is_greyscale_jpeg(data):
            return rgb[:, :, 0].copy()
        return rgb


def _is_greyscale_jpeg(data: bytes) -> bool:
    """Header-only check (Pillow parses just the markers) for 1-component files."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.mode == "L"
    except Exception:  # not our job to validate here; decode already succeeded
        return False
