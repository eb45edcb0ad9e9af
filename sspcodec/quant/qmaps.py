"""Quality-map geometry: maps of any resolution onto the luma and chroma 8x8 block grids, smooth
per-pixel weights from per-block ones, and the pre-filter that blurs low-quality regions."""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

from .tables import quality_scale

Reduce = Literal["max", "mean"]


def luma_block_shape(height: int, width: int) -> tuple[int, int]:
    """Number of 8x8 luma blocks covering an image (partial edge blocks count)."""
    return math.ceil(height / 8), math.ceil(width / 8)


def _reduce_blocks(pix: np.ndarray, grid: tuple[int, int], size: tuple[int, int], reduce: Reduce) -> np.ndarray:
    """Edge-pad *pix* to ``grid * size`` and pool each cell with max or mean."""
    gh, gw = grid
    sh, sw = size
    pad_h = gh * sh - pix.shape[0]
    pad_w = gw * sw - pix.shape[1]
    if pad_h < 0 or pad_w < 0:
        pix = pix[: gh * sh, : gw * sw]
        pad_h, pad_w = max(pad_h, 0), max(pad_w, 0)
    if pad_h or pad_w:
        pix = np.pad(pix, ((0, pad_h), (0, pad_w)), mode="edge")
    cells = pix.reshape(gh, sh, gw, sw)
    if reduce == "max":
        return cells.max(axis=(1, 3))
    if reduce == "mean":
        return cells.mean(axis=(1, 3))
    raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")


def map_to_luma_grid(
    quality_map: np.ndarray,
    image_hw: tuple[int, int],
    *,
    reduce: Reduce = "max",
) -> np.ndarray:
    """Bring a quality map of any resolution onto the luma 8x8 block grid.

    A map already shaped like the block grid is taken as is. Anything else is
    resampled to the pixel grid (area averaging when shrinking, bilinear when
    enlarging) and pooled per block; ``max`` (default) gives a block the
    quality of its most demanding pixel, so salient edges are never starved.
    Values are clipped to 1..100. Returns float64 (bh, bw).
    """
    qm = np.asarray(quality_map, dtype=np.float64)
    if qm.ndim == 3 and qm.shape[2] == 1:
        qm = qm[:, :, 0]
    if qm.ndim != 2 or qm.size == 0:
        raise ValueError(f"quality map must be a non-empty 2-D array, got shape {qm.shape}")
    if not np.all(np.isfinite(qm)):
        raise ValueError("quality map contains NaN or infinite values")
    h, w = int(image_hw[0]), int(image_hw[1])
    grid = luma_block_shape(h, w)
    if qm.shape == grid:
        return np.clip(qm, 1.0, 100.0)
    if qm.shape != (h, w):
        shrink = qm.shape[0] >= h and qm.shape[1] >= w
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        qm = cv2.resize(qm.astype(np.float32), (w, h), interpolation=interp).astype(np.float64)
        qm = qm.reshape(h, w)
    return np.clip(_reduce_blocks(qm, grid, (8, 8), reduce), 1.0, 100.0)


def luma_to_chroma_grid(
    luma_blocks: np.ndarray,
    chroma_shape: tuple[int, int],
    factor: tuple[int, int] = (2, 2),
    *,
    reduce: Reduce = "max",
) -> np.ndarray:
    """Quality of each chroma block from the luma blocks it covers.

    *factor* is (vertical, horizontal) luma blocks per chroma block, e.g.
    (2, 2) for 4:2:0, (1, 2) for 4:2:2, (1, 1) for 4:4:4. ``max`` keeps the
    colour of a high-quality region intact even where it only partly covers a
    chroma block.
    """
    lb = np.asarray(luma_blocks, dtype=np.float64)
    fv, fh = int(factor[0]), int(factor[1])
    if fv < 1 or fh < 1:
        raise ValueError(f"factor must be positive, got {factor}")
    return _reduce_blocks(lb, (int(chroma_shape[0]), int(chroma_shape[1])), (fv, fh), reduce)


def pixel_weights(block_weights: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Smooth per-pixel weights from per-block ones, zero inside zero blocks.

    Bilinear upsampling avoids visible seams; taking the minimum with the
    nearest-neighbour upsampling keeps blocks whose weight is 0 (the
    high-quality ones) exactly untouched.
    """
    bw_ = np.asarray(block_weights, dtype=np.float32)
    gh, gw = bw_.shape
    h, w = image_hw
    nearest = np.repeat(np.repeat(bw_, 8, axis=0), 8, axis=1)
    smooth = cv2.resize(bw_, (gw * 8, gh * 8), interpolation=cv2.INTER_LINEAR).reshape(gh * 8, gw * 8)
    return np.minimum(nearest, smooth)[:h, :w]


def prefilter_image(
    pixels: np.ndarray,
    block_quality: np.ndarray,
    q_max: float,
    strength: float,
    sigma: float = 1.5,
) -> np.ndarray:
    """Blend low-quality regions towards a Gaussian-blurred copy.

    Removing high-frequency energy *before* the transform lets the coarse
    requantisation zero coefficients instead of leaving ringing. Weight per
    block is ``strength * (1 - s(q_max) / s(q_b))`` with libjpeg's scale
    ``s``: the fraction of quantiser precision the block loses, 0 for blocks
    at ``q_max`` (which are left bit-identical).
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"prefilter strength must be in [0, 1], got {strength}")
    if sigma <= 0:
        raise ValueError(f"prefilter sigma must be positive, got {sigma}")
    arr = np.asarray(pixels)
    if strength == 0.0:
        return arr
    s_max = max(float(quality_scale(q_max)), 1.0)
    s_blk = np.maximum(quality_scale(block_quality), 1.0)
    wb = strength * np.clip(1.0 - s_max / s_blk, 0.0, 1.0)
    if not np.any(wb > 0):
        return arr
    weights = pixel_weights(wb, arr.shape[:2])
    src = arr.astype(np.float32)
    blurred = cv2.GaussianBlur(src, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    blurred = blurred.reshape(src.shape)
    if src.ndim == 3:
        weights = weights[:, :, None]
    out = src + weights * (blurred - src)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
