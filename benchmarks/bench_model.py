"""Inference cost of SSPNet per distorted candidate, once the pristine image is encoded.

Measured in one process on random 384x288 RGB images (random weights: cost does not depend on
their values):

- trunk alone       MobileNetV2 trunk (`build_backbone("mobilenet_v2")`) on a batch of
                    `--batch` images, per image: the in-process baseline (ratio 1.00)
- default           `model.prepare(pristine)` once, then `predict_shift_cached` on a batch of
                    `--batch` distorted uint8 images (letterbox, encoder, decoder_d, SSM, crop
                    and resize back), per candidate
- batch 1 rows      the trunk and `default` with one image per call, for comparison (not the
                    targets): on a CPU a big batch can cost more per image than single images
- paper-resnet50    the same for the paper's model (fewer repeats: it is ~20x slower on a CPU)

Each timing is the median of its repeats after one untimed warm-up call. With `--cuda`, or
automatically when a CUDA GPU is visible (`--no-cuda` to skip), both models are also timed on
the GPU under bf16 autocast with channels_last at batches 1..64: the tensor path alone
(encoder + decoder_d + SSM on a ready batch) and the end-to-end image API.

    python benchmarks/bench_model.py                  # one thread, CPU (+ GPU if present)
    python benchmarks/bench_model.py --threads 2 --repeats 5

`--threads` defaults to 1: on a CPU shared with another job, two OpenMP threads were 10-30x
slower than one here (each parallel region waits for a descheduled thread).
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time

import torch
import torch.nn.functional as F

import sspnet
from sspcodec.bench.models import build
from sspcodec.bench.timing import images, median_ms
from sspnet.net.backbones import build_backbone
from sspnet.net.model import count_parameters

TARGET_PARAMS_M = 15.0
TARGET_MS = 60.0
GPU_BATCHES = (1, 2, 4, 8, 16, 32, 64)


def cpu_table(args: argparse.Namespace) -> list[dict]:
    dev = torch.device("cpu")
    pristine, cands = images(args.batch)
    rows = []

    trunk = build_backbone("mobilenet_v2").eval()
    x = torch.rand(args.batch, 3, 288, 384)
    with torch.inference_mode():
        ms = median_ms(lambda: trunk(x), args.repeats)
    rows.append({"name": "mobilenet_v2 trunk alone", "params": count_parameters(trunk), "ms": ms / args.batch,
                 "prepare": None, "baseline": True})
    if args.batch > 1:  # big CPU batches can cost more per image (activations leave the cache)
        x1 = x[:1]
        with torch.inference_mode():
            ms = median_ms(lambda: trunk(x1), args.repeats)
        rows.append({"name": "  trunk alone, batch 1", "params": count_parameters(trunk), "ms": ms,
                     "prepare": None, "baseline": False})

    for config, repeats in (("default", args.repeats), ("paper-resnet50", args.paper_repeats)):
        model = build(config, dev, shipped=True)
        cache = model.prepare(pristine)
        ms = median_ms(lambda: model.predict_shift_cached(cache, cands, batch_size=args.batch), repeats)
        prep = median_ms(lambda: model.prepare(pristine), repeats, warmup=0)
        rows.append({"name": config, "params": count_parameters(model), "ms": ms / args.batch, "prepare": prep,
                     "baseline": False})
        if config == "default" and args.batch > 1:  # the same candidates one call each
            ms = median_ms(lambda: model.predict_shift_cached(cache, cands, batch_size=1), repeats)
            rows.append({"name": "  default, batch 1", "params": count_parameters(model), "ms": ms / args.batch,
                         "prepare": None, "baseline": False})
    return rows


def print_cpu_table(rows: list[dict], args: argparse.Namespace) -> bool:
    base = rows[0]["ms"]
    print(f"\nCPU, {torch.get_num_threads()} thread(s), 384x288, batch of {args.batch} candidates, "
          f"median of {args.repeats} (paper-resnet50: {args.paper_repeats}) after 1 warm-up")
    head = (f"{'model':<26}{'params M':>9}{'ms/cand':>10}{'x trunk':>9}{'prepare ms':>12}"
            f"  targets (<= {TARGET_PARAMS_M:g}M, <= {TARGET_MS:g} ms)")
    print(head)
    print("-" * len(head))
    ok = True
    for r in rows:
        m = r["params"] / 1e6
        prep = "" if r["prepare"] is None else f"{r['prepare']:.1f}"
        if r["baseline"]:
            verdict = "baseline"
        elif r["name"].startswith("  "):
            verdict = "(same, one image per call)"
        elif r["name"] == "default":
            p_ok, t_ok = m <= TARGET_PARAMS_M, r["ms"] <= TARGET_MS
            ok = p_ok and t_ok
            verdict = f"params {'met' if p_ok else 'MISSED'}, time {'met' if t_ok else 'MISSED'}"
        else:
            verdict = "reference (no target)"
        print(f"{r['name']:<26}{m:>9.2f}{r['ms']:>10.1f}{r['ms'] / base:>9.2f}{prep:>12}  {verdict}")
    return ok


def gpu_table(args: argparse.Namespace, device: torch.device, batches: tuple[int, ...] = GPU_BATCHES) -> None:
    sync = lambda: torch.cuda.synchronize(device) if device.type == "cuda" else None  # noqa: E731
    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16)

    pristine, cands = images(max(batches))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"\n{name}, bf16 autocast, channels_last, 384x288; ms per candidate "
          f"(median of {args.gpu_repeats} after 3 warm-ups)")
    head = f"{'model':<16}{'batch':>6}{'tensor ms/cand':>16}{'end-to-end ms/cand':>20}{'cand/s (tensor)':>17}"
    print(head)
    print("-" * len(head))
    for config in ("default", "paper-resnet50"):
        model = build(config, device, shipped=True)
        cache = model.prepare(pristine)
        size = model.config.input_size
        for b in batches:
            x = torch.rand(b, 3, *size, device=device).contiguous(memory_format=torch.channels_last)

            def tensor_path() -> torch.Tensor:
                with torch.inference_mode(), autocast():
                    sm_d = model.decode(model.encode(x), "d", size).float()
                    return F.relu(sm_d - cache.sm)

            t_ms = median_ms(tensor_path, args.gpu_repeats, warmup=3, sync=sync) / b
            e_ms = median_ms(lambda: model.predict_shift_cached(cache, cands[:b], batch_size=b),
                             args.gpu_repeats, warmup=1, sync=sync) / b
            print(f"{config:<16}{b:>6}{t_ms:>16.3f}{e_ms:>20.3f}{1e3 / t_ms:>17.0f}")
        model = cache = None  # free the GPU memory before the next model
        if device.type == "cuda":
            torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats for the trunk and `default` (CPU)")
    ap.add_argument("--paper-repeats", type=int, default=2, help="timed repeats for paper-resnet50 (CPU)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, see the docstring)")
    ap.add_argument("--batch", type=int, default=8, help="distorted candidates per call on the CPU")
    ap.add_argument("--cuda", action=argparse.BooleanOptionalAction, default=None,
                    help="also time bf16 on the GPU at batches 1..64 (default: when CUDA is available)")
    ap.add_argument("--gpu-repeats", type=int, default=10, help="timed repeats per GPU batch size")
    args = ap.parse_args(argv)
    if min(args.repeats, args.paper_repeats, args.threads, args.batch, args.gpu_repeats) < 1:
        ap.error("--repeats, --paper-repeats, --threads, --batch and --gpu-repeats must be >= 1")
    if args.cuda and not torch.cuda.is_available():
        ap.error("--cuda was given but no CUDA GPU is visible")
    torch.set_num_threads(args.threads)

    print(f"sspnet {sspnet.__version__}, torch {torch.__version__}, python {platform.python_version()}, "
          f"{platform.processor() or platform.machine()}")
    t0 = time.perf_counter()
    ok = print_cpu_table(cpu_table(args), args)
    print(f"(CPU part: {time.perf_counter() - t0:.0f} s)")
    use_cuda = torch.cuda.is_available() if args.cuda is None else args.cuda
    if use_cuda:
        gpu_table(args, torch.device("cuda"))
    else:
        print("\nGPU part skipped: no CUDA GPU" if args.cuda is None else "\nGPU part skipped (--no-cuda)")
    print(f"\ndefault config targets (<= {TARGET_PARAMS_M:g}M params, <= {TARGET_MS:g} ms/candidate): "
          f"{'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
