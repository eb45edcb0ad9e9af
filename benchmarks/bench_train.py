"""Training and evaluation throughput (images/s) on the real eye-tracking data.

Measured in one process, on one model config:

- forward only      model.saliency() without gradients, eval mode: the baseline (ratio 1.00)
- train             forward + backward + Adam step (the body of `sspnet.training.train.fit`), with
                    the stem trainable (`--freeze-stem off`) and/or frozen (`on`)
- data loading      SaliencyDataset through a DataLoader (letterbox, cached eq. 1 maps)
- validation loss   `sspnet.training.train.validation_loss` (data + forward + loss), as run after each epoch
- evaluation        `sspnet.evaluate.evaluate_saliency` (data + forward + all metrics)

Model timings use a few preloaded batches, cycled, after `--warmup` untimed steps, so they
measure compute only; the data, validation and evaluation rows include data loading with
`--workers` processes. Every ratio is images/s divided by the forward-only images/s.

    python benchmarks/bench_train.py                       # both datasets, default config, 384x288
    python benchmarks/bench_train.py --steps 3 --eval-batches 2   # smoke run
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from sspcodec.bench.paths import dataset_dirs
from sspnet.data import SaliencyDataset
from sspnet.device import autocast
from sspnet.evaluate import evaluate_saliency
from sspnet.net.configs import get_config
from sspnet.net.model import build_model, resolve_device
from sspnet.training.experiments import read_saliency_items
from sspnet.training.train import step_loss, validation_loss


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(config, freeze_stem: bool, device: torch.device, seed: int):
    torch.manual_seed(seed)
    model = build_model(config)
    if freeze_stem:
        model.backbone.freeze_stem()
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def _batches(dataset: SaliencyDataset, batch_size: int, n: int, workers: int) -> list[dict]:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    return list(itertools.islice(loader, n))


def bench_forward(model, batches, steps: int, warmup: int, device: torch.device) -> float:
    model.eval()
    with torch.no_grad():
        for i in range(warmup + steps):
            if i == warmup:
                _sync(device)
                t0 = time.perf_counter()
            x = batches[i % len(batches)]["image"].to(device, non_blocking=True)
            with autocast(device):
                model.saliency(x, "r")
    _sync(device)
    return steps * batches[0]["image"].shape[0] / (time.perf_counter() - t0)


def bench_train(model, batches, steps: int, warmup: int, lr: float, device: torch.device) -> float:
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        with autocast(device):
            loss, _ = step_loss(model, batches[i % len(batches)], "saliency", device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return steps * batches[0]["image"].shape[0] / (time.perf_counter() - t0)


def bench_loading(dataset: SaliencyDataset, batch_size: int, n_batches: int, workers: int) -> float:
    t0 = time.perf_counter()
    seen = sum(b["image"].shape[0] for b in _batches(dataset, batch_size, n_batches, workers))
    return seen / (time.perf_counter() - t0)


def bench_validation(model, dataset, batch_size: int, workers: int, device: torch.device) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    _sync(device)
    t0 = time.perf_counter()
    validation_loss(model, loader, "saliency", device)
    _sync(device)
    return len(dataset) / (time.perf_counter() - t0)


def bench_eval(model, dataset, batch_size: int, workers: int, device: torch.device) -> float:
    t0 = time.perf_counter()
    rows = evaluate_saliency(model, dataset, batch_size=batch_size, num_workers=workers, device=device,
                             progress=False)
    _sync(device)
    return len(rows) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, action="append", help="dataset folder (repeatable); default: osie + eyecrowd")
    ap.add_argument("--config", default="default", help="model config name (input size comes from it)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20, help="timed training / forward steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps before each model timing")
    ap.add_argument("--eval-batches", type=int, default=20, help="batches for loading, validation and evaluation")
    ap.add_argument("--preload", type=int, default=4, help="distinct batches cycled by the model timings")
    ap.add_argument("--freeze-stem", choices=["off", "on", "both"], default="both")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader processes")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if min(args.steps, args.eval_batches, args.batch_size, args.preload) < 1 or args.warmup < 0:
        ap.error("--steps, --eval-batches, --batch-size and --preload must be >= 1, --warmup >= 0")

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = get_config(args.config)
    roots = args.data or dataset_dirs()
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        print(f"error: dataset folder(s) not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    items = read_saliency_items(roots)
    # Interleave the sets so short runs see images of every dataset (sizes differ).
    by_set: dict[str, list] = {}
    for it in items:
        by_set.setdefault(it.dataset, []).append(it)
    mixed = [it for group in itertools.zip_longest(*by_set.values()) for it in group if it is not None]
    n_eval = min(len(mixed), args.eval_batches * args.batch_size)
    dataset = SaliencyDataset(mixed[:n_eval], size=config.input_size)
    h, w = config.input_size
    print(f"device {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), "
          f"torch {torch.__version__}; config {args.config} at {w}x{h}, batch {args.batch_size}; "
          f"{len(items)} images in {', '.join(by_set)}")

    batches = _batches(dataset, args.batch_size, min(args.preload, args.steps), args.workers)
    results: list[dict] = []

    def report(name: str, ips: float, base: float | None) -> None:
        ratio = ips / base if base else 1.0
        results.append({"name": name, "images_per_s": ips, "ratio_to_forward": ratio})
        print(f"  {name:<34} {ips:8.2f} img/s   {ratio:5.2f} x forward", flush=True)

    modes = {"off": [False], "on": [True], "both": [False, True]}[args.freeze_stem]
    model = _model(config, False, device, args.seed)
    base = bench_forward(model, batches, args.steps, args.warmup, device)
    report("forward only (baseline)", base, None)
    for frozen in modes:  # a fresh model each, same initial weights
        m = _model(config, frozen, device, args.seed)
        ips = bench_train(m, batches, args.steps, args.warmup, args.lr, device)
        report(f"train, freeze-stem {'on' if frozen else 'off'}", ips, base)
        del m
    del batches
    report(f"data loading ({args.workers} workers)", bench_loading(dataset, args.batch_size, args.eval_batches,
                                                                   args.workers), base)
    report("validation loss (data + model)", bench_validation(model, dataset, args.batch_size, args.workers, device),
           base)
    report("evaluation (data + model + metrics)", bench_eval(model, dataset, args.batch_size, args.workers, device),
           base)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "device": str(device),
                                         "threads": torch.get_num_threads(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
