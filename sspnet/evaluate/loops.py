"""Batch loops: run predictors over a dataset and turn every item into score rows.

`evaluate_saliency` (SaliencyDataset items) and `evaluate_shift` (ShiftDataset items) share
one loop: batches from a DataLoader, each predictor's maps fitted to the canvas, each item's
maps cut to its valid box and scored. `run_saliency_eval` is the one-call run behind
`sspnet eval`: scores, CSV and a Markdown report with significance.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sspnet.net.model import SSPNet

from ..device import resolve_device
from .predictors import (
    Predictor,
    PredictorLike,
    as_maps,
    as_numpy,
    as_predictor,
    canvas_shape,
    intuitive_predictor,
    shift_predictor,
)
from .reports import markdown_table, significance_table, summarize, write_csv
from .scoring import SALIENCY_METRICS, SHIFT_METRICS, crop_to_valid, saliency_scores, shift_scores

__all__ = ["evaluate_saliency", "evaluate_shift", "run_saliency_eval"]

ItemScorer = Callable[[dict, int, dict[str, np.ndarray], np.ndarray | None], Iterable[dict]]
"""(batch, item index, predictions by name, item's valid mask) -> that item's rows."""


def _value(batch: dict, key: str, i: int) -> Any:
    """Item i's plain Python value of a collated field (str, int, float)."""
    v = batch[key][i]
    if torch.is_tensor(v) or isinstance(v, np.generic | np.ndarray):
        v = np.asarray(as_numpy(v)).item()
    return v


@contextlib.contextmanager
def _eval_mode(modules: Iterable[Any], device: str | torch.device | None = None):
    """model.eval() for the run, each module's train/eval flag restored afterwards.

    With `device` ("auto", "cpu", "cuda", ...) the modules are moved there first (and stay);
    None keeps them where the caller put them.
    """
    mods = [m for m in modules if isinstance(m, torch.nn.Module)]
    if device is not None:
        dev = resolve_device(device)
        for m in mods:
            m.to(dev)
    flags = [m.training for m in mods]
    for m in mods:
        m.eval()
    try:
        yield
    finally:
        for m, f in zip(mods, flags):
            m.train(f)


def _fit_canvas(maps: np.ndarray, h: int, w: int) -> np.ndarray:
    """Predictions at another resolution (e.g. a low-res baseline) are resized to the canvas."""
    if maps.shape[-2:] == (h, w):
        return maps
    return np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in maps])


def _item_name(batch: dict, i: int) -> str:
    if "name" in batch:
        return str(_value(batch, "name", i))
    parts = [str(_value(batch, k, i)) for k in ("scene_id", "distortion", "level") if k in batch]
    if not parts:
        raise KeyError("batch items have neither 'name' nor scene_id/distortion/level to pair scores by")
    return "/".join(parts)


def _score_dataset(
    funcs: Mapping[str, Predictor],
    modules: Iterable[Any],
    dataset: Any,
    score_item: ItemScorer,
    *,
    desc: str,
    batch_size: int,
    num_workers: int,
    device: str | torch.device | None,
    progress: bool,
) -> list[dict]:
    """The loop both evaluations share: predictions per batch, `score_item` per item."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    rows: list[dict] = []
    with _eval_mode(modules, device):
        for batch in tqdm(loader, desc=desc, disable=not progress):
            b, h, w = canvas_shape(batch)
            valid = batch.get("valid")
            preds = {k: _fit_canvas(f(batch), h, w) for k, f in funcs.items()}
            for i in range(b):
                rows += score_item(batch, i, preds, None if valid is None else as_numpy(valid[i]))
    return rows


def evaluate_saliency(
    predictors: SSPNet | Mapping[str, PredictorLike],
    dataset: Any,
    *,
    baselines: Mapping[str, PredictorLike] | None = None,
    model_name: str = "sspnet",
    metrics: Sequence[str] = SALIENCY_METRICS,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> list[dict]:
    """Per-image scores of each predictor on a SaliencyDataset (items: image, saliency,
    fixations, valid, name). `predictors` is one SSPNet (named `model_name`) or a mapping
    name -> SSPNet / baseline / batch callable; `baselines` are added to it.

    Returns rows {"name", "model", <metric>: float, ...}, one per image and predictor.
    """
    named: dict[str, PredictorLike] = (
        {model_name: predictors} if isinstance(predictors, torch.nn.Module) else dict(predictors)
    )
    for k, v in (baselines or {}).items():
        if k in named:
            raise ValueError(f"predictor name {k!r} given twice")
        named[k] = v
    if not named:
        raise ValueError("nothing to evaluate: no predictor given")

    def score_item(batch: dict, i: int, preds: dict[str, np.ndarray], v: np.ndarray | None) -> list[dict]:
        gt = crop_to_valid(as_maps(batch["saliency"][i : i + 1])[0], v)
        fix = crop_to_valid(as_maps(batch["fixations"][i : i + 1])[0] > 0, v)
        name = _item_name(batch, i)
        return [
            {"name": name, "model": k, **saliency_scores(crop_to_valid(p[i], v), gt, fix, metrics)}
            for k, p in preds.items()
        ]

    funcs = {k: as_predictor(v) for k, v in named.items()}
    loop = {"batch_size": batch_size, "num_workers": num_workers, "device": device, "progress": progress}
    return _score_dataset(funcs, named.values(), dataset, score_item, desc="saliency eval", **loop)


def evaluate_shift(
    model: SSPNet | Predictor | None,
    dataset: Any,
    *,
    intuitive: Mapping[str, SSPNet | Predictor] | None = None,
    model_name: str = "sspnet",
    metrics: Sequence[str] = SHIFT_METRICS,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> list[dict]:
    """Per-pair SSM scores on a ShiftDataset (items: pristine, distorted, ssm, distortion,
    level, scene_id; optional valid, name).

    `model` is scored with its own SSM (skip it with None); each `intuitive` entry, named
    as given (e.g. "IA_single-decoder"), with the intuitive approach ReLU(SM(d) - SM(r)) of
    an SSPNet's pristine decoder (or any batch callable returning SSMs). Rows carry
    name (scene/distortion/level unless the item has a name), model, scene_id, distortion,
    level and the metrics, so `summarize(rows, by=("model", "distortion", "level"))` gives the
    per-distortion tables.
    """
    funcs: dict[str, Predictor] = {}
    modules: list[Any] = []
    if model is not None:
        funcs[model_name] = shift_predictor(model) if isinstance(model, SSPNet) else model
        modules.append(model)
    for k, m in (intuitive or {}).items():
        if k in funcs:
            raise ValueError(f"model name {k!r} given twice")
        funcs[k] = intuitive_predictor(m) if isinstance(m, SSPNet) else m
        modules.append(m)
    if not funcs:
        raise ValueError("nothing to evaluate: no model and no intuitive-approach model given")

    def score_item(batch: dict, i: int, preds: dict[str, np.ndarray], v: np.ndarray | None) -> list[dict]:
        gt = crop_to_valid(as_maps(batch["ssm"][i : i + 1])[0], v)
        info = {k: _value(batch, k, i) for k in ("scene_id", "distortion", "level") if k in batch}
        name = _item_name(batch, i)
        return [
            {"name": name, "model": k, **info, **shift_scores(crop_to_valid(p[i], v), gt, metrics)}
            for k, p in preds.items()
        ]

    loop = {"batch_size": batch_size, "num_workers": num_workers, "device": device, "progress": progress}
    return _score_dataset(funcs, modules, dataset, score_item, desc="shift eval", **loop)


def _as_dataset(items: Any, size: tuple[int, int], cache_dir: str | Path | None = None) -> Any:
    """EyeTrackingImage items -> SaliencyDataset; anything already indexable is used as is."""
    from ..data.fixations import EyeTrackingImage

    if not hasattr(items, "__getitem__"):
        items = list(items)
    if isinstance(items, (list, tuple)) and items and all(isinstance(i, EyeTrackingImage) for i in items):
        from ..data.datasets import SaliencyDataset  # imported late: torch Datasets load lazily

        return SaliencyDataset(list(items), size=size, augment=False, cache_dir=cache_dir)
    return items


def run_saliency_eval(
    model: SSPNet,
    items: Any,
    baselines: Mapping[str, PredictorLike] | None,
    out_dir: str | Path,
    *,
    model_name: str = "sspnet",
    size: tuple[int, int] | None = None,
    cache_dir: str | Path | None = None,
    alpha: float = 0.05,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> list[dict]:
    """Score `model` and `baselines` on `items` (EyeTrackingImage list or a ready dataset) and
    write out_dir/per_image.csv and out_dir/results.md (summary table + significance of the
    model against each baseline per metric). `size` defaults to the model's input size;
    `cache_dir` is where SaliencyDataset caches ground-truth maps. Returns the per-model summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = _as_dataset(items, tuple(size or model.config.input_size), cache_dir)
    rows = evaluate_saliency(
        {model_name: model},
        dataset,
        baselines=baselines,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
    )
    write_csv(rows, out / "per_image.csv")
    summary = summarize(rows, by=("model",))
    n_images = len({r["name"] for r in rows})
    text = [
        f"# Saliency evaluation: {model_name}\n",
        f"{n_images} images; scores on the letterboxed canvas cropped to each image's area; "
        "mean ± sample std over images.\n",
        markdown_table(summary),
    ]
    others = list(baselines or {})
    if others:
        text += [
            f"\n## Significance ({model_name} vs baselines, alpha = {alpha})\n",
            "Shapiro-Wilk on each sample; Welch t-test when both are normal, else two-sided Mann-Whitney U.\n",
            significance_table(rows, model_name, others, alpha=alpha),
        ]
    (out / "results.md").write_text("\n".join(text))
    return summary
