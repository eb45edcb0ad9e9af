"""Saliency metrics in the MIT saliency benchmark conventions (Bylinskii et al., TPAMI 2019).

Plain NumPy on 2-D arrays, computed in float64, so that scores are comparable with the
published CUID-VSS numbers (which were computed with the MIT MATLAB code). Where the
prediction and the ground truth differ in size, the prediction is resized (bilinear,
OpenCV half-pixel convention) to the ground truth's shape, as the MIT code does (it uses
MATLAB's ``imresize``; bicubic there, so resized scores agree only approximately).

Degenerate maps
---------------
The MIT code returns NaN (or silently 0) for maps without spatial information. A
ground-truth saliency shift map (SSM) is all-zero whenever a distortion shifts no
attention, so every metric here returns a FINITE value, by one rule: *a constant map
(all-zero included) carries no spatial preference, so as a distribution it is uniform
and as a variable it has no correlation with anything*.

===========  ===========================================================================
cc           0.0 when either map is constant.
sim          a constant map becomes the uniform distribution 1/N (MIT: NaN, or an
             all-zero map stays zero); hence sim(0, 0) = sim(c, c) = 1.
kld          an all-zero map becomes the uniform distribution 1/N (a positive constant
             map sum-normalises to it anyway); hence kld(0, 0) = 0. MIT keeps a zero map
             at zero, which makes kld(anything, 0) = 0 and rewards any prediction.
nss          0.0 when the prediction is constant or there are no fixations.
auc_judd     0.5 (chance) when the prediction is constant, there are no fixations, or
             every pixel is fixated (no negatives to rank against).
===========  ===========================================================================

On maps without these degeneracies the values equal the MIT code's to rounding.
``kld`` and ``sim`` expect non-negative saliency maps (``sim`` min-max scales first, so
negative values are harmless there; ``kld`` takes logs of ratios of the maps).
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

EPS: float = float(np.finfo(np.float64).eps)  # 2.2204e-16, MATLAB's eps used by KLdiv.m
JITTER_SCALE: float = 1e-7  # AUC_Judd.m: rand(size)/10000000


def _as_map(x: np.ndarray, name: str) -> np.ndarray:
    """As a float64 2-D array; metrics are defined on single maps, not batches."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map, got shape {a.shape}")
    return a


def _resize_like(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of pred to ``shape`` (h, w) when sizes differ (MIT resizes the prediction)."""
    if pred.shape == tuple(shape):
        return pred
    h, w = shape
    return cv2.resize(pred, (int(w), int(h)), interpolation=cv2.INTER_LINEAR)


def _is_constant(a: np.ndarray) -> bool:
    return a.size == 0 or float(a.max()) == float(a.min())


def _to_distribution(a: np.ndarray) -> np.ndarray:
    """Sum-normalise; an all-zero map becomes uniform (see module docstring)."""
    if not np.any(a):
        return np.full(a.shape, 1.0 / a.size)
    return a / a.sum()


def cc(pred: np.ndarray, gt: np.ndarray) -> float:
    """Pearson linear correlation coefficient (MIT ``CC.m``), in [-1, 1], higher is better.

    CC = sum_i a_i b_i / sqrt(sum_i a_i^2 * sum_i b_i^2), a = P - mean(P), b = G - mean(G)
    (equivalently the mean product of the z-scored maps). 0.0 if either map is constant.
    """
    g = _as_map(gt, "gt")
    p = _resize_like(_as_map(pred, "pred"), g.shape)
    if _is_constant(p) or _is_constant(g):
        return 0.0
    a = p - p.mean()
    b = g - g.mean()
    denom = np.sqrt(np.sum(a * a) * np.sum(b * b))
    if not np.isfinite(denom) or denom <= 0.0:  # variance lost to underflow: treat as constant
        return 0.0
    return float(np.clip(np.sum(a * b) / denom, -1.0, 1.0))


def sim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Similarity / histogram intersection (MIT ``similarity.m``), in [0, 1], higher is better.

    Each map is min-max scaled to [0, 1] then divided by its sum (so a model cannot gain by
    adding a constant), SIM = sum_i min(P_i, G_i). A constant map becomes uniform 1/N.
    """
    g = _as_map(gt, "gt")
    p = _resize_like(_as_map(pred, "pred"), g.shape)

    def normalise(a: np.ndarray) -> np.ndarray:
        if _is_constant(a):
            return np.full(a.shape, 1.0 / a.size)
        a = (a - a.min()) / (a.max() - a.min())
        return a / a.sum()

    return float(np.sum(np.minimum(normalise(p), normalise(g))))


def kld(pred: np.ndarray, gt: np.ndarray) -> float:
    """Kullback-Leibler divergence KL(G || P) (MIT ``KLdiv.m``), >= 0, lower is better.

    P, G sum-normalised, KLD = sum_i G_i * log(eps + G_i / (eps + P_i)), eps = 2.2204e-16.
    An all-zero map becomes uniform 1/N, so kld(0, 0) = 0.
    """
    g = _as_map(gt, "gt")
    p = _resize_like(_as_map(pred, "pred"), g.shape)
    p = _to_distribution(p)
    g = _to_distribution(g)
    return float(np.sum(g * np.log(EPS + g / (EPS + p))))


def nss(pred: np.ndarray, fixation_map: np.ndarray) -> float:
    """Normalized scanpath saliency (MIT ``NSS.m``), higher is better, 0 is chance.

    NSS = mean over fixated pixels of (P - mean(P)) / std(P), std with N-1 (MATLAB ``std``).
    0.0 when the prediction is constant or nothing is fixated.
    """
    fix = np.asarray(fixation_map)
    if fix.ndim != 2:
        raise ValueError(f"fixation_map must be 2-D, got shape {fix.shape}")
    fixated = fix > 0
    p = _resize_like(_as_map(pred, "pred"), fix.shape)
    if not fixated.any() or _is_constant(p) or p.size < 2:
        return 0.0
    std = p.std(ddof=1)
    if not np.isfinite(std) or std <= 0.0:
        return 0.0
    return float(np.mean((p[fixated] - p.mean()) / std))


def auc_judd(pred: np.ndarray, fixation_map: np.ndarray, jitter: bool = True, seed: int = 0) -> float:
    """Area under the ROC curve, Judd variant (MIT ``AUC_Judd.m``), in [0, 1], 0.5 is chance.

    Thresholds are the saliency values at the fixated pixels t_1 >= ... >= t_K; at t_k,
    TP = k / K and FP = (#{S >= t_k} - k) / (N - K); the curve runs from (0, 0) to (1, 1)
    and its area is taken with the trapezoid rule. With ``jitter`` a uniform noise of at
    most 1e-7 is added first (as MIT does) to break ties in flat regions; it is drawn
    from ``numpy.random.default_rng(seed)`` so scores are reproducible. The jittered map is
    then min-max scaled (as MIT does; this only matters through rounding).
    0.5 for a constant prediction, no fixations, or every pixel fixated.
    """
    fix = np.asarray(fixation_map)
    if fix.ndim != 2:
        raise ValueError(f"fixation_map must be 2-D, got shape {fix.shape}")
    fixated = (fix > 0).ravel()
    p = _resize_like(_as_map(pred, "pred"), fix.shape)
    n_fix = int(fixated.sum())
    n_pix = p.size
    if n_fix == 0 or n_fix == n_pix or _is_constant(p):
        return 0.5
    if jitter:
        p = p + np.random.default_rng(seed).random(p.shape) * JITTER_SCALE
    p = (p - p.min()) / (p.max() - p.min())
    s = p.ravel()
    thresholds = np.sort(s[fixated])[::-1]
    s_sorted = np.sort(s)
    above = n_pix - np.searchsorted(s_sorted, thresholds, side="left")  # #{S >= t_k}
    k = np.arange(1, n_fix + 1)
    tp = np.concatenate(([0.0], k / n_fix, [1.0]))
    fp = np.concatenate(([0.0], (above - k) / (n_pix - n_fix), [1.0]))
    return float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2.0))


Metric = Callable[[np.ndarray, np.ndarray], float]

METRICS: dict[str, Metric] = {"cc": cc, "sim": sim, "kld": kld, "nss": nss, "auc_judd": auc_judd}
"""Name -> function; cc/sim/kld take a ground-truth map, nss/auc_judd a fixation map."""

HIGHER_IS_BETTER: dict[str, bool] = {"cc": True, "sim": True, "kld": False, "nss": True, "auc_judd": True}

DISTRIBUTION_METRICS: tuple[str, ...] = ("cc", "sim", "kld")  # compare with a saliency (shift) map
LOCATION_METRICS: tuple[str, ...] = ("nss", "auc_judd")  # compare with a binary fixation map
