"""Image-quality figures used to judge encodings (benchmarks, reports): plain functions on arrays."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB over all pixels and channels: 10 log10(255^2 / MSE)."""
    return weighted_psnr(reference, distorted, None)


def weighted_psnr(reference: np.ndarray, distorted: np.ndarray, weights: np.ndarray | None) -> float:
    """PSNR in dB with per-pixel weights w (e.g. a human saliency map):
    10 log10(255^2 / (sum_p w_p * mse_p / sum_p w_p)), mse_p averaged over channels.
    Measures quality where people look; uniform weights give plain PSNR."""
    mse = weighted_mse(reference, distorted, weights)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def weighted_mse(reference: np.ndarray, distorted: np.ndarray, weights: np.ndarray | None) -> float:
    """sum_p w_p * mse_p / sum_p w_p, mse_p the squared error averaged over channels (plain MSE
    without weights): the error where the weights say it matters."""
    err = (reference.astype(np.float64) - distorted.astype(np.float64)) ** 2
    if err.ndim == 3:
        err = err.mean(axis=2)
    if weights is None:
        return float(err.mean())
    w = np.asarray(weights, np.float64)
    if w.shape != err.shape:
        raise ValueError(f"weights {w.shape} != image {err.shape}")
    return float((w * err).sum() / max(w.sum(), 1e-12))


def ssimulacra2_score(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA2 (PyPI `ssimulacra2`, 100 = identical, ~70 = high quality, ~50 = medium);
    that package reads files, so both images go through a private temporary folder."""
    from ssimulacra2 import compute_ssimulacra2

    with tempfile.TemporaryDirectory(prefix="sspcodec-ssim2-") as tmp:
        a, b = Path(tmp) / "a.png", Path(tmp) / "b.png"
        Image.fromarray(reference).save(a)
        Image.fromarray(distorted).save(b)
        return float(compute_ssimulacra2(str(a), str(b)))
