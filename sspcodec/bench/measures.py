"""The quality figures of one encoding against its original, as the codec benchmarks report them.

The judges first (:mod:`sspcodec.bench.judges`, when given): ColorVideoVDP JOD (global, colour)
and FovVideoVDP JOD with the eye on each of half B's fixations (mean and worst), at one viewing
geometry. Then SSIMULACRA2; butteraugli's 3-norm (the external ``butteraugli_main``, when
installed); PSNR; and two diagnostics that assume a viewer sees only the fixated spot:
human-weighted PSNR (wPSNR: per-pixel squared error weighted by the map of all observers) and
wPSNR-B (weighted by the map of the *other* half of the observers, the only fair score for a codec
driven by half A). Every decode goes through the codec's ``decode`` (Pillow for all of them).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from sspcodec.bench.encoders import Codec
from sspcodec.bench.judges import Judges
from sspcodec.bench.testsets import BenchImage
from sspcodec.quality import psnr, ssimulacra2_score, weighted_psnr

METRICS = ("cvvdp", "fvvdp_mean", "fvvdp_worst", "psnr", "wpsnr", "wpsnr_b", "ssim2", "butteraugli")
LABELS = {"cvvdp": "ColorVideoVDP", "fvvdp_mean": "FovVDP mean", "fvvdp_worst": "FovVDP worst", "psnr": "PSNR",
          "wpsnr": "wPSNR", "wpsnr_b": "wPSNR-B", "ssim2": "SSIMULACRA2", "butteraugli": "BA 3-norm"}
LOWER_IS_BETTER = {"butteraugli"}
#: The metrics only the judges give.
JUDGED = ("cvvdp", "fvvdp_mean", "fvvdp_worst")
#: The butteraugli command line tool (libjxl's).
BUTTERAUGLI = "butteraugli_main"

#: One encoding's figures: metric (or "bytes", "bpp", "ratio", "seconds") -> value, None if not measured.
Row = dict[str, float | None]


def butteraugli(ref_png: Path, dist: np.ndarray, tmp: Path) -> float:
    """butteraugli_main's 3-norm of *dist* against the reference PNG (lower is better)."""
    path = tmp / "dist.png"
    Image.fromarray(dist).save(path)
    out = subprocess.run([BUTTERAUGLI, str(ref_png), str(path)], capture_output=True, text=True, check=True).stdout
    return float(next(line for line in out.splitlines() if line.startswith("3-norm:")).split(":")[1])


def measure(image: BenchImage, data: bytes, codec: Codec, tmp: Path | None, judges: Judges | None = None) -> Row:
    """Every metric of one encoding (None where the image has no map or fixations, butteraugli is
    absent, or no `judges` are given)."""
    dec = codec.decode(data)
    ref = image.rgb
    fov = (None, None)
    if judges is not None and image.fixations_b is not None and len(image.fixations_b):
        fov = judges.foveated(dec, ref, image.fixations_b)
    return {
        "cvvdp": None if judges is None else judges.colour(dec, ref),
        "fvvdp_mean": fov[0],
        "fvvdp_worst": fov[1],
        "bytes": float(len(data)),
        "bpp": 8.0 * len(data) / (ref.shape[0] * ref.shape[1]),
        "psnr": psnr(ref, dec),
        "wpsnr": None if image.human is None else weighted_psnr(ref, dec, image.human),
        "wpsnr_b": None if image.human_b is None else weighted_psnr(ref, dec, image.human_b),
        "ssim2": ssimulacra2_score(ref, dec),
        "butteraugli": None if tmp is None or image.ref_png is None else butteraugli(image.ref_png, dec, tmp),
    }


__all__ = ["BUTTERAUGLI", "JUDGED", "LABELS", "LOWER_IS_BETTER", "METRICS", "Row", "butteraugli", "measure"]
