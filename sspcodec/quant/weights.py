"""How much each 8x8 block matters to the RD pruning: a priority map (any resolution) to block
levels in [0, 1], then weights ``floor + (1 - floor) * level`` for luma and, spread by their
sampling factor, for the chroma planes.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..backends.dct import DctJpeg
from .qmaps import luma_to_chroma_grid
from .settings import DEFAULT_CHROMA_GAIN


def _block_mean(a: np.ndarray, grid: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Mean of each size[0] x size[1] cell of *a* on *grid* (edges padded by replication)."""
    return luma_to_chroma_grid(a, grid, size, reduce="mean")


def block_levels(m: np.ndarray, image_hw: tuple[int, int], grid: tuple[int, int]) -> np.ndarray | None:
    """Block means of the non-negative map *m* on *grid*, divided by their maximum (so in
    [0, 1]); *m* is resampled to the image first if its size differs. None for an all-zero map."""
    p = np.asarray(m, dtype=np.float32)
    if p.ndim != 2 or p.size == 0 or not np.all(np.isfinite(p)):
        raise ValueError(f"priority must be a finite 2-D map, got shape {p.shape}")
    h, w = int(image_hw[0]), int(image_hw[1])
    if p.shape != (h, w):
        shrink = p.shape[0] >= h and p.shape[1] >= w
        p = cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR).reshape(h, w)
    s = _block_mean(np.clip(p, 0.0, None).astype(np.float64), grid, (8, 8))
    peak = float(s.max())
    return s / peak if peak > 0 else None


def block_weights(
    priority: np.ndarray,
    image_hw: tuple[int, int],
    grid: tuple[int, int],
    floor: float,
    raise_with: np.ndarray | None = None,
    raise_mix: float = 1.0,
) -> np.ndarray:
    """Per luma block weight ``floor + (1 - floor) * s_b`` on *grid* (MCU padding included).

    *priority* is any non-negative map (resampled to the image if its size differs); s_b is its
    block level (:func:`block_levels`), so the most important block weighs 1 and a map of zeros
    (or a constant map) gives uniform weights. *raise_with* (e.g. the predicted SSM of a plain
    encoding: where distortion would pull attention) only raises levels:
    ``s_b = max(s_b, raise_mix * r_b)`` with r_b its own block level.
    """
    s = block_levels(priority, image_hw, grid)
    if s is None:
        s = np.ones(tuple(grid), np.float64)
    r = None if raise_with is None or raise_mix <= 0 else block_levels(raise_with, image_hw, grid)
    if r is not None:
        s = np.maximum(s, raise_mix * r)
    return floor + (1.0 - floor) * s


def plane_weights(dct: DctJpeg, luma_weights: np.ndarray, chroma_gain: float = DEFAULT_CHROMA_GAIN) -> list[np.ndarray]:
    """Weights of every plane's blocks: luma as given, chroma the mean of the luma blocks each
    chroma block covers (its sampling factor) times *chroma_gain* per covered luma block: one
    chroma coefficient's error lands on that many luma blocks' pixels (4 with 4:2:0)."""
    out = [np.asarray(luma_weights, dtype=np.float64)]
    area = dct.chroma_factor[0] * dct.chroma_factor[1]
    for plane in dct.planes[1:]:
        out.append(_block_mean(out[0], plane.coeffs.shape[:2], dct.chroma_factor) * (chroma_gain * area))
    return out


__all__ = ["block_levels", "block_weights", "plane_weights"]
