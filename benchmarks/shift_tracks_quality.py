"""Does the predicted shift track visible quality across bytes? (issue 24, item 3)

    python benchmarks/shift_tracks_quality.py [--part val] [--limit 8] [--qualities 30 40 ... 95]
        [--geometry fhd|4k] [--kodak 0]

For every held-out half-size OSIE/EyeCrowd image (bench_peers.py's set; --part val by default,
so nothing here is read off the test images) and, with --kodak N, the first N Kodak images:
plain jpegli (optimised Huffman, progressive where smaller) at each quality, its bpp, the
model's predicted shift (mean SSM of the pair, what ``--max-shift`` bounds) and the
ColorVideoVDP JOD at --geometry (image shown 1:1). Prints per image the Spearman correlation of
shift with JOD along the curve (-1: the shift falls exactly as visible quality rises), then
three rate controls at matched sizes (sspcodec.bench.ratecontrol): by quality, by a predicted
shift bound, and by ColorVideoVDP itself (the oracle): the JOD spread across images says how
evenly each control spends visible quality.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from sspcodec.bench.encoders import JpegliCodec
from sspcodec.bench.judges import Judges, missing
from sspcodec.bench.paths import dataset_dirs, kodak_dir
from sspcodec.bench.ratecontrol import Point, compare_controls, control_table, tracking
from sspcodec.bench.testsets import held_out_images, kodak_images
from sspnet.zoo import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="val", choices=["val", "test"])
    ap.add_argument("--limit", type=int, default=8, help="held-out images")
    ap.add_argument("--kodak", type=int, default=0, help="also the first N Kodak images")
    ap.add_argument("--qualities", type=int, nargs="+", default=[30, 40, 50, 60, 70, 80, 90, 95])
    ap.add_argument("--geometry", default="fhd", choices=["fhd", "4k"])
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    why = missing()
    if why:
        raise SystemExit(f"the judges are needed: {why}")
    t0 = time.perf_counter()
    judges, jpegli, model = Judges(args.geometry), JpegliCodec(), load_model(args.model, "cpu")
    images = held_out_images(dataset_dirs(), args.limit, args.part)[0] if args.limit else []
    images += kodak_images(kodak_dir(), args.kodak) if args.kodak else []
    print(f"machine: {platform.machine()}, cpu; model {args.model}; judge ColorVideoVDP {judges.display}, 1:1; "
          f"{len(images)} images ({args.part} part + {args.kodak} Kodak); plain jpegli at q {args.qualities}")
    curves, rhos = [], []
    for image in images:
        h, w = image.rgb.shape[:2]
        datas = [jpegli.encode(image.rgb, q) for q in args.qualities]
        decoded = [jpegli.decode(d) for d in datas]
        shifts = [float(p.ssm.mean()) for p in model.predict_shift(image.rgb, decoded)]
        curve = [Point(q, len(d) * 8 / (h * w), s, judges.colour(x, image.rgb))
                 for q, d, s, x in zip(args.qualities, datas, shifts, decoded)]
        curves.append(curve)
        rhos.append(tracking(curve))
        print(f"{image.name}: rho(shift, JOD) {rhos[-1]:+.2f}; shift {curve[0].shift:.5f} -> {curve[-1].shift:.5f}, "
              f"JOD {curve[0].jod:.2f} -> {curve[-1].jod:.2f}", flush=True)
    valid = np.array(rhos)[np.isfinite(rhos)]
    print(f"\nmean rho {np.mean(valid):+.3f}; negative on {int(np.sum(valid < 0))}/{len(valid)} images\n")
    print(control_table(compare_controls(curves, args.qualities[1:-1])))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
