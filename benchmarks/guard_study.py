"""Does the shift guard act, and what does it cost? (issue 24, item 3)

    python benchmarks/guard_study.py [--strength 1] [--kodak 24] [--limit 12] [--quality 85]

For each Kodak PNG and held-out half-size OSIE/EyeCrowd *test* image: sspcodec at --strength with
the shift guard off and on, at the bytes of plain jpegli at --quality. Per image: the predicted
shift (mean SSM) of the plain reference, of the output without the guard and with it, the guard's
rounds and whether it fell back to the plain JPEG, and the seconds. The summary counts the images
whose output's predicted shift is above the reference's (the guard's target: none), how often
the guard acted and fell back, the time it added (ratio of totals, same process), and the mean
saliency-weighted PSNR gain over the plain JPEG that remains.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from sspcodec import Encoder
from sspcodec.bench.paths import dataset_dirs, kodak_dir
from sspcodec.bench.testsets import held_out_images, kodak_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--kodak", type=int, default=24)
    ap.add_argument("--limit", type=int, default=12, help="held-out test images")
    ap.add_argument("--quality", type=int, default=85)
    args = ap.parse_args()
    t_start = time.perf_counter()
    on = Encoder(device="cpu", strength=args.strength)
    off = Encoder(on.model, strength=args.strength)
    off.strategy.shift_guard = False
    sets = {"Kodak": kodak_images(kodak_dir(), args.kodak) if args.kodak else [],
            "held-out test": held_out_images(dataset_dirs(), args.limit)[0] if args.limit else []}
    print(f"machine: {platform.machine()}, cpu; strength {args.strength:g}; budget: plain jpegli q{args.quality}")
    for title, images in sets.items():
        if not images:
            continue
        print(f"\n## {title} ({len(images)} images)\n")
        print("| image | plain shift | guard off | guard on | rounds | fell back |")
        print("|---|--:|--:|--:|--:|---|")
        rows = []
        for image in images:
            t0 = time.perf_counter()
            a = off.compress(image.rgb, quality=args.quality)
            t1 = time.perf_counter()
            b = on.compress(image.rgb, quality=args.quality)
            t2 = time.perf_counter()
            rows.append((a, b, t1 - t0, t2 - t1))
            print(f"| {image.name} | {a.baseline.predicted_shift:.5f} | {a.predicted_shift:.5f} | "
                  f"{b.predicted_shift:.5f} | {b.guard.rounds} | {'yes' if b.guard.fallback else 'no'} |", flush=True)
        above = [sum(r.predicted_shift > r.baseline.predicted_shift for r in col) for col in ([x[0] for x in rows],
                                                                                               [x[1] for x in rows])]
        acted = sum(x[1].guard.acted for x in rows)
        fell = sum(bool(x[1].guard.fallback) for x in rows)
        print(f"\noutput's predicted shift above the plain JPEG's: {above[0]}/{len(rows)} without the guard, "
              f"{above[1]}/{len(rows)} with it; the guard acted on {acted}, fell back to the plain JPEG on {fell}; "
              f"time with/without {sum(x[3] for x in rows) / sum(x[2] for x in rows):.2f}x; "
              f"mean predicted gain {np.mean([x[0].predicted_gain_db for x in rows]):+.2f} dB without, "
              f"{np.mean([x[1].predicted_gain_db for x in rows]):+.2f} dB with")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
