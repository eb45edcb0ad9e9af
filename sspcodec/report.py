"""The side-by-side report: input, output, predicted saliency, and the two predicted shift maps."""
from __future__ import annotations

import numpy as np
from PIL import Image

from sspcodec.decoding import decode_jpeg
from sspnet.files.mapfiles import encode_png
from sspnet.visualize import colorize, overlay, panel_grid

from .api import CompressResult


def render_report(original: np.ndarray, result: CompressResult) -> np.ndarray:
    """Both SSM panels share one colour scale so their brightness compares honestly."""
    out = decode_jpeg(result.data)
    b = result.baseline
    vmax = max(float(result.ssm.max()), float(result.baseline_ssm.max()), 1e-6)
    last = allocation_panel(result, original.shape[:2])
    kb = lambda n: f"{n / 1000:.1f} kB"  # noqa: E731
    panels = [
        (original, f"input {result.width}x{result.height} px"),
        (out, f"sspcodec: {kb(result.bytes)}, {result.bpp:.3f} bpp\n"
              f"{result.predicted_gain_db:+.2f} dB where people look (predicted)"),
        (overlay(original, result.saliency), "predicted saliency (pristine)"),
        (overlay(original, result.baseline_ssm, vmax=vmax),
         f"SSM of plain JPEG q{b.quality:g}: {kb(b.bytes)}\npredicted shift {b.predicted_shift:.5f}"),
        (overlay(out, result.ssm, vmax=vmax),
         f"SSM of sspcodec output (same scale)\n{100 * -result.shift_reduction:+.1f}% predicted shift vs plain"),
        last,
    ]
    return panel_grid(panels, columns=3)


def allocation_panel(result: CompressResult, hw: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Where the bytes went: the search varies quality per block, so its quality map says it; rd
    keeps one table and prunes coefficients by block weight, so the weights say it."""
    if result.block_weights is not None:
        m, label = result.block_weights, "block weight: detail kept where bright (rd)"
    else:
        q = result.quality_map
        m = (q - q.min()) / max(float(q.max() - q.min()), 1e-6)
        label = f"block quality map: q{q.min():.0f} (dark) .. q{q.max():.0f} (bright)"
    panel = colorize(np.clip(m, 0, 1), vmax=1.0)
    return np.asarray(Image.fromarray(panel).resize((hw[1], hw[0]), Image.NEAREST)), label


def report_png(original: np.ndarray, result: CompressResult) -> bytes:
    """The report as PNG bytes, for the command's output plan to write with its other files."""
    return encode_png(render_report(original, result))
