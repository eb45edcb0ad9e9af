"""Kodak equal-bytes benchmark and encoder speed.

    python benchmarks/bench_codec.py [--kodak DIR] [--model default] [--limit N] [--speed]
                                     [--method rd|search] [--strength S]

For each Kodak image: sspcodec at its default budget (the bytes of the method's plain q85 JPEG:
for the default rd method, jpegli rewritten with optimised Huffman tables; for search,
libjpeg-turbo) against that plain JPEG (the baseline, made in the same process by the same
encoder): bytes, PSNR, predicted shift (mean SSM) and its change. Kodak has no fixations, so
this shows the global price and the speed, not the gain where people look (see
benchmarks/bench_peers.py). `--speed`: one 1920x1080 photo (a Kodak image resized), wall time
per call after the model is loaded (load time printed separately), s/MP, with the plain q85
encode as the in-process baseline.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sspcodec.bench.encoders import decode
from sspcodec.bench.paths import kodak_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", type=Path, default=kodak_dir())
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--speed", action="store_true", help="also time a 1920x1080 photo")
    ap.add_argument("--method", default="rd", choices=["rd", "search"])
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--json", type=Path, help="write per-image rows here")
    args = ap.parse_args()

    from sspcodec import Encoder
    from sspcodec.quality import psnr

    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; torch threads default")
    t0 = time.perf_counter()
    enc = Encoder(args.model, device=args.device, method=args.method, strength=args.strength)
    print(f"model load: {time.perf_counter() - t0:.2f} s; method {enc.method} on {enc.backend.name}")
    files = sorted(args.kodak.glob("kodim*.png"))[: args.limit]
    if not files:
        raise SystemExit(f"no Kodak images in {args.kodak}")
    rows = []
    print(f"{'image':10} {'bytes':>8} {'plain':>8} {'bytes%':>7} {'shift':>9} {'plain':>9} {'reduct':>7} "
          f"{'PSNR':>6} {'plain':>6} {'evals':>5} {'s':>5}")
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        r = enc.compress(rgb)
        b = r.baseline
        plain = decode(enc.plain(rgb, int(b.quality)))
        row = {
            "image": f.stem, "bytes": r.bytes, "plain_bytes": b.bytes, "shift": r.predicted_shift,
            "plain_shift": b.predicted_shift, "reduction": r.shift_reduction, "psnr": psnr(rgb, decode(r.data)),
            "plain_psnr": psnr(rgb, plain), "evals": r.model_evaluations, "seconds": r.seconds,
        }
        rows.append(row)
        print(f"{f.stem:10} {r.bytes:8d} {b.bytes:8d} {100 * (r.bytes / b.bytes - 1):+6.2f}% {r.predicted_shift:9.5f} "
              f"{b.predicted_shift:9.5f} {100 * r.shift_reduction:+6.1f}% {row['psnr']:6.2f} {row['plain_psnr']:6.2f} "
              f"{r.model_evaluations:5d} {r.seconds:5.2f}")
    n = len(rows)
    wins = sum(r["shift"] < r["plain_shift"] for r in rows)
    mean_red = float(np.mean([r["reduction"] for r in rows]))
    within = sum(0.99 <= r["bytes"] / r["plain_bytes"] <= 1 for r in rows)
    print(f"\nlower predicted shift on {wins}/{n} images")
    print(f"mean shift reduction {100 * mean_red:.1f}%; "
          f"total shift ratio {sum(r['shift'] for r in rows) / sum(r['plain_shift'] for r in rows):.3f} x plain")
    print(f"bytes within 1% below the plain JPEG on {within}/{n} images "
          f"(mean {np.mean([r['bytes'] / r['plain_bytes'] for r in rows]):.4f} x budget); "
          f"mean PSNR {np.mean([r['psnr'] for r in rows]):.2f} dB "
          f"vs {np.mean([r['plain_psnr'] for r in rows]):.2f} dB plain")
    print(f"mean time {np.mean([r['seconds'] for r in rows]):.2f} s/image, "
          f"{np.mean([r['evals'] for r in rows]):.1f} model evaluations/image")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))

    if args.speed:
        src = np.asarray(Image.open(files[-1]).convert("RGB").resize((1920, 1080), Image.LANCZOS))
        t = time.perf_counter()
        for _ in range(3):
            enc.plain(src, 85)
        plain_s = (time.perf_counter() - t) / 3
        times = []
        for _ in range(2):
            t = time.perf_counter()
            r = enc.compress(src)
            times.append(time.perf_counter() - t)
        best = min(times)
        mp = src.shape[0] * src.shape[1] / 1e6
        print(f"\n1920x1080: sspcodec {best:.2f} s = {best / mp:.2f} s/MP (best of {len(times)}; "
              f"target <= 2.5 s on the 2-core CPU), plain q85 {1000 * plain_s:.0f} ms -> {best / plain_s:.0f}x plain; "
              f"{r.model_evaluations} model evaluations")


if __name__ == "__main__":
    main()
