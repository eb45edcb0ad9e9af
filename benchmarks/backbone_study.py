"""Backbone study, accuracy side (issue 10, item 3): cross-dataset CC per trunk.

For every --config (`default` = MobileNetV2, `default-effl0/1/2` = the same network on
EfficientNet-Lite0/1/2) and both leave-one-dataset-out directions (trained on one --data set,
tested on every image of the other), it runs `sspnet train` with BACKBONE_RECIPE, the protocol of the
MobileNetV2 LODO runs in docs/MODEL_CARD.md, then `sspnet eval` on the left-out set (the network
as trained: no test-time views, no centre weighting). What OUT already holds is skipped, so a
rerun resumes. It ends with one table: parameters, best validation loss and epoch, CC / SIM / KLD
/ NSS / AUC-Judd per direction and the mean left-out CC (the number issue 10 ranks designs by).
The cost side (ms per candidate, FLOPs) is `benchmarks/bench_backbones.py`.

    pip install "sspcodec[backbones]"
    python benchmarks/backbone_study.py --data ../shared/datasets/osie --data ../shared/datasets/eyecrowd \\
        --out runs/backbones --configs default default-effl0 default-effl1 default-effl2

On a 2-core CPU each run takes 10-20 min (EyeCrowd 450 training images, OSIE 630); --parallel N
runs N jobs at once (a GPU machine), --quick checks the plumbing in a minute.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's packages, installed or not

from sspcodec.bench.studies import BACKBONE_RECIPE, eval_cmd, eval_split, lodo_folds, pending, run_parallel, train_cmd
from sspcodec.bench.study_scores import paired, table


def in_batches(jobs: dict[str, list[str]], parallel: int, what: str, logs: Path, t0: float) -> None:
    """Run the jobs `parallel` at a time, with no deadline (a CPU run takes what it takes)."""
    names = list(jobs)
    for k in range(0, len(names), parallel):
        batch = {n: jobs[n] for n in names[k:k + parallel]}
        print(f"[{time.time() - t0:7.0f} s] {what} {', '.join(batch)}", flush=True)
        print(run_parallel(batch, logs, float("inf")), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="Exactly two data sets.")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--configs", nargs="+", default=["default", "default-effl0", "default-effl1", "default-effl2"])
    ap.add_argument("--workers", type=int, default=1, help="Data loading processes per training run.")
    ap.add_argument("--parallel", type=int, default=1, help="Runs at once (1 on a 2-core CPU).")
    ap.add_argument("--backbone-weights", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="One epoch of two steps per run, 8 test images.")
    args = ap.parse_args()
    if len(args.data) != 2:
        ap.error("give exactly two --data sets")
    from sspnet.net.configs import CONFIGS
    from sspnet.training.experiments import read_saliency_items

    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown config(s) {unknown}; choose from {sorted(CONFIGS)}")
    out, fs = args.out, lodo_folds(args.data)
    out.mkdir(parents=True, exist_ok=True)
    items = read_saliency_items(args.data)
    to_train, to_score = pending(out, args.configs, fs)
    t0 = time.time()
    jobs = {f"{c}.{f}": train_cmd(fs[f], out / c / f, BACKBONE_RECIPE, args, config=c) for c, f in to_train}
    in_batches(jobs, args.parallel, "training", out / "logs", t0)
    jobs = {}
    for c, f in to_score:
        if not (out / c / f / "best.safetensors").is_file():
            continue
        test_keys = [f"{i.dataset}/{i.name}" for i in items if i.dataset == fs[f]["test"]][: 8 if args.quick else None]
        split = eval_split(out / c / f, test_keys, out / c / f"{f}.split.json")
        jobs[f"eval.{c}.{f}"] = eval_cmd(out / c / f / "best.safetensors", split, out / c / f"{f}.eval", args.data,
                                         args.workers)
    in_batches(jobs, args.parallel, "scoring", out / "logs", t0)
    text, data = table(out, args.configs, fs)
    (out / "results.json").write_text(json.dumps({"recipe": BACKBONE_RECIPE, "runs": data}, indent=1))
    print(text)
    ref = "default" if "default" in args.configs else args.configs[0]
    print()
    print(paired(out, args.configs, fs, ref))


if __name__ == "__main__":
    main()
