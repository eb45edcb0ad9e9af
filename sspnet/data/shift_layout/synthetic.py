"""The synthetic ground-truth rule: how a distorted image's "human" map is made up. NOT HUMAN DATA.

Free-viewing sets give human fixations for pristine images only, so `sspnet build-shift`
SYNTHESISES the map of each distorted image:

    visibility = G * mean_c |distorted - pristine|       (G: Gaussian of the fovea width)
    SM_d       = normalise_max(SM_r / max(SM_r) + alpha(level) * visibility / max(visibility))

i.e. the human pristine map plus attention drawn to where the distortion changed the image
most, more strongly at higher levels (`SYNTH_ALPHA`). These maps let the shift pipeline
(datasets, model, losses, training loop) run end to end and test that it learns a known
rule, but scores on them say nothing about how people react to distortions. The builder
marks them `saliency_source=synthetic` and writes a README.md saying so.
"""
from __future__ import annotations

import cv2
import numpy as np

from sspnet import maps

__all__ = ["SYNTH_ALPHA", "synthesize_distorted_saliency"]

# Weight of the visibility term per level: the worse the distortion, the more it competes
# with the scene content for attention. At level 3 the most visible distortion region gets
# as much weight as the most salient content (SM_r max 1).
SYNTH_ALPHA: dict[int, float] = {1: 0.25, 2: 0.5, 3: 1.0}


def synthesize_distorted_saliency(
    sm_r: np.ndarray,
    pristine: np.ndarray,
    distorted: np.ndarray,
    level: int,
    sigma: float | None = None,
    alpha: float | None = None,
) -> np.ndarray:
    """SYNTHETIC (not human) saliency of a distorted image: SM_r plus where the distortion shows.

    SM_d = normalise_max(SM_r/max + alpha(level) * V/max(V)), V = the per-pixel mean absolute
    RGB difference blurred by a Gaussian of std sigma/sqrt(2) (the eq. 1 kernel
    exp(-d^2/sigma^2), sigma = fovea, default 45/1920 of the width). A proxy rule that makes
    shifts depend on distortion kind, level and location; see the module docstring.
    """
    sm_r = np.asarray(sm_r, np.float32)
    if pristine.shape != distorted.shape or pristine.shape[:2] != sm_r.shape:
        raise ValueError(f"shapes differ: map {sm_r.shape}, pristine {pristine.shape}, distorted {distorted.shape}")
    a = SYNTH_ALPHA[int(level)] if alpha is None else float(alpha)
    _h, w = sm_r.shape
    s = maps.default_sigma(w) if sigma is None else float(sigma)
    diff = np.abs(distorted.astype(np.float32) - pristine.astype(np.float32))
    diff = diff.mean(axis=2) if diff.ndim == 3 else diff
    vis = cv2.GaussianBlur(diff / 255.0, (0, 0), s / np.sqrt(2.0), borderType=cv2.BORDER_REFLECT_101)
    peak_v = float(vis.max())
    vis = vis / peak_v if peak_v > 0 else np.zeros_like(vis)
    peak_r = float(sm_r.max())
    base = sm_r / peak_r if peak_r > 0 else sm_r
    sm_d = base + np.float32(a) * vis
    peak = float(sm_d.max())
    return (sm_d / peak if peak > 0 else sm_d).astype(np.float32)
