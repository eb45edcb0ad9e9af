"""What the predicted shift adds to the default encoder's block weights, per model revision.

The default `rd` method weights blocks by max(saliency, SSM of the plain reference / its max)
(`sspcodec.methods.search.RdPruning`, `shift_mix`). This runs the wired `sspcodec.Encoder` (rd, jpegli
base, default strength) on held-out half-size OSIE/EyeCrowd images (bench_peers.py's set) at the
jpegli-q85 budget with the shift term on (shift_mix 1) and off (0, saliency alone), for each model
given, and prints mean differences against plain jpegli at the same budget: human-weighted PSNR
(all observers), PSNR, SSIMULACRA2.

    python benchmarks/bench_rd_weights.py --models default [OTHER.safetensors ...] [--limit 16]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from sspcodec import Encoder
from sspcodec.bench.encoders import JpegliCodec, decode
from sspcodec.bench.paths import dataset_dirs
from sspcodec.bench.testsets import held_out_images
from sspcodec.quality import psnr, ssimulacra2_score, weighted_psnr


def scores(image, data: bytes) -> dict[str, float]:
    dec = decode(data)
    return {"wpsnr": weighted_psnr(image.rgb, dec, image.human), "psnr": psnr(image.rgb, dec),
            "ssim2": ssimulacra2_score(image.rgb, dec), "ratio": float(len(data))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["default"])
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    images, _ = held_out_images(dataset_dirs(), a.limit)
    jpegli = JpegliCodec()
    rows: dict[str, list[dict[str, float]]] = {}
    for image in images:
        budget = len(jpegli.encode(image.rgb, a.quality))
        plain = scores(image, jpegli.encode_to_bytes(image.rgb, budget).data)
        for model in a.models:
            encoder = Encoder(model, device="cpu")
            for mix in (1.0, 0.0):
                encoder.strategy.shift_mix = mix
                got = scores(image, encoder.compress(image.rgb, max_bytes=budget).data)
                rows.setdefault(f"{model}, shift_mix {mix:g}", []).append(
                    {k: got[k] - plain[k] for k in ("wpsnr", "psnr", "ssim2")} | {"ratio": got["ratio"] / budget})
        print(f"{image.name} done", flush=True)
    print(f"\n{len(images)} held-out images at the jpegli-q{a.quality} budget, vs plain jpegli at the same budget; "
          f"{platform.machine()}, {torch.get_num_threads()} threads, {time.time() - t0:.0f} s")
    print("| encoder | Δ wPSNR (dB) | better | Δ PSNR (dB) | Δ SSIMULACRA2 | bytes/budget (min) |")
    print("|---|--:|--:|--:|--:|--:|")
    for label, r in rows.items():
        w = np.array([x["wpsnr"] for x in r])
        print(f"| {label} | {w.mean():+.3f} | {(w > 0).sum()}/{len(w)} | {np.mean([x['psnr'] for x in r]):+.3f} | "
              f"{np.mean([x['ssim2'] for x in r]):+.2f} | {min(x['ratio'] for x in r):.3f} |")


if __name__ == "__main__":
    main()
