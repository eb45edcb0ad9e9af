"""Experiment drivers behind `sspnet train`: data folders in, checkpoints and tables out.

Kept apart from `train.py` (the loop) so the loop stays testable on in-memory data.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from sspnet.data import (
    EyeTrackingImage,
    SaliencyDataset,
    ShiftDataset,
    holdout_split,
    kfold_by_scene,
    read_fixation_dataset,
    read_shift_dataset,
)
from sspnet.files.outputs import write_bytes_atomic
from sspnet.net.configs import get_config
from sspnet.net.model import build_model
from sspnet.training.distributed import is_main_process
from sspnet.training.train import FitResult, TrainConfig, fit


def read_saliency_items(roots: list[str | Path]) -> list[EyeTrackingImage]:
    """All images of one or more OSIE/EyeCrowd-format folders (names made unique per set)."""
    items: list[EyeTrackingImage] = []
    for root in roots:
        items += read_fixation_dataset(root, on_outside="drop")
    return items


def image_key(item: EyeTrackingImage) -> str:
    return f"{item.dataset}/{item.name}"


def split_holdout(items: list[EyeTrackingImage], fraction: float, val_fraction: float, seed: int):
    """test = a fixed hash split by image; val = a second hash split of the rest (early stopping)."""
    keys = [image_key(i) for i in items]
    rest, test = holdout_split(keys, fraction=fraction, seed=seed)
    rest_keys = [keys[i] for i in rest]
    tr, va = holdout_split(rest_keys, fraction=val_fraction, seed=seed + 1)
    return [rest[i] for i in tr], [rest[i] for i in va], list(test)


def leave_one_dataset_out(
    items: list[EyeTrackingImage], val_fraction: float, seed: int
) -> dict[str, tuple[list[int], list[int], list[int]]]:
    """Per data set: (train, val, test) with test = all of its images and train/val a hash split
    of the other sets' images (as `split_holdout` with nothing held out). Scores on a data set
    the model never saw (other photographers, lab, instructions) are what a user's photos get;
    same-set held-out scores flatter the model."""
    names = sorted({i.dataset for i in items})
    if len(names) < 2:
        raise ValueError(f"leaving one data set out needs at least two (got {names or 'none'})")
    out = {}
    for name in names:
        rest = [j for j, it in enumerate(items) if it.dataset != name]
        tr, va, _ = split_holdout([items[j] for j in rest], 0.0, val_fraction, seed)
        test = [j for j, it in enumerate(items) if it.dataset == name]
        out[name] = ([rest[j] for j in tr], [rest[j] for j in va], test)
    return out


def _write_json(path: Path, obj: object) -> None:
    """Run files are written once, by the main process (rank 0 under torchrun), atomically."""
    if is_main_process():
        write_bytes_atomic(path, json.dumps(obj).encode())


def train_saliency(
    roots: list[str | Path],
    out_dir: str | Path,
    cfg: TrainConfig,
    model_config: str = "default",
    pretrained_backbone: bool = True,
    holdout: float = 0.2,
    val_fraction: float = 0.1,
    folds: int = 0,
    leave_out: bool = False,
    backbone_weights: str | None = None,
) -> list[FitResult]:
    """Saliency mode on human fixations. folds=0: one fixed holdout split; folds=k: k-fold by image;
    leave_out: one run per data set, tested on all of it and trained on the others
    (`leave_one_dataset_out`), in OUT/test-<name>."""
    items = read_saliency_items(roots)
    out = Path(out_dir)
    size = get_config(model_config).input_size
    if leave_out:
        named = leave_one_dataset_out(items, val_fraction, cfg.seed)
        dirs, splits = [out / f"test-{name}" for name in named], list(named.values())
    elif folds:
        keys = [image_key(i) for i in items]
        splits = [(f.train, f.val, f.test) for f in kfold_by_scene(keys, k=folds, seed=cfg.seed)]
        dirs = [out / f"fold{k}" for k in range(len(splits))]
    else:
        splits, dirs = [split_holdout(items, holdout, val_fraction, cfg.seed)], [out]
    results = []
    for k, ((tr, va, te), fold_dir) in enumerate(zip(splits, dirs)):
        fold_dir.mkdir(parents=True, exist_ok=True)
        subsets = (("train", tr), ("val", va), ("test", te))
        _write_json(fold_dir / "split.json", {name: [image_key(items[i]) for i in idx] for name, idx in subsets})
        torch.manual_seed(cfg.seed)  # the same initial weights in every process and every run
        model = build_model(model_config, pretrained_backbone=pretrained_backbone, backbone_weights=backbone_weights)
        train_set = SaliencyDataset([items[i] for i in tr], size=size)
        val_set = SaliencyDataset([items[i] for i in va], size=size)
        fold_cfg = replace(cfg, mode="saliency", extra={**cfg.extra, "data": [str(r) for r in roots], "fold": k})
        tqdm.write(f"fold {k}: {len(tr)} train / {len(va)} val / {len(te)} test images")
        results.append(fit(model, train_set, val_set, fold_cfg, fold_dir))
    best = [{"best_epoch": r.best_epoch, "best_val_loss": r.best_val_loss, "path": str(r.best_path)} for r in results]
    _write_json(out / "summary.json", best)
    return results


def train_shift(
    root: str | Path,
    out_dir: str | Path,
    cfg: TrainConfig,
    model_config: str = "default",
    pretrained_backbone: bool = True,
    init: str | None = None,
    folds: int = 6,
) -> list[FitResult]:
    """Shift mode on a CUID-VSS-style layout; k-fold by scene as in the paper (one test, one val)."""
    from sspnet.zoo import load_model

    scenes = read_shift_dataset(root)
    size = get_config(model_config).input_size
    results = []
    for k, fold in enumerate(kfold_by_scene([s.scene_id for s in scenes], k=folds, seed=cfg.seed)):
        fold_dir = Path(out_dir) / f"fold{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        _write_json(fold_dir / "split.json", {n: [scenes[i].scene_id for i in idx] for n, idx in asdict(fold).items()})
        torch.manual_seed(cfg.seed)  # the same initial weights in every process and every run
        if init:  # shift training learns eq. 2 on raw decoder outputs, as in the paper
            model = load_model(init, device="cpu").train()
            model.config = replace(model.config, shift_from_normalized=False)
        else:
            model = build_model(model_config, pretrained_backbone)
        train_set = ShiftDataset([scenes[i] for i in fold.train], size=size)
        val_set = ShiftDataset([scenes[i] for i in fold.val], size=size)
        fold_cfg = replace(cfg, mode="shift", extra={**cfg.extra, "data": str(root), "fold": k})
        results.append(fit(model, train_set, val_set, fold_cfg, fold_dir))
    return results


def read_split(split_file: str | Path, subset: str) -> dict[str, list[str]]:
    """A run's split.json; ValueError (not a traceback in the CLI) when missing or lacking `subset`."""
    path = Path(split_file)
    if not path.is_file():
        raise ValueError(f"{path}: split file not found")
    split = json.loads(path.read_text())
    if subset not in split:
        raise ValueError(f"{split_file} has no '{subset}' subset (it has {sorted(split)})")
    return split


def _split_indices(keys: list[str], split_file: str | Path | None, subset: str) -> tuple[list[int], list[int]]:
    """(evaluation indices, training indices) from a run's split.json; everything when no file."""
    if split_file is None:
        return list(range(len(keys))), []
    split = read_split(split_file, subset)
    pos = {k: i for i, k in enumerate(keys)}
    missing = [k for k in split[subset] if k not in pos]
    if missing:
        raise ValueError(f"{len(missing)} images of the split are not in the given data, e.g. {missing[0]}")
    return [pos[k] for k in split[subset]], [pos[k] for k in split.get("train", []) if k in pos]


def eval_saliency(
    model_name: str, roots: list[str | Path], out_dir: str | Path, split_file: str | Path | None = None,
    subset: str = "test", device: str = "auto", workers: int = 0, greyscale: bool = False,
) -> list[dict]:
    """One evaluation run: the model plus centre-bias and average-map baselines fitted on the
    split's training images (none when no split is given); `greyscale` shows the model every
    image in greyscale (the human maps stay those of the colour images)."""
    from sspnet.baselines import AverageMap, CenterBias
    from sspnet.data import get_saliency_map
    from sspnet.evaluate import run_saliency_eval
    from sspnet.zoo import load_model

    items = read_saliency_items(roots)
    test_idx, train_idx = _split_indices([image_key(i) for i in items], split_file, subset)
    baselines = {}
    if train_idx:
        maps = [get_saliency_map(items[i]) for i in tqdm(train_idx, desc="fitting baselines", leave=False)]
        baselines = {"centre-bias": CenterBias.fit(maps), "average-train-map": AverageMap.fit(maps)}
    model = load_model(model_name, device)
    tested: Any = [items[i] for i in test_idx]
    if greyscale:
        from sspnet.data import GreyscaleView, SaliencyDataset

        tested = GreyscaleView(SaliencyDataset(tested, size=model.config.input_size))
    return run_saliency_eval(model, tested, baselines, out_dir, model_name="sspnet", num_workers=workers)


def eval_shift(
    model_name: str, root: str | Path, out_dir: str | Path, split_file: str | Path | None = None,
    subset: str = "test", intuitive: str | None = None, device: str = "auto",
) -> list[dict]:
    """Shift metrics per pair, per distortion type and level; optional intuitive-approach model."""
    from sspnet.evaluate import evaluate_shift, markdown_table, significance_table, summarize, write_csv
    from sspnet.zoo import load_model

    scenes = read_shift_dataset(root)
    ids = [s.scene_id for s in scenes]
    if split_file is not None:
        wanted = set(read_split(split_file, subset)[subset])
        scenes = [s for s in scenes if s.scene_id in wanted]
        if len(scenes) != len(wanted):
            raise ValueError(f"{len(wanted) - len(scenes)} scenes of the split are not in {root}")
    model = load_model(model_name, device)
    extra = {"intuitive": load_model(intuitive, device)} if intuitive else None
    ds = ShiftDataset(scenes, size=model.config.input_size)
    rows = evaluate_shift(model, ds, intuitive=extra)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "per_pair.csv")
    text = ["# Shift evaluation\n", f"{len(scenes)} of {len(ids)} scenes, {len(rows)} rows\n",
            markdown_table(summarize(rows)), "\n## Per distortion and level\n",
            markdown_table(summarize(rows, by=("model", "distortion", "level")))]
    if extra:
        text += ["\n## Significance\n", significance_table(rows, "sspnet", list(extra))]
    (out / "results.md").write_text("\n".join(text) + "\n")
    return rows
