"""Ground-truth maps from eye-tracking fixations (paper eq. 1), and eq. 2 for every caller.

Coordinates are 0-based pixel coordinates ``(x, y)`` = (column, row), pixel centres at
integers, so the image covers [-0.5, W - 0.5) x [-0.5, H - 0.5). The datasets in
OSIE and EyeCrowd files store MATLAB 1-based coordinates: subtract 1 before calling these.
A fixation is inside the image iff its nearest pixel is (the same rule for all maps).
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

PAPER_SIGMA_PX: float = 45.0  # 2 degrees of visual angle at 1920 px width in CUID-VSS
PAPER_WIDTH_PX: int = 1920
_CHUNK: int = 2048  # fixations per matrix product: bounds memory to ~CHUNK*(H+W) floats


def default_sigma(width: int) -> float:
    """Gaussian width in pixels for an image ``width`` px wide: 45/1920 of the width.

    Keeps the paper's 2 degrees of visual angle when the viewing geometry scales with the
    image (18.75 px at 800, 24 px at 1024).
    """
    return PAPER_SIGMA_PX / PAPER_WIDTH_PX * float(width)


def _fixations(fixations_xy: np.ndarray) -> np.ndarray:
    a = np.asarray(fixations_xy, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 2))
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"fixations_xy must have shape (N, 2), got {a.shape}")
    return a


def _nearest_pixels(fix: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest pixel (row, col; round half up) of each fixation, and which lie inside the image.

    NaN coordinates count as outside.
    """
    h, w = int(shape[0]), int(shape[1])
    with np.errstate(invalid="ignore"):
        cols = np.floor(fix[:, 0] + 0.5)
        rows = np.floor(fix[:, 1] + 0.5)
        inside = (cols >= 0) & (cols <= w - 1) & (rows >= 0) & (rows <= h - 1)
    return rows, cols, inside


def saliency_map(fixations_xy: np.ndarray, shape: tuple[int, int], sigma: float | None = None) -> np.ndarray:
    """Eq. 1: SM(x, y) = sum_i exp(-((x_i - x)^2 + (y_i - y)^2) / sigma^2), scaled to max 1.

    Note sigma^2, not 2 sigma^2, as in the paper. ``fixations_xy`` is (N, 2) of 0-based
    (x, y) float pixel coordinates, all fixations of all observers; ``shape`` is (H, W);
    ``sigma`` in pixels defaults to ``default_sigma(W)``. Fixations outside the image are
    dropped; with none left the map is all-zero. Returns float32 (H, W) in [0, 1].

    The Gaussian is separable, so the sum is one matrix product Ey^T @ Ex with
    Ey[i, y] = exp(-(y_i - y)^2 / sigma^2) and Ex[i, x] = exp(-(x_i - x)^2 / sigma^2):
    O(N (H + W) + N H W / BLAS) instead of a loop over fixations.
    """
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"shape must be positive (H, W), got {shape}")
    s = default_sigma(w) if sigma is None else float(sigma)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma}")
    fix = _fixations(fixations_xy)
    fix = fix[_nearest_pixels(fix, (h, w))[2]]
    sm = np.zeros((h, w), dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    xs = np.arange(w, dtype=np.float64)
    inv_s2 = 1.0 / (s * s)
    for start in range(0, len(fix), _CHUNK):
        part = fix[start : start + _CHUNK]
        ex = np.exp(-((part[:, 0:1] - xs[None, :]) ** 2) * inv_s2)  # (n, W)
        ey = np.exp(-((part[:, 1:2] - ys[None, :]) ** 2) * inv_s2)  # (n, H)
        sm += ey.T @ ex
    peak = sm.max() if sm.size else 0.0
    if peak > 0:
        sm /= peak
    return sm.astype(np.float32)


SHIFT_PEAK_FLOOR: float = 1e-6  # a near-empty map is not blown up to max 1 (and 0/0 never happens)


def _is_tensor(x: object) -> bool:
    """A torch tensor? Checked without importing torch (maps.py must work without it)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.is_tensor(x)


def scale_to_max1(m: Any) -> Any:
    """Each (..., H, W) map divided by its own peak (floored at SHIFT_PEAK_FLOOR); numpy or torch."""
    if _is_tensor(m):
        return m / m.amax(dim=(-2, -1), keepdim=True).clamp_min(SHIFT_PEAK_FLOOR)
    return m / np.maximum(np.max(m, axis=(-2, -1), keepdims=True), SHIFT_PEAK_FLOOR)


def shift_map(sm_distorted: Any, sm_pristine: Any, normalize: bool = False) -> Any:
    """Eq. 2: SSM = max(SM_d - SM_r, 0), where attention moves *to* because of the distortion.

    The one implementation of eq. 2, for numpy arrays (ground truth) and torch tensors (the
    model, the intuitive approach): the difference is only meaningful on a common scale.
    With ``normalize=False`` both maps are taken as they are: ground-truth maps are already
    scaled to max 1 (``saliency_map``), and a model trained on shift data learns eq. 2 on
    its raw sigmoid maps, as in the paper. ``normalize=True`` first scales each map to max 1
    (``scale_to_max1``): the convention for a model trained on saliency only, whose raw
    sigmoid maps rarely reach 1, so that a blurred object which *loses* attention does not
    look harmless (the model config's ``shift_from_normalized``). The pristine map may
    broadcast over a batch of distorted maps. Numpy: float32 or wider; torch:
    differentiable (ReLU, gradient 0 where the maps are equal). All-zero means no shift.
    """
    d_shape, r_shape = tuple(np.shape(sm_distorted)), tuple(np.shape(sm_pristine))
    try:
        np.broadcast_shapes(d_shape, r_shape)
    except ValueError:
        raise ValueError(f"maps differ in shape: {d_shape} vs {r_shape}") from None
    if _is_tensor(sm_distorted):
        d, r = sm_distorted, sm_pristine
        if normalize:
            d, r = scale_to_max1(d), scale_to_max1(r)
        return (d - r).relu()
    d, r = np.asarray(sm_distorted), np.asarray(sm_pristine)
    dtype = np.result_type(d.dtype, r.dtype, np.float32)
    d, r = d.astype(dtype, copy=False), r.astype(dtype, copy=False)
    if normalize:
        d, r = scale_to_max1(d), scale_to_max1(r)
    return np.maximum(d - r, 0).astype(dtype, copy=False)


def fixation_map(fixations_xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Binary (H, W) map of fixated pixels, for NSS and AUC: each fixation at its nearest pixel.

    Rounds half up (x = 2.5 -> column 3); fixations whose nearest pixel is outside the
    image (or NaN) are dropped.
    """
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((h, w), dtype=bool)
    rows, cols, inside = _nearest_pixels(_fixations(fixations_xy), (h, w))
    out[rows[inside].astype(np.intp), cols[inside].astype(np.intp)] = True
    return out
