"""Experiment drivers behind `sspnet train`: data folders in, checkpoints and tables out.

Kept apart from `train.py` (the loop) so the loop stays testable on in-memory data.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from tqdm.auto import tqdm

from .configs import get_config
from .data import (
    EyeTrackingImage,
    SaliencyDataset,
    ShiftDataset,
    holdout_split,
    kfold_by_scene,
    read_fixation_dataset,
    read_shift_dataset,
)
from .model import build_model
from .train import FitResult, TrainConfig, fit


def read_saliency_items(roots: list[str | Path]) -> list[EyeTrackingImage]:
    """All images of one or more OSIE/EyeCrowd-format folders (names made unique per set)."""
    items: list[EyeTrackingImage] = []
    for root in roots:
        items += read_fixation_dataset(root, on_outside="drop")
    return items


def _key(item: EyeTrackingImage) -> str:
    return f"{item.dataset}/{item.name}"


def split_holdout(items: list[EyeTrackingImage], fraction: float, val_fraction: float, seed: int):
    """test = a fixed hash split by image; val = a second hash split of the rest (early stopping)."""
    keys = [_key(i) for i in items]
    rest, test = holdout_split(keys, fraction=fraction, seed=seed)
    rest_keys = [keys[i] for i in rest]
    tr, va = holdout_split(rest_keys, fraction=val_fraction, seed=seed + 1)
    return [rest[i] for i in tr], [rest[i] for i in va], list(test)


def train_saliency(
    roots: list[str | Path],
    out_dir: str | Path,
    cfg: TrainConfig,
    model_config: str = "default",
    pretrained_backbone: bool = True,
    holdout: float = 0.2,
    val_fraction: float = 0.1,
    folds: int = 0,
) -> list[FitResult]:
    """Saliency mode on human fixations. folds=0: one fixed holdout split; folds=k: k-fold by image."""
    items = read_saliency_items(roots)
    out = Path(out_dir)
    size = get_config(model_config).input_size
    if folds:
        splits = [(f.train, f.val, f.test) for f in kfold_by_scene([_key(i) for i in items], k=folds, seed=cfg.seed)]
    else:
        splits = [split_holdout(items, holdout, val_fraction, cfg.seed)]
    results = []
    for k, (tr, va, te) in enumerate(splits):
        fold_dir = out / f"fold{k}" if folds else out
        fold_dir.mkdir(parents=True, exist_ok=True)
        (fold_dir / "split.json").write_text(
            json.dumps({name: [_key(items[i]) for i in idx] for name, idx in (("train", tr), ("val", va), ("test", te))})
        )
        model = build_model(model_config, pretrained_backbone=pretrained_backbone)
        train_set = SaliencyDataset([items[i] for i in tr], size=size)
        val_set = SaliencyDataset([items[i] for i in va], size=size)
        fold_cfg = replace(cfg, mode="saliency", extra={**cfg.extra, "data": [str(r) for r in roots], "fold": k})
        tqdm.write(f"fold {k}: {len(tr)} train / {len(va)} val / {len(te)} test images")
        results.append(fit(model, train_set, val_set, fold_cfg, fold_dir))
    (out / "summary.json").write_text(
        json.dumps([{"best_epoch": r.best_epoch, "best_val_loss": r.best_val_loss, "path": str(r.best_path)} for r in results])
    )
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
    from .zoo import load_model

    scenes = read_shift_dataset(root)
    size = get_config(model_config).input_size
    results = []
    for k, fold in enumerate(kfold_by_scene([s.scene_id for s in scenes], k=folds, seed=cfg.seed)):
        fold_dir = Path(out_dir) / f"fold{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        (fold_dir / "split.json").write_text(
            json.dumps({n: [scenes[i].scene_id for i in idx] for n, idx in asdict(fold).items()})
        )
        model = load_model(init, device="cpu").train() if init else build_model(model_config, pretrained_backbone)
        train_set = ShiftDataset([scenes[i] for i in fold.train], size=size)
        val_set = ShiftDataset([scenes[i] for i in fold.val], size=size)
        fold_cfg = replace(cfg, mode="shift", extra={**cfg.extra, "data": str(root), "fold": k})
        results.append(fit(model, train_set, val_set, fold_cfg, fold_dir))
    return results
