"""Pixels of any mode to HxWx3 uint8 RGB, with every change to the picture said in words.

The conversions behind :func:`sspnet.files.images.load_image`: grey, 16-bit, float and palette
modes by explicit rules; transparency flattened onto a stated background, kept raw or refused;
an all-zero alpha taken as padding; a uint16 array of 8-bit values flagged. What changed what a
viewer would see goes into the read's ``notices``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image

#: What to do with transparency: flatten onto the background ("composite"; "white" is the same
#: with a white background, the old name), keep the raw colour ("drop") or refuse ("error").
AlphaMode = Literal["composite", "white", "drop", "error"]
ALPHA_MODES = ("composite", "white", "drop", "error")
WHITE = (255, 255, 255)


class ImageReadError(ValueError):
    """An image could not be read; the message names the source and why."""


@dataclass
class Reading:
    """One read's settings and what it had to change, in words (``notices``)."""

    name: str
    alpha: AlphaMode = "composite"
    background: tuple[int, int, int] = WHITE
    frame: int = 0
    notices: list[str] = field(default_factory=list)
    composited: bool = False
    frames: int = 1


@dataclass(frozen=True)
class LoadedImage:
    """Pixels (HxWx3 uint8 RGB, upright) and every change reading made to the picture, in words:
    transparency flattened (``composited``), one frame chosen among ``frames``, a suspicious
    buffer. Nothing that changes what a viewer would see goes unsaid.

    ``mode`` and ``info`` are what the file's header said (Pillow's mode and info of its first
    frame, before any conversion; None and empty for arrays), so a caller that carries
    metadata into a new file (the codec) reads the file once."""

    pixels: np.ndarray
    notices: tuple[str, ...] = ()
    composited: bool = False
    frames: int = 1
    mode: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


def composite(rgb: np.ndarray, alpha: np.ndarray, r: Reading) -> np.ndarray:
    """Flatten transparency onto ``r.background`` (what a viewer shows on that background),
    keep the raw colour (``drop``) or refuse (``error``); a fully opaque alpha changes nothing,
    and an alpha that is 0 everywhere is padding (an RGBX/BGRX buffer), not transparency."""
    if r.alpha == "drop":
        return rgb
    low = int(alpha.min()) if alpha.size else 255
    if low == 255:
        return rgb
    if int(alpha.max()) == 0:
        r.notices.append(f"{r.name}: its alpha channel is 0 everywhere (fully transparent), taken as padding "
                         "(an RGBX buffer): the colour channels were encoded as they are")
        return rgb
    if r.alpha == "error":
        raise ImageReadError(f"cannot read image {r.name}: it has transparency, which JPEG cannot store "
                             "(use --alpha composite to flatten it onto --background)")
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    bg = np.asarray(r.background, np.float32)
    out = rgb.astype(np.float32) * a + bg * (1.0 - a)
    r.composited = True
    r.notices.append(f"{r.name}: transparency flattened onto the background #{bytes(r.background).hex()} "
                     "(JPEG has no alpha; --background picks the colour, --alpha error refuses)")
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def scale_16bit(arr: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 / 257 == 255 exactly)."""
    a = np.clip(arr.astype(np.float64), 0, 65535)
    return np.floor(a / 257.0 + 0.5).astype(np.uint8)


def array_to_rgb(arr: np.ndarray, r: Reading) -> np.ndarray:
    """Normalise an in-memory array (the caller's own pixels) to HxWx3 uint8."""
    a = np.asarray(arr)
    name = r.name
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        top = int(a.max()) if a.size else 0
        if 0 < top < 256:
            r.notices.append(f"{name}: a uint16 array whose values are all below 256 (max {top}) is read as 16-bit "
                             "data (scaled by 1/257) and looks near-black; pass uint8 if it holds 8-bit values")
        a = scale_16bit(a)
    elif a.dtype != np.uint8:
        raise ImageReadError(
            f"cannot read image {name}: dtype {a.dtype} is not supported (use uint8, uint16 or bool)"
        )
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"cannot read image {name}: shape {a.shape} is not HxW or HxWxC (C=1..4)")
    if a.shape[2] in (2, 4):  # grey+alpha, RGB+alpha
        colour, a_ch = a[:, :, :-1], a[:, :, -1]
        if colour.shape[2] == 1:
            colour = np.repeat(colour, 3, axis=2)
        a = composite(colour, a_ch, r)
    elif a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.array(a, dtype=np.uint8, order="C", copy=True)


def pil_to_rgb(im: Image.Image, r: Reading) -> np.ndarray:
    """Convert any Pillow mode to RGB uint8 with explicit, documented rules."""
    mode, name = im.mode, r.name
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("1", "L"):
        return np.repeat(np.asarray(im.convert("L"), dtype=np.uint8)[:, :, None], 3, axis=2)
    if mode.startswith("I;16") or mode == "I":
        grey = scale_16bit(np.asarray(im))
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        f = np.asarray(im, dtype=np.float64)
        if np.nanmax(f) <= 1.0:  # float images are conventionally 0..1
            f = f * 255.0
        grey = np.clip(np.floor(np.nan_to_num(f) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
        return composite(rgba[:, :, :3], rgba[:, :, 3], r)
    try:  # P, CMYK, YCbCr, RGBX, ... : Pillow's own conversion
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (ValueError, OSError) as exc:
        raise ImageReadError(f"cannot read image {name}: mode {mode!r} cannot be converted to RGB ({exc})") from exc


__all__ = [
    "ALPHA_MODES",
    "WHITE",
    "AlphaMode",
    "ImageReadError",
    "LoadedImage",
    "Reading",
    "array_to_rgb",
    "composite",
    "pil_to_rgb",
    "scale_16bit",
]
