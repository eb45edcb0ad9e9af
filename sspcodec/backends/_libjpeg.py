"""Shared plumbing for the back-ends built on ``jpeglib`` (turbo, mozjpeg).

jpeglib only reads and writes *files* and keeps the selected libjpeg flavour in
process-global state, so every call goes through :func:`libjpeg` (a lock plus
the version switch) and :func:`scratch_dir` (a private temporary folder that is
always removed, so nothing is ever written beside the caller's files).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .markers import jfif_component_ids

#: libjpeg flavours bundled with jpeglib 1.0.2 that we rely on.
TURBO_VERSION = "turbo210"
MOZJPEG_VERSION = "mozjpeg403"

#: jpeglib switches the library globally; serialise all use of it.
_LOCK = threading.RLock()

#: (vertical, horizontal) luma sampling factors per chroma subsampling mode.
SUBSAMPLING_FACTORS: dict[str, tuple[int, int]] = {
    "4:4:4": (1, 1),
    "4:2:2": (1, 2),
    "4:2:0": (2, 2),
    "4:4:0": (2, 1),
}


@contextlib.contextmanager
def libjpeg(version: str) -> Iterator[None]:
    """Run a block with jpeglib switched to *version*, thread-safely."""
    import jpeglib

    with _LOCK, jpeglib.version(version):
        yield


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private temporary folder, removed afterwards (jpeglib needs paths)."""
    with tempfile.TemporaryDirectory(prefix="sspcodec-") as tmp:
        yield Path(tmp)


def samp_factor(subsampling: str) -> np.ndarray:
    """jpeglib's ``[[Yv, Yh], [Cbv, Cbh], [Crv, Crh]]`` for a ``J:a:b`` name."""
    try:
        v, h = SUBSAMPLING_FACTORS[subsampling]
    except KeyError:
        valid = ", ".join(SUBSAMPLING_FACTORS)
        raise ValueError(
            f"unsupported chroma subsampling {subsampling!r}; use one of: {valid}"
        ) from None
    return np.array([[v, h], [1, 1], [1, 1]], dtype=np.int32)


def as_encoder_input(image: np.ndarray) -> np.ndarray:
    """Validate and normalise pixels to HxWx3 (colour) or HxWx1 (grey) uint8.

    Accepts HxW and HxWx1 (greyscale), HxWx3 (RGB) and HxWx4 (RGBA; alpha is
    dropped: compositing belongs to :func:`sspnet.files.images.read_image`).
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {arr.shape}"
        )
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"empty image of shape {arr.shape}")
    if arr.shape[0] > 65500 or arr.shape[1] > 65500:
        raise ValueError(f"image {arr.shape[1]}x{arr.shape[0]} exceeds JPEG's 65500 px limit")
    return np.ascontiguousarray(arr)


def check_quality(quality: int) -> int:
    """Reject qualities outside libjpeg's 1..100 instead of silently clipping."""
    q = int(quality)
    if q != quality or not 1 <= q <= 100:
        raise ValueError(f"quality must be an integer in 1..100, got {quality!r}")
    return q


def encode_spatial(
    version: str,
    image: np.ndarray,
    quality: int,
    *,
    subsampling: str,
    optimize: bool,
    progressive: bool,
) -> bytes:
    """Encode pixels with the given jpeglib flavour; baseline tables forced.

    ``FORCE_BASELINE`` matters: without it jpeglib lets libjpeg emit 16-bit
    quantisation tables at low qualities, which is not baseline JPEG.
    """
    import jpeglib

    pixels = as_encoder_input(image)
    q = check_quality(quality)
    factors = samp_factor(subsampling) if pixels.shape[2] == 3 else None
    flags = [
        "+FORCE_BASELINE",
        "+OPTIMIZE_CODING" if optimize else "-OPTIMIZE_CODING",
        "+PROGRESSIVE_MODE" if progressive else "-PROGRESSIVE_MODE",
    ]
    with scratch_dir() as tmp, libjpeg(version):
        out = tmp / "out.jpg"
        im = jpeglib.from_spatial(pixels)
        if factors is not None:
            im.samp_factor = factors
        im.write_spatial(str(out), qt=q, flags=flags)
        if not out.exists() or out.stat().st_size == 0:
            raise RuntimeError(f"libjpeg ({version}) failed to encode the image")
        return jfif_component_ids(out.read_bytes())  # mozjpeg numbers components from 0


def decode_spatial(version: str, data: bytes) -> np.ndarray:
    """Decode JPEG bytes with the given jpeglib flavour.

    Returns HxWx3 RGB for colour files and HxW for greyscale files.
    """
    import jpeglib

    if not data:
        raise ValueError("cannot decode empty data")
    with scratch_dir() as tmp, libjpeg(version):
        src = tmp / "in.jpg"
        src.write_bytes(bytes(data))
        try:
            im = jpeglib.read_spatial(str(src))
            pixels = np.array(im.spatial, dtype=np.uint8)
        except Exception as exc:  # jpeglib raises assorted types on bad data
            raise ValueError(f"libjpeg ({version}) could not decode the data: {exc}") from exc
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return pixels


class JpeglibBackend:
    """A back-end that is one of jpeglib's bundled libjpeg flavours (`version`)."""

    name = ""
    version = ""
    supports_dct = True

    def encode(self, rgb: np.ndarray, quality: int, *, subsampling: str = "4:2:0",
               optimize: bool = True, progressive: bool = False) -> bytes:
        """Encode with the flavour's own quantisation tables scaled to *quality*."""
        return encode_spatial(
            self.version, rgb, quality, subsampling=subsampling, optimize=optimize, progressive=progressive
        )

    def decode(self, data: bytes) -> np.ndarray:
        """Decode with the same flavour (ISLOW IDCT, fancy upsampling)."""
        return decode_spatial(self.version, data)
