"""The side-by-side report: input, output, predicted saliency, and the two predicted shift maps."""
from __future__ import annotations

import numpy as np
from PIL import Image

from sspnet.imageio import encode_png
from sspnet.visualize import colorize, overlay, panel_grid

from .api import CompressResult
from .io import decode_jpeg


def render_report(original: np.ndarray, result: CompressResult) -> np.ndarray:
    """Both SSM panels share one colour scale so their brightness compares honestly."""
    out = decode_jpeg(result.data)
    b = result.baseline
    vmax = max(float(result.ssm.max()), float(result.baseline_ssm.max()), 1e-6)
    q = result.quality_map
    qmap = colorize(np.clip((q - q.min()) / max(float(q.max() - q.min()), 1e-6), 0, 1), vmax=1.0)
    qmap = np.asarray(Image.fromarray(qmap).resize((original.shape[1], original.shape[0]), Image.NEAREST))
    kb = lambda n: f"{n / 1000:.1f} kB"  # noqa: E731
    panels = [
        (original, f"input {result.width}x{result.height} px"),
        (out, f"sspcodec: {kb(result.bytes)}, {result.bpp:.3f} bpp\npredicted shift {result.predicted_shift:.5f}"),
        (overlay(original, result.saliency), "predicted saliency (pristine)"),
        (overlay(original, result.baseline_ssm, vmax=vmax),
         f"SSM of plain JPEG q{b.quality:g}: {kb(b.bytes)}\npredicted shift {b.predicted_shift:.5f}"),
        (overlay(out, result.ssm, vmax=vmax),
         f"SSM of sspcodec output (same scale)\n{100 * -result.shift_reduction:+.1f}% predicted shift vs plain"),
        (qmap, f"block quality map: q{q.min():.0f} (dark) .. q{q.max():.0f} (bright)"),
    ]
    return panel_grid(panels, columns=3)


def report_png(original: np.ndarray, result: CompressResult) -> bytes:
    """The report as PNG bytes, for the command's output plan to write with its other files."""
    return encode_png(render_report(original, result))
