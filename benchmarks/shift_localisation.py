"""Does the SSM point at the distortion that causes it, and grow with it? (issue 25, item 3)

    python benchmarks/shift_localisation.py [--kodak 24] [--where least|middle] [--model default]

For each Kodak PNG: the least salient ninth of the picture (the cell of its 3x3 grid with the
lowest predicted saliency; --where middle: the centre cell) is degraded and the rest coded at JPEG
q95; the model predicts the SSM of that pair. Patches: JPEG q8, q20, q40, motion blur and contrast
reduction at levels 1-3 (sspnet.distortions). The figure is the share of the SSM's mass inside
the patch grown by one fixation sigma (45/1920 of the width), next to that grown patch's share of
the area (what a map blind to the patch would put there). Also: on how many images the inside
share falls from q8 to q20 to q40; for each distortion over the whole image, on how many images
the total SSM grows with the level (1 < 2 < 3); and whether an identical pair gives exactly zero.

Each figure for three output stages of the same weights: as shipped (SSM spread over the
distorted saliency, `shift_blur` / `shift_spread`), without the spreading, and without the
spreading and the centre bias (`centre_sigma`, which also changes the saliency maps).
"""
from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import numpy as np

from sspcodec.bench.paths import kodak_dir
from sspcodec.bench.testsets import kodak_images
from sspnet.distortions import contrast_change, encode_jpeg_at, motion_blur
from sspnet.evaluate.localisation import (
    area_share,
    composite,
    grown,
    inside_share,
    least_salient_cell,
    middle_cell,
    strictly_falling,
)
from sspnet.maps import default_sigma
from sspnet.zoo import load_model

PATCHES = {
    "jpeg q8": lambda im: encode_jpeg_at(im, 8),
    "jpeg q20": lambda im: encode_jpeg_at(im, 20),
    "jpeg q40": lambda im: encode_jpeg_at(im, 40),
    **{f"motion blur {k}": (lambda im, k=k: motion_blur(im, k)) for k in (1, 2, 3)},
    **{f"contrast {k}": (lambda im, k=k: contrast_change(im, k)) for k in (1, 2, 3)},
}
GLOBAL = {"jpeg": lambda im, k: encode_jpeg_at(im, {1: 40, 2: 20, 3: 8}[k]), "motion blur": motion_blur,
          "contrast": contrast_change}
STAGES = {
    "shipped": {},
    "no spreading": {"shift_blur": 0.0, "shift_spread": 0.0},
    "no spreading, no centre bias": {"shift_blur": 0.0, "shift_spread": 0.0, "centre_sigma": 0.0},
}


def measure_image(model, rgb: np.ndarray, where: str) -> dict:
    """Inside shares per patch, the area share, total SSM per global distortion and level, and
    the identical pair's largest SSM value, for one image."""
    h, w = rgb.shape[:2]
    cell = least_salient_cell(model.predict_saliency(rgb)) if where == "least" else middle_cell((h, w))
    zone = grown(cell, default_sigma(w), (h, w))
    base = encode_jpeg_at(rgb, 95)
    names = list(PATCHES)
    pairs = [composite(base, PATCHES[n](rgb), cell) for n in names]
    levels = [(kind, k) for kind in GLOBAL for k in (1, 2, 3)]
    pairs += [GLOBAL[kind](rgb, k) for kind, k in levels]
    preds = model.predict_shift(rgb, pairs + [rgb])
    shares = {n: inside_share(p.ssm, zone) for n, p in zip(names, preds)}
    totals = {lv: float(p.ssm.mean()) for lv, p in zip(levels, preds[len(names):])}
    return {"shares": shares, "area": area_share(zone, (h, w)), "totals": totals,
            "identical": float(np.max(preds[-1].ssm))}


def report(rows: list[dict]) -> None:
    """Print one stage's table and counts."""
    n = len(rows)
    print("| patch | SSM mass inside the grown patch (mean) | images above its area share |")
    print("|---|--:|--:|")
    area = np.array([r["area"] for r in rows])
    for name in PATCHES:
        s = np.array([r["shares"][name] for r in rows])
        print(f"| {name} | {np.nanmean(s):.1%} | {int(np.sum(s > area))}/{n} |")
    print(f"| (area of the grown patch) | {area.mean():.1%} | |")
    falling = sum(strictly_falling([r["shares"][f"jpeg q{q}"] for q in (8, 20, 40)]) for r in rows)
    print(f"\ninside share q8 > q20 > q40: {falling}/{n} images")
    for kind in GLOBAL:
        grows = sum(strictly_falling([r["totals"][(kind, k)] for k in (3, 2, 1)]) for r in rows)
        print(f"total SSM grows with the level ({kind}, whole image): {grows}/{n} images")
    print(f"identical pair: largest SSM value {max(r['identical'] for r in rows):.3g} (0 = exactly zero)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", type=int, default=24)
    ap.add_argument("--where", default="least", choices=["least", "middle"])
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    t0 = time.perf_counter()
    model = load_model(args.model, "cpu")
    shipped = model.config
    images = kodak_images(kodak_dir(), args.kodak)
    print(f"machine: {platform.machine()}, cpu; model {args.model}; {len(images)} Kodak images; patch: "
          f"{'least salient ninth' if args.where == 'least' else 'centre ninth'}, rest JPEG q95")
    for stage, changes in STAGES.items():
        model.config = replace(shipped, **changes)
        rows = [measure_image(model, image.rgb, args.where) for image in images]
        print(f"\n## output stage: {stage}\n")
        report(rows)
    model.config = shipped
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
