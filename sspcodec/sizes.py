"""Edge I/O of the codec: byte sizes from users, JPEG bytes back to pixels.

Reading images and writing files atomically are shared with sspnet and live in
:mod:`sspnet.files.images`; they are re-exported here for the codec's callers.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np

from sspnet.files.images import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    UnsafeWriteError,
    read_image,
    write_bytes_atomic,
)

# --------------------------------------------------------------------------
# sizes
# --------------------------------------------------------------------------
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$")


def shorten(value: object) -> str:
    """A value for an error line: its repr, cut in the middle when long (a 400-digit number)."""
    r = repr(value)
    return r if len(r) <= 40 else f"{r[:18]}...{r[-12:]} ({len(r)} characters)"


def parse_size(text: str | int) -> int:
    """Parse a byte size such as ``"150KB"``, ``"1.5 MiB"`` or ``"2048"``.

    Decimal units are powers of 1000 (KB, MB, GB), binary ones powers of 1024
    (KiB, MiB, GiB); case is ignored and a bare number means bytes. Ambiguous
    shorthands like ``"K"`` or ``"M"`` are refused rather than guessed.
    Fractions are rounded to whole bytes; the result must be positive.
    """
    if isinstance(text, bool):
        raise TypeError("size must be a string or an integer, not bool")
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE_RE.match(str(text))
        unit = m.group(2).lower() if m else None
        if not m or unit not in _UNITS:
            valid = "B, KB, KiB, MB, MiB, GB, GiB"
            raise ValueError(f"cannot parse size {shorten(text)}: expected a number with an optional unit ({valid})")
        number = float(m.group(1))  # 400 digits give inf, which round() cannot take
        if not math.isfinite(number * _UNITS[unit]):
            raise ValueError(f"size {shorten(text)} is far too large")
        value = round(number * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"size must be positive, got {shorten(text)}")
    return value


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageReadError",
    "UnsafeWriteError",
    "decode_jpeg",
    "parse_size",
    "read_image",
    "shorten",
    "write_bytes_atomic",
]


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> HxWx3 uint8 RGB, in memory: what a viewer shows (libjpeg-turbo's default
    decode, as Pillow's; greyscale replicated). OpenCV decodes into one array and the channels
    are swapped in place, so a large image costs one full-size allocation, not Pillow's three."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None:
        raise ValueError("the data is not a decodable JPEG")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB, dst=arr)
