"""A quick screen of RD-pruning variants at equal bytes against plain jpegli, on validation images.

    python benchmarks/rd_engine_screen.py VARIANT [VARIANT ...] [--limit 6] [--qualities 70 85]
        [--geometry fhd]

A VARIANT is ``power:strength:driver[:ratio]``: ``power`` the RD rule's step_power (0: the error
of dropping a coefficient in pixels; 2: in the quantisation table's steps), ``strength`` the
knob, ``driver`` ``m`` (the model's saliency) or ``u`` (uniform weights: the engine alone), and
``ratio`` the base's step ratio at strength 1 (default 0.70); ``mozjpeg`` alone is the peer.
Each is held to the bytes of plain jpegli at each quality (the budget) on held-out images of the
split's *validation* part (never the benchmark's test images), and the table gives the mean
difference to that plain jpegli: SSIMULACRA2, ColorVideoVDP JOD (--geometry, 1:1), PSNR weighted
by half B of the observers (wPSNR-B, a diagnostic) and PSNR. ColorVideoVDP only (no foveated
judge): a screen, before bench_peers.py judges a choice fully.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from sspcodec.bench.budgets import jpegli_budget
from sspcodec.bench.encoders import Codec, JpegliCodec, PrunedCodec, fixed_priority, get_codec
from sspcodec.bench.judges import Judges, missing
from sspcodec.bench.measures import measure
from sspcodec.bench.paths import dataset_dirs
from sspcodec.bench.testsets import held_out_images
from sspcodec.quant.settings import DEFAULT_STEP_RATIO, PruneSettings
from sspnet.zoo import load_model

SHOWN = ("ssim2", "cvvdp", "wpsnr_b", "psnr")


def make_codec(variant: str, saliency: np.ndarray) -> Codec:
    """The codec a VARIANT string names (see the module docstring)."""
    if variant == "mozjpeg":
        return get_codec("mozjpeg")
    power, strength, driver, *rest = variant.split(":")
    prio = saliency if driver == "m" else np.ones_like(saliency)
    settings = PruneSettings(float(strength), ratio=float(rest[0]) if rest else DEFAULT_STEP_RATIO,
                             step_power=float(power))
    return PrunedCodec(variant, fixed_priority(prio), settings=settings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--qualities", type=int, nargs="+", default=[70, 85])
    ap.add_argument("--geometry", default="fhd", choices=["fhd", "4k"])
    args = ap.parse_args()
    if missing():
        raise SystemExit(f"the judges are needed: {missing()}")
    t0 = time.perf_counter()
    model, judges, jpegli = load_model("default", "cpu"), Judges(args.geometry), JpegliCodec()
    images, _ = held_out_images(dataset_dirs(), args.limit, "val")
    print(f"machine: {platform.machine()}, cpu; {len(images)} validation images; ColorVideoVDP {judges.display}")
    diffs: dict[tuple[str, int], list[dict]] = {}
    for image in images:
        saliency = model.predict_saliency(image.rgb)
        for q in args.qualities:
            budget = jpegli_budget(image.rgb, q)
            ref = measure(image, jpegli.encode(image.rgb, q), jpegli, None, judges)
            for v in args.variants:
                codec = make_codec(v, saliency)
                row = measure(image, codec.encode_to_bytes(image.rgb, budget).data, codec, None, judges)
                diffs.setdefault((v, q), []).append({m: row[m] - ref[m] for m in SHOWN})
        print(f"{image.name} {time.perf_counter() - t0:.0f} s", flush=True)
    print("\n| variant | budget | ΔSSIMULACRA2 | ΔColorVideoVDP (JOD) | ΔwPSNR-B (dB) | ΔPSNR (dB) |")
    print("|---|---|--:|--:|--:|--:|")
    for (v, q), rows in diffs.items():
        mean = {m: np.mean([r[m] for r in rows]) for m in SHOWN}
        print(f"| {v} | jpegli q{q} | {mean['ssim2']:+.2f} | {mean['cvvdp']:+.3f} | {mean['wpsnr_b']:+.2f} | "
              f"{mean['psnr']:+.2f} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
