"""Would predicting several images' maps in one forward pass (cross-image batching) speed up the
batch on this CPU? Measured before building it (issue 12, item 2; target >= 1.2x images/s).

    python benchmarks/bench_batching.py [--images 8] [--batches 2 4 8] [--threads 1 2] [--repeats 3]
                                        [--model default] [--json out.json]

Today's path (`sspcodec.api.Encoder`, method rd) calls the model three times per image, each on
one canvas and each depending on the one before: SM_r of the pristine image (`model.prepare`),
the SSM of the plain reference JPEG (it sets the block weights), the SSM of the pruned output
(the reported figure). Cross-image batching would run each of those steps for B images in one
forward. For each torch thread count this script measures, in one process:

1. the whole encode of IMAGES Kodak images with `Encoder.compress` (today), and the share of its
   time spent inside the model (`SSPNet.saliency`, timed by a wrapper);
2. the model steps alone, per image: three batch-1 forwards (today) against the same three
   steps as batch-B forwards over B images' canvases (cross-image), medians of REPEATS;
3. the images/s ratio cross-image/today that batching could give at best: the whole encode time
   with its model share scaled by the measured batch-B/batch-1 ratio (everything else, decode,
   jpegli encodes, pruning, unchanged), and the largest difference between the batched and the
   batch-1 maps (batching must not change the bytes).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sspcodec.api import Encoder
from sspcodec.bench.paths import kodak_dir
from sspcodec.decoding import decode_jpeg


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of fn() over *repeats* runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--batches", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="default")
    ap.add_argument("--kodak", type=Path, default=kodak_dir())
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    photos = sorted(args.kodak.glob("*.png"))[: max(args.images, max(args.batches))]
    rgbs = [np.asarray(Image.open(p).convert("RGB")) for p in photos]
    enc = Encoder(args.model, "cpu")
    model = enc.model
    pristine = [model.to_canvas(a) for a in rgbs]
    plain = [model.to_canvas(decode_jpeg(enc.plain(a, 85))) for a in rgbs]

    def forward(canvases: list[np.ndarray], which: str) -> torch.Tensor:
        x = torch.from_numpy(np.stack(canvases)).permute(0, 3, 1, 2).float().div_(255)
        with torch.inference_mode():
            return model.saliency(x, which).float()

    # the model's share of today's encode: time every call of SSPNet.saliency
    spent = {"s": 0.0, "calls": 0}
    real = model.saliency

    def counting(*a, **k):
        t0 = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            spent["s"] += time.perf_counter() - t0
            spent["calls"] += 1

    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        images = rgbs[: args.images]
        enc.compress(images[0])  # warm-up
        model.saliency = counting  # type: ignore[method-assign]
        spent.update(s=0.0, calls=0)
        t0 = time.perf_counter()
        for a in images:
            enc.compress(a)
        total = time.perf_counter() - t0
        del model.saliency  # the class's method again
        model_share, calls = spent["s"] / total, spent["calls"] / len(images)
        row = {"threads": threads, "encode_s_per_image": total / len(images), "model_share": model_share,
               "model_calls_per_image": calls, "batches": []}
        print(f"threads {threads}: today {total / len(images):.3f} s/image, {calls:.0f} model calls per image, "
              f"{100 * model_share:.0f}% of the time in the model", flush=True)
        def per_image(n: int = 4) -> None:
            for p, q in zip(pristine[:n], plain[:n]):
                forward([p], "r"), forward([q], "d"), forward([q], "d")

        one = timed(per_image, args.repeats) / 4
        for b in args.batches:
            many = timed(lambda: (forward(pristine[:b], "r"), forward(plain[:b], "d"), forward(plain[:b], "d")),
                         args.repeats) / b
            diff = max(float((forward(plain[:b], "d")[i] - forward([plain[i]], "d")[0]).abs().max()) for i in range(b))
            model_speedup = one / many
            # whole-image images/s if only the model part changed by the measured factor
            projected = 1.0 / (1 - model_share + model_share / model_speedup)
            row["batches"].append({"batch": b, "model_ms_per_image_batch1": 1e3 * one,
                                   "model_ms_per_image_batched": 1e3 * many, "model_speedup": model_speedup,
                                   "images_per_s_ratio": projected, "max_abs_map_difference": diff})
            print(f"  batch {b}: model {1e3 * one:.1f} ms/image at batch 1 vs {1e3 * many:.1f} batched "
                  f"({model_speedup:.2f}x); images/s cross-image/today {projected:.3f}x "
                  f"(target >= 1.2x); max map difference {diff:.2e}", flush=True)
        results.append(row)
    best = max(b["images_per_s_ratio"] for r in results for b in r["batches"])
    print(f"best cross-image/today images/s ratio: {best:.3f}x")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
