"""The codec benchmarks' figures as PNGs (matplotlib, when installed: it is no dependency, so
every function says so in its returned line instead of failing)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sspcodec.bench.encoders import PEERS
from sspcodec.bench.measures import LABELS, LOWER_IS_BETTER

NO_MATPLOTLIB = "matplotlib not installed: no plot"


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg back-end, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> str:
    """Write *fig* as a PNG (small: 80 dpi) and close it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    pyplot().close(fig)
    return f"plot: {path}"


def plot_strengths(curves: list[dict], strengths: Sequence[float], path: Path) -> str:
    """Human-weighted PSNR gain (other half of the observers) against SSIMULACRA2 loss, one line
    per driver, one point per strength."""
    plt = pyplot()
    if plt is None:
        return NO_MATPLOTLIB
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for name in curves[0]:
        loss = [-np.mean([c[name][st]["ssim2"] for c in curves]) for st in strengths]
        gain = [np.mean([c[name][st]["wpsnr_b"] for c in curves]) for st in strengths]
        ax.plot(loss, gain, marker="o", label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("SSIMULACRA2 loss vs plain jpegli (points)")
    ax.set_ylabel("wPSNR-B gain vs plain jpegli (dB)")
    ax.set_title(f"strength {', '.join(f'{st:g}' for st in strengths)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_curves(sweeps: list[dict], metrics: Sequence[str], path: Path) -> str:
    """Mean rate-quality curves (mean bpp, mean metric at each sweep quality) as one PNG."""
    plt = pyplot()
    if plt is None:
        return NO_MATPLOTLIB
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 4.0 * rows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, m in zip(axes.flat, metrics):
        for c in sweeps[0]:
            pts = [[(r["bpp"], r[m]) if r and r[m] is not None else (np.nan, np.nan) for r in s[c]] for s in sweeps]
            mean = np.nanmean(np.array(pts, float), axis=0)
            ax.plot(mean[:, 0], mean[:, 1], marker=".", label=c, lw=1.2, ls="--" if c in PEERS else "-")
        ax.set_xlabel("bits per pixel (mean)")
        ax.set_title(LABELS[m] + (" (lower is better)" if m in LOWER_IS_BETTER else ""))
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    return save(fig, path)


__all__ = ["NO_MATPLOTLIB", "plot_curves", "plot_strengths", "pyplot", "save"]
