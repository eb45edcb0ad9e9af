"""Human-grounded benchmark: quality where REAL people look, at equal bytes.

    python benchmarks/bench_human.py [--limit 40] [--model default]

Images: the OSIE + EyeCrowd images held out from model training and selection (the same
hash split `sspnet train` uses: 20% by image, seed 0). For each, at the bytes of a plain
libjpeg-turbo q85 JPEG (the in-process baseline):
- PSNR weighted by the image's real human saliency map (eq. 1 from its fixations), in dB;
- global SSIMULACRA2 (PyPI `ssimulacra2`), points;
for: plain JPEG; sspcodec (allocation from the model); the same allocation driven by a
centre-bias map fitted on the training images (the trivial competitor); and driven by the
real human map itself (the upper bound). Targets: sspcodec >= +1.0 dB weighted PSNR over
plain, SSIMULACRA2 drop <= 3 points, and better than centre bias.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sspcodec.bench.encoders import decode
from sspcodec.bench.paths import dataset_dirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", default=dataset_dirs())
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=40, help="held-out images to use (spread over both sets)")
    ap.add_argument("--quality", type=int, default=85, help="budget: bytes of a plain JPEG at this quality")
    ap.add_argument("--no-ssimulacra2", action="store_true")
    args = ap.parse_args()

    from sspcodec import Encoder
    from sspcodec.quality import ssimulacra2_score, weighted_psnr
    from sspnet.baselines import CenterBias
    from sspnet.data import get_saliency_map
    from sspnet.training.experiments import read_saliency_items, split_holdout

    print(f"machine: {platform.machine()}; model {args.model}; budget = plain q{args.quality} bytes")
    items = read_saliency_items(args.data)
    train, _, test = split_holdout(items, 0.2, 0.1, 0)
    cb = CenterBias.fit([get_saliency_map(items[i]) for i in train])
    step = max(1, len(test) // args.limit)
    test = test[::step][: args.limit]
    enc = Encoder(args.model, device="cpu")
    names = ["plain", "sspcodec", "centre-bias", "human-map"]
    scores: dict[str, dict[str, list[float]]] = {n: {"wpsnr": [], "ssim2": [], "bytes": []} for n in names}
    t0 = time.perf_counter()
    for k, i in enumerate(test):
        item = items[i]
        rgb = np.asarray(Image.open(item.image_path).convert("RGB"))
        human = get_saliency_map(item)
        target = len(enc.plain(rgb, args.quality))
        out = {"plain": enc.plain(rgb, args.quality)}
        out["sspcodec"] = enc.compress(rgb, max_bytes=target).data
        out["centre-bias"] = enc.compress(rgb, max_bytes=target, priority=cb.predict(rgb.shape[:2])).data
        out["human-map"] = enc.compress(rgb, max_bytes=target, priority=human).data
        for n in names:
            dec = decode(out[n])
            scores[n]["wpsnr"].append(weighted_psnr(rgb, dec, human))
            scores[n]["bytes"].append(len(out[n]))
            if not args.no_ssimulacra2:
                scores[n]["ssim2"].append(ssimulacra2_score(rgb, dec))
        print(f"[{k + 1}/{len(test)}] {item.dataset}/{item.name}: wPSNR " + "  ".join(
            f"{n} {scores[n]['wpsnr'][-1]:.2f}" for n in names), flush=True)
    print(f"\n{len(test)} held-out images, {time.perf_counter() - t0:.0f} s")
    base_w = np.array(scores["plain"]["wpsnr"])
    base_s = np.array(scores["plain"]["ssim2"]) if scores["plain"]["ssim2"] else None
    print(f"{'allocation':12} {'bytes/plain':>11} {'wPSNR dB':>9} {'vs plain':>9} {'SSIMU2':>7} {'vs plain':>9}")
    for n in names:
        w = np.array(scores[n]["wpsnr"])
        b = np.sum(scores[n]["bytes"]) / np.sum(scores["plain"]["bytes"])
        line = f"{n:12} {b:11.4f} {w.mean():9.2f} {np.mean(w - base_w):+9.2f}"
        if base_s is not None:
            s = np.array(scores[n]["ssim2"])
            line += f" {s.mean():7.2f} {np.mean(s - base_s):+9.2f}"
        print(line)


if __name__ == "__main__":
    main()
