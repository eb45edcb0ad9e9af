"""Choose the RD pruning's settings on validation images, never on the benchmark's test images.

    python benchmarks/tune_rd.py [--limit 12] [--qualities 70 85] [--ratios 0.75 0.7 0.65]
        [--floors 0.03 0.05 0.08] [--chroma-gains 0.55] [--min-freqs 3] [--driver model]

The split's validation part of OSIE + EyeCrowd (the `sspnet train` hash split, seed 0: neither
trained on nor used by bench_peers.py), Lanczos half size with fixations scaled, as in
bench_peers.py. For every combination of settings, RD pruning of jpegli
(:func:`sspcodec.quant.rdprune.prune_to_budget`) driven by the model's predicted saliency (or
the centre Gaussian fitted on the training split: ``--driver centre``) at the bytes of jpegli at
each quality, against plain jpegli at the same budget: mean difference of human-weighted PSNR
(wPSNR-B: the map of half B of the observers; the images' own fixations never drive anything
here), PSNR and SSIMULACRA2, and the images where wPSNR-B is higher. The targets of issue 9
allow at most 1 dB PSNR and 5 SSIMULACRA2 points of global cost.
"""
from __future__ import annotations

import argparse
import itertools
import platform
import time

import numpy as np
import torch

from sspcodec.bench.encoders import JpegliCodec, decode
from sspcodec.bench.paths import dataset_dirs
from sspcodec.bench.testsets import held_out_images
from sspcodec.quality import psnr, ssimulacra2_score, weighted_psnr
from sspcodec.quant.rdprune import fit_quality, plain_encoder, prune_to_budget


def scores(image, data: bytes) -> np.ndarray:
    dec = decode(data)
    return np.array([weighted_psnr(image.rgb, dec, image.human_b), psnr(image.rgb, dec),
                     ssimulacra2_score(image.rgb, dec)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--qualities", type=int, nargs="+", default=[70, 85])
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.75, 0.70, 0.65])
    ap.add_argument("--floors", type=float, nargs="+", default=[0.03, 0.05, 0.08])
    ap.add_argument("--chroma-gains", type=float, nargs="+", default=[0.55])
    ap.add_argument("--min-freqs", type=int, nargs="+", default=[3])
    ap.add_argument("--driver", choices=("model", "centre"), default="model")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    from sspnet import load_model

    images, centre = held_out_images(dataset_dirs(), a.limit, "val")
    model = load_model("default", "cpu")
    drive = {im.name: model.predict_saliency(im.rgb) if a.driver == "model" else centre.predict(im.rgb.shape[:2])
             for im in images}
    grid = list(itertools.product(a.ratios, a.floors, a.chroma_gains, a.min_freqs))
    print(f"{len(images)} validation images, driver {a.driver}; vs plain jpegli at the budget")
    print("| budget | ratio | floor | chroma gain | min freq | Δ wPSNR-B (dB, better) | Δ PSNR (dB) | Δ SSIMULACRA2 |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for q in a.qualities:
        rows: dict[tuple, list[np.ndarray]] = {g: [] for g in grid}
        for im in images:
            budget = len(JpegliCodec().encode(im.rgb, q))
            fit = fit_quality(plain_encoder(im.rgb), budget)
            plain = scores(im, fit[1])
            for g in grid:
                ratio, floor, gain, mf = g
                out = prune_to_budget(im.rgb, drive[im.name], budget, ratio=ratio, floor=floor, chroma_gain=gain,
                                      min_freq=mf, plain=fit)
                rows[g].append(scores(im, out.data) - plain)
        for g, r in rows.items():
            d = np.array(r)
            print(f"| jpegli q{q} | {g[0]:g} | {g[1]:g} | {g[2]:g} | {g[3]} | {d[:, 0].mean():+.3f} "
                  f"({(d[:, 0] > 0).sum()}/{len(d)}) | {d[:, 1].mean():+.3f} | {d[:, 2].mean():+.2f} |", flush=True)
    print(f"\n{platform.machine()}, {torch.get_num_threads()} threads, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
