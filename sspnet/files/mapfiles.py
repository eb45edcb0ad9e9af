"""Saliency-map files: the one exception to "every image becomes RGB".

A map file is a single-channel 8- or 16-bit PNG whose values are the data, so :func:`read_map`
returns its raw levels and :func:`encode_map_png` writes them; colour conversion or EXIF
rotation would corrupt them. A raw map is ``.npy`` (float32, exact) or a 16-bit ``.png``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np

from sspnet.files.images import ImageReadError, describe_source, open_regular_file


def read_map(src: str | os.PathLike | bytes) -> np.ndarray:
    """The raw HxW levels of a greyscale map image (path or encoded bytes): uint8 or uint16.

    No RGB conversion and no EXIF rotation: a map's pixel values are data. A colour file
    whose three channels are equal is accepted as grey (alpha dropped); a real colour image
    raises :class:`ImageReadError`, as does anything unreadable. Callers scale the levels
    (to max 1, or by the bit depth's maximum).
    """
    name = describe_source(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    else:
        with open_regular_file(src, "map") as f:
            try:
                data = f.read()
            except OSError as exc:
                raise ImageReadError(f"cannot read map {name}: {exc}") from exc
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if arr is None:
        raise ImageReadError(f"cannot read map {name}: not a readable image")
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[:, :, :3]
        if not (np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 0], arr[:, :, 2])):
            raise ImageReadError(f"cannot read map {name}: a saliency map must be greyscale, got a colour image")
        arr = arr[:, :, 0]
    if arr.dtype.kind not in "uf":
        raise ImageReadError(f"cannot read map {name}: unsupported pixel type {arr.dtype}")
    return arr


def map_levels(sm: np.ndarray, bits: int = 16) -> np.ndarray:
    """A map in [0, 1] as the integer levels of a `bits`-bit file: round(clip(sm, 0, 1) * (2^bits - 1)).

    Float32 input is scaled in float32, so levels equal those of earlier files bit for bit.
    """
    if bits not in (8, 16):
        raise ValueError(f"map files are 8 or 16 bit, got {bits}")
    top, dtype = (65535, np.uint16) if bits == 16 else (255, np.uint8)
    a = np.asarray(sm)
    a = a if a.dtype.kind == "f" else a.astype(np.float64)
    return np.rint(np.clip(a, 0, 1) * top).astype(dtype)


def encode_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG bytes (in memory, for the atomic writer) of HxWx3 uint8 RGB or HxW uint8/uint16 grey."""
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    elif not (a.ndim == 2 and a.dtype in (np.uint8, np.uint16)):
        raise ValueError(f"PNG encoding takes HxWx3 uint8 RGB or HxW uint8/uint16, got {a.dtype} {a.shape}")
    ok, buf = cv2.imencode(".png", a)
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def encode_map_png(sm: np.ndarray, bits: int = 16) -> bytes:
    """Greyscale PNG of a map in [0, 1] (:func:`map_levels`); 16 bit keeps it to 1.5e-5."""
    return encode_png(map_levels(sm, bits))


RAW_MAP_SUFFIXES = (".npy", ".png")


def encode_raw_map(sm: np.ndarray, path: str | os.PathLike) -> bytes:
    """The bytes of a raw map file named *path*: ``.npy`` keeps float32 exactly, ``.png`` is 16 bit.

    Check a user's path with :func:`check_raw_map_suffix` before any work, so a bad suffix
    fails up front rather than after the model ran.
    """
    if check_raw_map_suffix(path) == ".png":
        return encode_map_png(sm, 16)
    buf = io.BytesIO()
    np.save(buf, np.asarray(sm, dtype=np.float32))
    return buf.getvalue()


def check_raw_map_suffix(path: str | os.PathLike) -> str:
    """The lower-case suffix of a raw map path; ValueError unless it is .npy or .png."""
    suffix = Path(path).suffix.lower()
    if suffix not in RAW_MAP_SUFFIXES:
        got = suffix or "no suffix"
        raise ValueError(f"{os.fspath(path)}: a raw map is written as .npy (float32) or .png (16 bit), not {got}")
    return suffix


__all__ = [
    "RAW_MAP_SUFFIXES",
    "check_raw_map_suffix",
    "encode_map_png",
    "encode_png",
    "encode_raw_map",
    "map_levels",
    "read_map",
]
