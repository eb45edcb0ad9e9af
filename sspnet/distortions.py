"""Distortion synthesis: the degradations whose effect on attention SSPNet predicts.

CUID-VSS (paper III-A) degrades each pristine image with contrast change (CC), JPEG
compression (JPEG) and motion blur (MB) at three perceived-quality levels, set by experts
by eye rather than by a published parameter table:

    Q1  perceptible but not annoying
    Q2  noticeable and annoying
    Q3  very annoying

The parameters below are our choice for natural images of roughly 800-1920 px width viewed
at 1:1 on a desktop screen (OSIE 800x600, EyeCrowd 1024x768, CUID 1920x1080), picked to
land in those three perceptual bands, with Gaussian blur added as a fourth, codec-relevant
kind (a smooth low-pass, what aggressive quantisation of high frequencies looks like).
Blur extents are in pixels of the image they are applied to, not relative to its size:
a codec sees pixels, and a relative rule would make the same file distort differently
depending on what it is resized to later.

All functions are pure: HxWx3 uint8 RGB in, a new HxWx3 uint8 RGB out, deterministic.
`distort(img, kind, level)` is the level-based entry point; the parametric forms
(`scale_contrast`, `encode_jpeg_at`, `blur_motion`, `blur_gaussian`) serve searches
over a continuous strength.
"""
from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from sspnet.files.images import read_image

__all__ = [
    "ALIASES",
    "CONTRAST_LEVELS",
    "DISTORTIONS",
    "GAUSSIAN_BLUR_LEVELS",
    "JPEG_LEVELS",
    "LEVELS",
    "MOTION_BLUR_LEVELS",
    "blur_gaussian",
    "blur_motion",
    "canonical_kind",
    "contrast_change",
    "distort",
    "encode_jpeg_at",
    "gaussian_blur",
    "jpeg",
    "motion_blur",
    "motion_blur_kernel",
    "scale_contrast",
]

LEVELS: tuple[int, ...] = (1, 2, 3)

# Contrast change: pixels are pulled linearly towards the image's mean intensity,
# out = m + c * (x - m). Contrast *reduction* is the common form in IQA sets (CSIQ, TID's
# "contrast change" is mostly decrements) and it keeps mean brightness, so only contrast
# changes. A 30% loss is visible side by side but the image still looks fine (Q1); at
# half contrast it looks flat and hazy (Q2); at 30% of the original it is washed out (Q3).
CONTRAST_LEVELS: dict[int, float] = {1: 0.70, 2: 0.50, 3: 0.30}

# JPEG quality (IJG scale, Pillow/libjpeg, 4:2:0 chroma subsampling). Around q30 block
# edges become just visible in smooth regions (sky, skin) while textures hide them (Q1);
# at q15 blocking and ringing show everywhere flat (Q2); at q6 8x8 blocks and colour
# bleeding dominate the picture (Q3). Above ~q50 most viewers see nothing at 1:1, which
# would make Q1 imperceptible, the wrong band.
JPEG_LEVELS: dict[int, int] = {1: 30, 2: 15, 3: 6}

# Motion blur: length in pixels of a uniform linear kernel (camera shake along one
# direction). 5 px softens edges just visibly, 11 px doubles every edge (annoying),
# 21 px smears text and faces beyond recognition at 800-1000 px width (very annoying).
MOTION_BLUR_LEVELS: dict[int, float] = {1: 5.0, 2: 11.0, 3: 21.0}

# Gaussian blur: standard deviation in pixels. sigma 1 is a slight softness, 2.5 loses
# fine texture and looks out of focus, 5 leaves only coarse shapes.
GAUSSIAN_BLUR_LEVELS: dict[int, float] = {1: 1.0, 2: 2.5, 3: 5.0}

# The chroma subsampling used for JPEG (Pillow: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0), fixed so
# results do not depend on a library default; 4:2:0 is what cameras and the web use.
JPEG_SUBSAMPLING = 2


def _check_image(img: np.ndarray) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(img).__name__}")
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {img.dtype} {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"empty image {img.shape}")
    return img


def _level_param(table: dict, level: int, kind: str):
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer)) or int(level) not in table:
        raise ValueError(f"{kind}: level must be one of {sorted(table)}, got {level!r}")
    return table[int(level)]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- parametric


def scale_contrast(img: np.ndarray, c: float) -> np.ndarray:
    """A copy with contrast scaled by `c` around the mean intensity (c < 1 reduces, c > 1 increases)."""
    img = _check_image(img)
    if not np.isfinite(c) or c < 0:
        raise ValueError(f"contrast factor must be finite and >= 0, got {c}")
    x = img.astype(np.float32)
    m = float(x.mean())  # one mean over all channels: keeps the colour balance
    return _to_uint8(m + float(c) * (x - m))


def encode_jpeg_at(img: np.ndarray, q: int) -> np.ndarray:
    """The image after a JPEG round trip: baseline JPEG at quality `q` (1-100) in memory, decoded back."""
    img = _check_image(img)
    q = int(q)
    if not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {q}")
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=q, subsampling=JPEG_SUBSAMPLING, optimize=False)
    return read_image(buf.getvalue())


def motion_blur_kernel(length: float, angle: float = 0.0) -> np.ndarray:
    """Normalised kernel of a uniform linear motion of `length` px at `angle` degrees.

    The segment is sampled densely and splatted bilinearly, so non-integer lengths and
    any angle give a smooth, centred kernel (sum 1) rather than a jagged Bresenham line.
    """
    if not np.isfinite(length) or length < 0:
        raise ValueError(f"motion blur length must be finite and >= 0, got {length}")
    if length <= 1.0:
        return np.ones((1, 1), np.float32)
    half = int(np.floor(length / 2.0)) + 1  # room for the bilinear splat of both ends
    size = 2 * half + 1
    k = np.zeros((size, size), np.float64)
    t = np.linspace(-length / 2.0, length / 2.0, int(np.ceil(length * 8)) + 1)
    a = np.deg2rad(angle)
    xs = half + t * np.cos(a)
    ys = half - t * np.sin(a)  # image rows grow downwards; angles count counter-clockwise
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), w)
    # Crop empty rows/columns symmetrically so the anchor stays at the centre.
    rows, cols = np.nonzero(k > 1e-12)
    ry, rx = int(np.abs(rows - half).max()), int(np.abs(cols - half).max())
    k = k[half - ry : half + ry + 1, half - rx : half + rx + 1]
    k /= k.sum()
    return k.astype(np.float32)


def blur_motion(img: np.ndarray, length: float, angle: float = 0.0) -> np.ndarray:
    """A copy blurred by a linear motion of `length` px along `angle` degrees (0 = horizontal)."""
    img = _check_image(img)
    kernel = motion_blur_kernel(length, angle)
    if kernel.size == 1:
        return img.copy()
    out = cv2.filter2D(img.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return _to_uint8(out)


def blur_gaussian(img: np.ndarray, s: float) -> np.ndarray:
    """A copy blurred by a Gaussian of standard deviation `s` px (kernel radius 3 s)."""
    img = _check_image(img)
    if not np.isfinite(s) or s < 0:
        raise ValueError(f"Gaussian sigma must be finite and >= 0, got {s}")
    if s == 0:
        return img.copy()
    r = max(1, int(np.ceil(3 * s)))
    out = cv2.GaussianBlur(img.astype(np.float32), (2 * r + 1, 2 * r + 1), s, s, borderType=cv2.BORDER_REFLECT_101)
    return _to_uint8(out)


# ----------------------------------------------------------------------------- levels


def contrast_change(img: np.ndarray, level: int) -> np.ndarray:
    """Contrast reduction at quality level 1-3 (`CONTRAST_LEVELS`)."""
    return scale_contrast(img, _level_param(CONTRAST_LEVELS, level, "contrast"))


def jpeg(img: np.ndarray, level: int) -> np.ndarray:
    """JPEG round trip at quality level 1-3 (`JPEG_LEVELS`)."""
    return encode_jpeg_at(img, _level_param(JPEG_LEVELS, level, "jpeg"))


def motion_blur(img: np.ndarray, level: int, angle: float = 0.0) -> np.ndarray:
    """Linear motion blur at quality level 1-3 (`MOTION_BLUR_LEVELS`), direction `angle` degrees."""
    return blur_motion(img, _level_param(MOTION_BLUR_LEVELS, level, "motion_blur"), angle)


def gaussian_blur(img: np.ndarray, level: int) -> np.ndarray:
    """Gaussian blur at quality level 1-3 (`GAUSSIAN_BLUR_LEVELS`)."""
    return blur_gaussian(img, _level_param(GAUSSIAN_BLUR_LEVELS, level, "gaussian_blur"))


DISTORTIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "contrast": contrast_change,
    "jpeg": jpeg,
    "motion_blur": motion_blur,
    "gaussian_blur": gaussian_blur,
}

# The paper's abbreviations and a few spellings, so CUID-style labels map onto the registry.
ALIASES: dict[str, str] = {
    "cc": "contrast",
    "contrast_change": "contrast",
    "mb": "motion_blur",
    "motion": "motion_blur",
    "gb": "gaussian_blur",
    "blur": "gaussian_blur",
    "gaussian": "gaussian_blur",
}


def canonical_kind(kind: str) -> str:
    """Registry name for `kind` (case-insensitive, paper abbreviations accepted)."""
    key = str(kind).strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in DISTORTIONS:
        raise ValueError(f"unknown distortion {kind!r}; known: {sorted(DISTORTIONS)} (aliases {sorted(ALIASES)})")
    return key


def distort(img: np.ndarray, kind: str, level: int) -> np.ndarray:
    """Apply distortion `kind` (a `DISTORTIONS` name or alias) at quality level 1, 2 or 3."""
    return DISTORTIONS[canonical_kind(kind)](img, level)
