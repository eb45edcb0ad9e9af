"""Backbone study, cost side: `default` with MobileNetV2 vs the same config with EfficientNet-Lite0/1/2.

For each config (`default`, `default-effl0/1/2`: same dims, transformers and decoder, only the
trunk differs) it prints the parameter count, trunk-only ms per image at `--batch` and full ms
per distorted candidate at `--batch` on 384x288, measured the way `bench_model.py` measures them
(`images`, `build` and `median_ms` of `sspcodec.bench`; random weights, since cost does not depend
on them), and the FLOPs of one image through the trunk and one candidate through encoder + distorted decoder
(torch's FlopCounterMode), which no load on the machine can move.

The CPU this was written on is shared with other jobs, so absolute times drift by tens of percent
within a minute. Every round therefore times all four trunks and all four models back to back (in
a rotating order), each ratio against MobileNetV2 is taken within its round, and the table shows
medians over rounds: a load spike then hits the numerator and denominator alike.

    python benchmarks/bench_backbones.py                      # 2 threads, 9 rounds
    python benchmarks/bench_backbones.py --threads 1 --rounds 15
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

import sspnet
from sspcodec.bench.models import build
from sspcodec.bench.timing import images, median_ms
from sspnet.net.backbones import build_backbone
from sspnet.net.model import count_parameters

CONFIGS = ("default", "default-effl0", "default-effl1", "default-effl2")


def gflops(fn: Callable[[], object]) -> float:
    """FLOPs of one call (a multiply-add counts 2), in G: the load-independent side of the cost."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def measure(args: argparse.Namespace) -> list[dict]:
    """Per config: params and, per round, trunk ms/image and full ms/candidate (one call each)."""
    dev = torch.device("cpu")
    pristine, cands = images(args.batch)
    h, w = sspnet.CONFIGS["default"].input_size
    x = torch.rand(args.batch, 3, h, w)
    rows = []
    for config in CONFIGS:
        backbone = sspnet.CONFIGS[config].backbone
        trunk = build_backbone(backbone).eval()
        model = build(config, dev)
        cache = model.prepare(pristine)
        with torch.inference_mode():
            trunk_gf = gflops(lambda: trunk(x[:1]))
            full_gf = gflops(lambda: model.decode(model.encode(x[:1]), "d", (h, w)))
        rows.append({"config": config, "backbone": backbone, "trunk_params": count_parameters(trunk),
                     "params": count_parameters(model), "trunk_gf": trunk_gf, "full_gf": full_gf,
                     "trunk_ms": [], "full_ms": [], "trunk": trunk, "model": model, "cache": cache})
    with torch.inference_mode():
        for r in rows:  # one untimed warm-up each (allocator, first-call dispatch)
            r["trunk"](x)
            r["model"].predict_shift_cached(r["cache"], cands, batch_size=args.batch)
        for i in range(args.rounds):
            for r in rows[i % len(rows):] + rows[:i % len(rows)]:  # rotate: no config always runs first
                r["trunk_ms"].append(median_ms(lambda: r["trunk"](x), 1, warmup=0) / args.batch)
                r["full_ms"].append(median_ms(
                    lambda: r["model"].predict_shift_cached(r["cache"], cands, batch_size=args.batch),
                    1, warmup=0) / args.batch)
            print(f"round {i + 1}/{args.rounds}: " + ", ".join(
                f"{r['config']} {r['trunk_ms'][-1]:.1f}/{r['full_ms'][-1]:.1f}" for r in rows), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table: medians over rounds, ratios per round against MobileNetV2 / `default`."""
    base = rows[0]
    head = ("| config | backbone | trunk params M | model params M | trunk GFLOPs | full GFLOPs | trunk ms/image | "
            "trunk x MNv2 | full ms/cand | full x default | full x MNv2 trunk |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ratio = lambda key, ref: statistics.median(a / b for a, b in zip(r[key], base[ref]))  # noqa: E731
        lines.append(
            f"| {r['config']} | {r['backbone']} | {r['trunk_params'] / 1e6:.2f} | {r['params'] / 1e6:.2f} | "
            f"{r['trunk_gf']:.2f} | {r['full_gf']:.2f} | "
            f"{statistics.median(r['trunk_ms']):.1f} | {ratio('trunk_ms', 'trunk_ms'):.2f} | "
            f"{statistics.median(r['full_ms']):.1f} | {ratio('full_ms', 'full_ms'):.2f} | "
            f"{ratio('full_ms', 'trunk_ms'):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=9, help="timed rounds (one call per config per round)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--batch", type=int, default=8, help="images (trunk) / distorted candidates (full) per call")
    args = ap.parse_args(argv)
    if min(args.rounds, args.threads, args.batch) < 1:
        ap.error("--rounds, --threads and --batch must be >= 1")
    torch.set_num_threads(args.threads)
    print(f"sspnet {sspnet.__version__}, torch {torch.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}, {torch.get_num_threads()} thread(s), batch {args.batch}, 384x288")
    t0 = time.perf_counter()
    rows = measure(args)
    print(f"\nmedians of {args.rounds} rounds ({time.perf_counter() - t0:.0f} s); "
          "ratios are medians of per-round ratios\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
