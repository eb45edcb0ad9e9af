"""Backbone study, accuracy side (issue 10, item 3): cross-dataset CC per trunk.

For every --config (`default` = MobileNetV2, `default-effl0/1/2` = the same network on
EfficientNet-Lite0/1/2) and both leave-one-dataset-out directions (trained on one --data set,
tested on every image of the other), it runs `sspnet train` with RECIPE, the protocol of the
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

from distil_study import eval_cmd, eval_split, folds, model_rows, read_scores, run_parallel, train_cmd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECIPE = ["--epochs", "8", "--lr", "1e-4", "--lr-step", "5", "--batch-size", "8", "--patience", "3",
          "--freeze-stem", "--grey-prob", "0.2"]
METRICS = ("cc", "sim", "kld", "nss", "auc_judd")


def lodo_folds(data: list[Path]) -> dict[str, dict]:
    """The two leave-one-dataset-out folds of `distil_study.folds` (not its same-set one)."""
    return {name: fold for name, fold in folds(data).items() if fold["test"]}


def pending(out: Path, configs: list[str], fs: dict[str, dict]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(config, fold) pairs still to train, and those still to score: a finished run has its
    summary.json (written after the last epoch), a finished score its per_image.csv."""
    train = [(c, f) for c in configs for f in fs if not (out / c / f / "summary.json").is_file()]
    score = [(c, f) for c in configs for f in fs if not (out / c / f"{f}.eval" / "per_image.csv").is_file()]
    return train, score


def best_epoch(run_dir: Path) -> tuple[float, int] | None:
    """Best validation loss and its epoch, from the run's history."""
    path = run_dir / "history.json"
    if not path.is_file():
        return None
    hist = json.loads(path.read_text())
    best = min(hist, key=lambda h: h["val_loss"])
    return best["val_loss"], best["epoch"]


def params_m(config: str) -> float:
    from sspnet.net.model import build_model, count_parameters

    return count_parameters(build_model(config, pretrained_backbone=False)) / 1e6


def table(out: Path, configs: list[str], fs: dict[str, dict]) -> tuple[str, dict]:
    """Markdown table of every finished (config, fold) and the same numbers as a dict."""
    from sspnet.net.configs import get_config

    names = list(fs)
    head = ["config", "backbone", "params M"]
    for f in names:
        head += [f"{f}: CC / SIM / KLD / NSS / AUC-Judd", f"{f}: best val loss (epoch)"]
    lines = ["| " + " | ".join(head + ["mean left-out CC"]) + " |", "|" + "---|" * (len(head) + 1)]
    data: dict = {}
    for c in configs:
        row = [c, get_config(c).backbone, f"{params_m(c):.2f}"]
        ccs, data[c] = [], {}
        for f in names:
            scores, best = read_scores(out / c / f"{f}.eval"), best_epoch(out / c / f)
            data[c][f] = {"scores": scores, "best": best}
            row.append(" / ".join(f"{scores[m]:.3f}" for m in METRICS) if scores else "-")
            row.append(f"{best[0]:.3f} ({best[1]})" if best else "-")
            if scores:
                ccs.append(scores["cc"])
        row.append(f"{sum(ccs) / len(ccs):.3f}" if len(ccs) == len(names) else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines), data


def per_image_cc(eval_dir: Path) -> dict[str, float]:
    """Image name -> the model's CC on it (empty before the score exists)."""
    return {r["name"]: float(r["cc"]) for r in model_rows(eval_dir) or []}


def paired(out: Path, configs: list[str], fs: dict[str, dict], ref: str) -> str:
    """Per fold, each config against `ref` on the same left-out images: mean CC difference and
    the two-sided Wilcoxon signed-rank p (paired by image, so photo difficulty cancels)."""
    from scipy.stats import wilcoxon

    lines = [f"| config | fold | images | mean CC - {ref} | Wilcoxon p |", "|---|---|--:|--:|--:|"]
    for f in fs:
        b = per_image_cc(out / ref / f"{f}.eval")
        for c in configs:
            a = per_image_cc(out / c / f"{f}.eval") if c != ref else {}
            names = sorted(set(a) & set(b))
            if not names:
                continue
            d = [a[n] - b[n] for n in names]
            p = wilcoxon(d).pvalue if any(d) else 1.0
            lines.append(f"| {c} | {f} | {len(names)} | {sum(d) / len(d):+.3f} | {p:.2g} |")
    return "\n".join(lines)


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
    jobs = {f"{c}.{f}": train_cmd(fs[f], out / c / f, RECIPE, args, config=c) for c, f in to_train}
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
    (out / "results.json").write_text(json.dumps({"recipe": RECIPE, "runs": data}, indent=1))
    print(text)
    ref = "default" if "default" in args.configs else args.configs[0]
    print()
    print(paired(out, args.configs, fs, ref))


if __name__ == "__main__":
    main()
