"""Where to spend the bytes: block quality maps, byte fitting, and choosing by predicted shift.

The search space is small on purpose. A quality map is q_lo + (q_hi - q_lo) * w^gamma, where w in
[0, 1] per 8x8 block is the priority (predicted saliency, later mixed with where the predicted
shift appears). For each (q_hi, gamma) the background quality q_lo is fitted by bisection to the
byte budget, so every candidate costs the same bytes and the model only has to rank them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    ratio: float | None = None,
) -> tuple[float, bytes, float] | None:
    """Largest q in [lo, hi] whose encoding fits `target` bytes (bytes grow with q), as
    (q, data, ratio); None when even `lo` is too big.

    With a cheap `estimate` (bytes up to a slowly drifting factor), q is found by bisection on
    the estimate times `ratio` (real/estimated bytes; pass the one a previous fit on the same
    base returned to save a write), and only the proposals are really encoded, until one lands
    within `tol` below the target. Without an estimate: plain bisection on real encodes.
    """
    best: tuple[float, bytes] | None = None

    def consider(q: float) -> int:
        """Encode at q, keep it if it is the best fit so far; returns its size."""
        nonlocal best
        data = encode(q)
        if len(data) <= target and (best is None or q > best[0]):
            best = (q, data)
        return len(data)

    def done() -> bool:
        return best is not None and len(best[1]) >= target * (1 - tol)

    if estimate is not None:
        if ratio is None:
            size = consider(lo)
            if size > target:
                return None
            ratio = size / max(estimate(lo), 1.0)
        goal, a_lo, a_hi = target * (1 - tol / 2), lo, hi
        for _ in range(max_writes):
            if done() or a_hi - a_lo < 0.05:
                break
            a, b = a_lo, a_hi
            for _ in range(8):
                mid = (a + b) / 2
                a, b = (mid, b) if estimate(mid) * ratio <= goal else (a, mid)
            q = a if a > a_lo else (a_lo + a_hi) / 2
            size = consider(q)
            ratio = size / max(estimate(q), 1.0)
            a_lo, a_hi = (q, a_hi) if size <= target else (a_lo, q)
        lo, hi = (best[0] if best is not None else lo), a_hi
    if best is None and consider(lo) > target:
        return None
    for _ in range(9 if estimate is None else 4):  # real bisection: no estimate, or it missed
        if done() or hi - lo < 0.01:
            break
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if consider(mid) <= target else (lo, mid)
    assert best is not None
    return best[0], best[1], ratio if ratio is not None else 1.0


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
