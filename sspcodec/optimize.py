"""Where to spend the bytes: block quality maps, byte fitting, and choosing by predicted shift.

The search space is small on purpose. A quality map is q_lo + (q_hi - q_lo) * w^gamma, where w in
[0, 1] per 8x8 block is the priority (predicted saliency, later mixed with where the predicted
shift appears). For each (q_hi, gamma) the background quality q_lo is fitted by bisection to the
byte budget, so every candidate costs the same bytes and the model only has to rank them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from scipy.ndimage import maximum_filter


@dataclass(frozen=True)
class Shape:
    """One candidate family: top quality above the plain-JPEG quality, and the priority exponent."""

    q_boost: float
    gamma: float
    prefilter: float = 0.0


# Mild boosts only: above about +4 the finer frame table makes every other block dearer and the
# background collapses (measured: +5 lost 3-5 dB saliency-weighted PSNR, see README).
DEFAULT_SHAPES: tuple[Shape, ...] = (
    Shape(1, 1.0),
    Shape(2, 0.7),
    Shape(2, 1.0),
    Shape(2, 2.0),
    Shape(3, 1.0),
    Shape(3, 2.0),
    Shape(4, 1.5),
)


def shift_score(ssm: np.ndarray) -> float:
    """The predicted shift of an encoding: mean of its SSM over the image (0 = no shift, 1 = max)."""
    return float(np.mean(ssm))


def block_priority(m: np.ndarray, grid: tuple[int, int], spread: int = 1) -> np.ndarray:
    """A pixel map -> per-block priority in [0, 1]: block means, dilated by `spread` blocks
    (a salient object's border blocks are where ringing shows), scaled to max 1."""
    bh, bw = grid
    small = cv2.resize(m.astype(np.float32), (bw, bh), interpolation=cv2.INTER_AREA)
    if spread:
        small = maximum_filter(small, size=2 * spread + 1, mode="nearest")
    small = np.clip(small - small.min(), 0, None)
    top = float(small.max())
    return small / top if top > 0 else np.zeros_like(small)


def quality_map(w: np.ndarray, q_hi: float, q_lo: float, gamma: float) -> np.ndarray:
    return (q_lo + (q_hi - q_lo) * np.power(np.clip(w, 0, 1), gamma)).astype(np.float32)


def fit_to_bytes(
    encode: Callable[[float], bytes],
    target: int,
    lo: float,
    hi: float,
    estimate: Callable[[float], float] | None = None,
    tol: float = 0.01,
    max_writes: int = 6,
) -> tuple[float, bytes] | None:
    """Largest q in [lo, hi] whose encoding fits `target` bytes (bytes grow with q).

    With a cheap `estimate` (bytes up to a slowly drifting factor), q is found by bisection on
    the estimate rescaled by the last real size, and only the proposals are really encoded
    (2-4 writes typically) until one lands within `tol` below the target. Without an estimate,
    plain bisection on real encodes. None when even `lo` is too big.
    """
    data = encode(lo)
    if len(data) > target:
        return None
    best = (lo, data)
    if estimate is None:
        for _ in range(9):
            if len(best[1]) >= target * (1 - tol) or hi - lo < 0.05:
                break
            mid = (lo + hi) / 2
            data = encode(mid)
            if len(data) <= target:
                lo, best = mid, (mid, data)
            else:
                hi = mid
        return best
    ratio = len(data) / max(estimate(lo), 1.0)
    goal = target * (1 - tol / 2)
    for _ in range(max_writes):
        if len(best[1]) >= target * (1 - tol) or hi - lo < 0.05:
            break
        a, b = lo, hi
        for _ in range(10):
            mid = (a + b) / 2
            if estimate(mid) * ratio <= goal:
                a = mid
            else:
                b = mid
        q = a if a > lo else (lo + hi) / 2
        data = encode(q)
        ratio = len(data) / max(estimate(q), 1.0)
        if len(data) <= target:
            lo, best = q, (q, data)
        else:
            hi = q
    return best


def refine_priority(w: np.ndarray, ssm_blocks: np.ndarray, mix: float = 0.5) -> np.ndarray:
    """Raise priority in blocks where the chosen encoding still shifts attention.

    Only raises: the SSM counts attention *gained*, so a salient region made blurrier (which
    loses attention, not gains it) would look harmless to it; lowering priority there is never
    allowed.
    """
    top = float(ssm_blocks.max())
    if top <= 0:
        return w
    return np.maximum(w, mix * ssm_blocks / top)
