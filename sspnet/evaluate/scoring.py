"""Per-map scoring: which metrics a map gets, and the valid box both maps are cut to first.

Why the valid box (DECISION, see the package docstring): the letterbox padding is zero in the
ground truth and near-zero in any decent prediction, so scoring it would add trivially agreeing
pixels. Pure numpy functions of one prediction and one target.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metrics import DISTRIBUTION_METRICS, LOCATION_METRICS, METRICS

__all__ = ["SALIENCY_METRICS", "SHIFT_METRICS", "crop_to_valid", "saliency_scores", "shift_scores", "valid_box"]

SALIENCY_METRICS: tuple[str, ...] = DISTRIBUTION_METRICS + LOCATION_METRICS  # cc sim kld nss auc_judd
SHIFT_METRICS: tuple[str, ...] = DISTRIBUTION_METRICS  # the SSM is a density map (paper V-A)


def valid_box(valid: np.ndarray | None, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Row and column slices of the bounding box of a (1,H,W) or (H,W) mask; whole map if None."""
    if valid is None:
        return slice(0, shape[0]), slice(0, shape[1])
    m = np.asarray(valid).reshape(shape) > 0
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        raise ValueError("the valid mask is empty: the item has no image area to score")
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def crop_to_valid(a: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """The (H, W) map `a` cut to the valid box (see the module docstring for why)."""
    a = np.asarray(a).reshape(np.asarray(a).shape[-2:])
    rs, cs = valid_box(valid, a.shape)
    return a[rs, cs]


def saliency_scores(
    pred: np.ndarray, gt: np.ndarray, fixations: np.ndarray, metrics: Sequence[str] = SALIENCY_METRICS
) -> dict[str, float]:
    """Distribution metrics against the continuous map, location metrics against fixations."""
    out: dict[str, float] = {}
    for m in metrics:
        target = fixations if m in LOCATION_METRICS else gt
        out[m] = float(METRICS[m](pred, target))
    return out


def shift_scores(pred: np.ndarray, gt: np.ndarray, metrics: Sequence[str] = SHIFT_METRICS) -> dict[str, float]:
    """Predicted vs ground-truth SSM; an all-zero gt is finite by sspnet.metrics' convention."""
    bad = [m for m in metrics if m in LOCATION_METRICS]
    if bad:
        raise ValueError(f"{bad} need fixations; a saliency shift map is scored with {SHIFT_METRICS}")
    return {m: float(METRICS[m](pred, gt)) for m in metrics}
