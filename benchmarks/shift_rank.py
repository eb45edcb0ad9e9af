"""Is the predicted shift a quantity above noise? Rank it against quality where people look.

For each held-out half-size OSIE/EyeCrowd image (bench_peers.py's set), several encodings at the
SAME bytes (the jpegli-q85 budget): turbo, mozjpeg, jpegli, and RD pruning driven by the model,
a centre Gaussian, half A of the observers, uniform weights, and the model at strength 0.5.
Each gets the model's predicted shift (mean SSM, the product's objective), two model-side
distortion scores (squared error weighted by the SSM, and by the predicted saliency SM_r), and
human-weighted PSNR from the OTHER half of the observers (wPSNR-B; half A drives one candidate).
Per image, Spearman's rho between each model-side score and wPSNR-B over the candidates; the
table gives the mean rho and on how many images it is negative (a useful objective: clearly
negative, i.e. lower predicted shift = better quality where people look).

    python benchmarks/shift_rank.py [--limit 16] [--quality 85] [--model default]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from sspcodec.bench.budgets import codecs_for
from sspcodec.bench.encoders import JpegliCodec, PrunedCodec, fixed_priority
from sspcodec.bench.paths import dataset_dirs
from sspcodec.bench.testsets import held_out_images
from sspcodec.quality import weighted_mse, weighted_psnr
from sspcodec.quant.settings import PruneSettings
from sspnet.zoo import load_model

SCORES = {
    "mean SSM (predicted shift)": "shift",
    "SSM-weighted squared error": "ssm_mse",
    "SM_r-weighted squared error (= -predicted_wpsnr, the reported figure)": "sal_mse",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    model = load_model(a.model, "cpu")
    images, centre = held_out_images(dataset_dirs(), a.limit)
    rhos: dict[str, list[float]] = {k: [] for k in SCORES}
    for image in images:
        cache = model.prepare(image.rgb)
        saliency = model.cached_saliency(cache)
        codecs = codecs_for(image, None, centre, saliency, sspcodec=False)
        codecs.append(PrunedCodec("rd-model-0.5", fixed_priority(saliency), settings=PruneSettings(0.5)))
        budget = len(JpegliCodec().encode(image.rgb, a.quality))
        rows = []
        for codec in codecs:
            dec = codec.decode(codec.encode_to_bytes(image.rgb, budget).data)
            ssm = model.predict_shift_cached(cache, [dec])[0].ssm
            rows.append({
                "shift": float(ssm.mean()),
                "ssm_mse": weighted_mse(image.rgb, dec, ssm),
                "sal_mse": weighted_mse(image.rgb, dec, saliency),
                "wpsnr_b": weighted_psnr(image.rgb, dec, image.human_b),
            })
        quality = [r["wpsnr_b"] for r in rows]
        for label, key in SCORES.items():
            rho = spearmanr([r[key] for r in rows], quality).statistic
            rhos[label].append(float(rho))
        print(f"{image.name}: " + "  ".join(f"{k} {rhos[lab][-1]:+.2f}" for lab, k in SCORES.items()), flush=True)
    print(f"\n{len(images)} held-out images, {len(codecs)} encodings each at the jpegli-q{a.quality} bytes; "
          f"model {a.model}; {platform.machine()} {torch.get_num_threads()} threads, {time.time() - t0:.0f} s")
    print("| model-side score | mean Spearman rho vs wPSNR-B | images with rho < 0 |\n|---|--:|--:|")
    for label, vals in rhos.items():
        v = np.array([x for x in vals if np.isfinite(x)])
        print(f"| {label} | {v.mean():+.3f} | {(v < 0).sum()}/{len(v)} |")


if __name__ == "__main__":
    main()
