"""Training studies as `sspnet train` / `sspnet eval` subprocesses: folds, recipes, commands.

The studies (distil_study.py, backbone_study.py) compare recipes or trunks by how well a model
trained on one eye-tracking set transfers to the other; they share how a fold is drawn, how a
run and its scoring are launched and how a batch of runs is held to a deadline, so that their
figures are comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: The shipped model's recipe (10 epochs, stem frozen, 20% greyscale): a study's control.
SHIPPED = ["--epochs", "10", "--lr", "1e-4", "--lr-step", "5", "--batch-size", "8", "--patience", "3",
           "--freeze-stem", "--grey-prob", "0.2"]
#: Default config, whole trunk, colour jitter, more epochs (distil_study's `long` and teachers).
LONG = ["--epochs", "24", "--lr", "1e-4", "--lr-step", "12", "--batch-size", "8", "--patience", "5",
        "--grey-prob", "0.2", "--colour-jitter", "0.2"]
#: The protocol of the MobileNetV2 leave-one-dataset-out runs in docs/MODEL_CARD.md (backbone_study).
BACKBONE_RECIPE = ["--epochs", "8", "--lr", "1e-4", "--lr-step", "5", "--batch-size", "8", "--patience", "3",
                   "--freeze-stem", "--grey-prob", "0.2"]


def folds(data: list[Path]) -> dict[str, dict]:
    """fold name -> the --data folders it trains on, its holdout and the set it is tested on:
    each set to the other, and both (a same-set split, test None)."""
    a, b = data
    return {
        f"{a.name}-to-{b.name}": {"data": [a], "holdout": "0", "test": b.name},
        f"{b.name}-to-{a.name}": {"data": [b], "holdout": "0", "test": a.name},
        "both": {"data": [a, b], "holdout": "0.2", "test": None},
    }


def lodo_folds(data: list[Path]) -> dict[str, dict]:
    """The two leave-one-dataset-out folds of :func:`folds` (not its same-set one)."""
    return {name: fold for name, fold in folds(data).items() if fold["test"]}


def train_cmd(fold: dict, out: Path, recipe: list[str], args: argparse.Namespace, config: str = "default",
              teacher: Path | None = None, seconds: float = 0.0) -> list[str]:
    """`sspnet train` of one fold into *out*; *args* gives workers, backbone_weights, quick, seed
    (optional) and distil (with a *teacher*); *seconds*: no new epoch after it (0: no limit)."""
    cmd = [sys.executable, "-m", "sspnet.cli", "train", "--out", str(out), "--config", config,
           "--holdout", fold["holdout"], "--workers", str(args.workers), "--time-limit", str(seconds), *recipe]
    for d in fold["data"]:
        cmd += ["--data", str(d)]
    if args.backbone_weights:
        cmd += ["--backbone-weights", str(args.backbone_weights)]
    if getattr(args, "seed", 0):
        cmd += ["--seed", str(args.seed)]
    if teacher is not None:
        cmd += ["--teacher", str(teacher), "--distil", str(args.distil)]
    if args.quick:
        cmd += ["--epochs", "1", "--max-steps", "2"]
    return cmd


def eval_cmd(model: Path, split: Path, out: Path, data: list[Path], workers: int) -> list[str]:
    """`sspnet eval` of one checkpoint on a split's test subset."""
    return [sys.executable, "-m", "sspnet.cli", "eval", "--model", str(model), "--split", str(split),
            "--out", str(out), "--workers", str(workers), *[a for d in data for a in ("--data", str(d))]]


def eval_split(run_dir: Path, test_keys: list[str], out: Path) -> Path:
    """The run's train/val keys with `test_keys` (the left-out set's images) as its test subset."""
    split = json.loads((run_dir / "split.json").read_text())
    out.write_text(json.dumps({**split, "test": test_keys}))
    return out


def package_root() -> Path:
    """The folder holding the sspnet and sspcodec packages (the checkout, for an editable install)."""
    return Path(__file__).resolve().parents[2]


def run_parallel(jobs: dict[str, list[str]], logs: Path, deadline: float) -> dict[str, int]:
    """Start every job at once (output in logs/<name>.log); kill what is still running at
    `deadline` (time.time()). The jobs see this checkout's packages first and two OpenMP threads
    unless OMP_NUM_THREADS says otherwise. Returns name -> exit status."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(package_root()) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    procs = {}
    for name, cmd in jobs.items():
        with open(logs / f"{name}.log", "w") as log:
            procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    while any(p.poll() is None for p in procs.values()) and time.time() < deadline:
        time.sleep(2)
    for p in procs.values():
        if p.poll() is None:
            p.kill()
    return {name: p.wait() for name, p in procs.items()}


def pending(out: Path, configs: list[str], fs: dict[str, dict]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(config, fold) pairs still to train, and those still to score: a finished run has its
    summary.json (written after the last epoch), a finished score its per_image.csv. A rerun
    therefore resumes."""
    train = [(c, f) for c in configs for f in fs if not (out / c / f / "summary.json").is_file()]
    score = [(c, f) for c in configs for f in fs if not (out / c / f"{f}.eval" / "per_image.csv").is_file()]
    return train, score


__all__ = [
    "BACKBONE_RECIPE",
    "LONG",
    "SHIPPED",
    "eval_cmd",
    "eval_split",
    "folds",
    "lodo_folds",
    "package_root",
    "pending",
    "run_parallel",
    "train_cmd",
]
