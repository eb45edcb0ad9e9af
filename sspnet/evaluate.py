"""Evaluation: per-image scores of models and baselines, tables, and significance (paper V).

Where scores are computed (DECISION)
------------------------------------
Everything is compared on the model's letterboxed canvas (384x288 by default), with BOTH the
prediction and the ground truth cropped to the item's `valid` box (the non-padded image area).
Why the canvas: it is what the datasets hand out (maps, fixations and mask already aligned),
so no second path back to the original files is needed and model and baselines see identical
targets. Why the crop: the padding is zero in the ground truth and near-zero in any decent
prediction, so leaving it in would add trivially agreeing pixels that inflate CC/SIM and
give AUC free negatives; its size also depends on the aspect ratio, which would make scores
incomparable across images. The cost: scores are at canvas resolution, not at each image's
original size as in the MIT benchmark (the ground truth is the letterbox-resized map, and
fixations are rasterised to canvas pixels, where two close fixations can share a pixel), so
absolute numbers differ slightly from an original-resolution evaluation; rankings do not
depend on it. Items without a `valid` mask are scored on the whole canvas.

Rows are plain dicts (one per image and model) so they go straight to CSV, to `summarize`
(tables per model, or per model x distortion x level), and to `significance`.
"""
from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import stats
from .device import autocast, resolve_device
from .metrics import DISTRIBUTION_METRICS, HIGHER_IS_BETTER, LOCATION_METRICS, METRICS
from .model import SSPNet

__all__ = [
    "SALIENCY_METRICS",
    "SHIFT_METRICS",
    "Predictor",
    "as_predictor",
    "baseline_predictor",
    "crop_to_valid",
    "evaluate_saliency",
    "evaluate_shift",
    "intuitive_predictor",
    "markdown_table",
    "model_predictor",
    "run_saliency_eval",
    "saliency_scores",
    "shift_predictor",
    "shift_scores",
    "significance",
    "significance_table",
    "summarize",
    "valid_box",
    "write_csv",
]

SALIENCY_METRICS: tuple[str, ...] = DISTRIBUTION_METRICS + LOCATION_METRICS  # cc sim kld nss auc_judd
SHIFT_METRICS: tuple[str, ...] = DISTRIBUTION_METRICS  # the SSM is a density map (paper V-A)
LABELS: dict[str, str] = {"cc": "CC", "sim": "SIM", "kld": "KLD", "nss": "NSS", "auc_judd": "AUC-Judd"}

Predictor = Callable[[dict], np.ndarray]
"""A batch dict -> (B, H, W) float maps on the batch's canvas."""
PredictorLike = SSPNet | Predictor | Any  # Any: an object with .predict(shape) (a baseline)


# ---------------------------------------------------------------- pure per-image core
def valid_box(valid: np.ndarray | None, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Row and column slices of the bounding box of a (1,H,W) or (H,W) mask; whole map if None."""
    if valid is None:
        return slice(0, shape[0]), slice(0, shape[1])
    m = np.asarray(valid).reshape(shape) > 0
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        raise ValueError("the valid mask is empty: the item has no image area to score")
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def crop_to_valid(a: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """The (H, W) map `a` cut to the valid box (see module docstring for why)."""
    a = np.asarray(a).reshape(np.asarray(a).shape[-2:])
    rs, cs = valid_box(valid, a.shape)
    return a[rs, cs]


def saliency_scores(
    pred: np.ndarray, gt: np.ndarray, fixations: np.ndarray, metrics: Sequence[str] = SALIENCY_METRICS
) -> dict[str, float]:
    """Distribution metrics against the continuous map, location metrics against fixations."""
    out: dict[str, float] = {}
    for m in metrics:
        target = fixations if m in LOCATION_METRICS else gt
        out[m] = float(METRICS[m](pred, target))
    return out


def shift_scores(pred: np.ndarray, gt: np.ndarray, metrics: Sequence[str] = SHIFT_METRICS) -> dict[str, float]:
    """Predicted vs ground-truth SSM; an all-zero gt is finite by sspnet.metrics' convention."""
    bad = [m for m in metrics if m in LOCATION_METRICS]
    if bad:
        raise ValueError(f"{bad} need fixations; a saliency shift map is scored with {SHIFT_METRICS}")
    return {m: float(METRICS[m](pred, gt)) for m in metrics}


# ---------------------------------------------------------------- predictors
def _maps(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """(B,1,H,W) / (B,H,W) tensor or array -> (B,H,W) float32 numpy."""
    if torch.is_tensor(x):
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 4:
        a = a[:, 0]
    if a.ndim != 3:
        raise ValueError(f"a predictor must return (B, H, W) or (B, 1, H, W) maps, got {a.shape}")
    return a


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _input(batch: dict, key: str, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(batch[key]).to(device, non_blocking=True).float()


def model_predictor(model: SSPNet, which: str = "r", key: str = "image") -> Predictor:
    """Saliency of one decoder of `model` on batch[key]; the pristine decoder by default."""

    @torch.inference_mode()
    def predict(batch: dict) -> np.ndarray:
        device = _model_device(model)
        x = _input(batch, key, device)
        with autocast(device):
            return _maps(model.saliency(x, which))

    return predict


def shift_predictor(model: SSPNet) -> Predictor:
    """SSPNet's own SSM = ReLU(decoder_d(distorted) - decoder_r(pristine))."""

    @torch.inference_mode()
    def predict(batch: dict) -> np.ndarray:
        device = _model_device(model)
        p, d = _input(batch, "pristine", device), _input(batch, "distorted", device)
        with autocast(device):
            return _maps(model(p, d)["ssm"])

    return predict


def intuitive_predictor(model: SSPNet, which: str = "r") -> Predictor:
    """The paper's "intuitive approach" (V-D): one saliency model run on both images, then
    eq. 2, SSM = ReLU(SM(distorted) - SM(pristine)). Both images go through the SAME decoder
    (`which`), as a saliency-only model has only one trained decoder."""

    @torch.inference_mode()
    def predict(batch: dict) -> np.ndarray:
        device = _model_device(model)
        p, d = _input(batch, "pristine", device), _input(batch, "distorted", device)
        with autocast(device):
            sm = model.saliency(torch.cat([p, d]), which).float()
        sm_r, sm_d = sm.split(p.shape[0])
        return _maps(F.relu(sm_d - sm_r))

    return predict


def _canvas_shape(batch: dict) -> tuple[int, ...]:
    for key in ("saliency", "ssm", "image", "pristine"):
        if key in batch:
            t = batch[key]
            return (int(t.shape[0]), int(t.shape[-2]), int(t.shape[-1]))
    raise KeyError("batch has none of saliency/ssm/image/pristine to take the canvas size from")


def baseline_predictor(baseline: Any) -> Predictor:
    """Place `baseline.predict(box shape)` inside each item's valid box, zeros in the padding.

    The bias is a property of the picture, not of the canvas: predicting at the canvas size
    would centre it on the padded frame and stretch it over the padding.
    """

    def predict(batch: dict) -> np.ndarray:
        b, h, w = _canvas_shape(batch)
        valid = batch.get("valid")
        out = np.zeros((b, h, w), dtype=np.float32)
        for i in range(b):
            rs, cs = valid_box(None if valid is None else _np(valid[i]), (h, w))
            out[i, rs, cs] = baseline.predict((rs.stop - rs.start, cs.stop - cs.start))
        return out

    return predict


def as_predictor(obj: PredictorLike) -> Predictor:
    """An SSPNet (its pristine decoder), a baseline (has .predict(shape)) or a batch callable."""
    if isinstance(obj, SSPNet):
        return model_predictor(obj)
    if hasattr(obj, "predict") and not isinstance(obj, torch.nn.Module):
        return baseline_predictor(obj)
    if callable(obj):
        return obj
    raise TypeError(f"cannot evaluate {type(obj).__name__}: not an SSPNet, baseline or callable")


# ---------------------------------------------------------------- batch loop
def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def _value(batch: dict, key: str, i: int) -> Any:
    """Item i's plain Python value of a collated field (str, int, float)."""
    v = batch[key][i]
    if torch.is_tensor(v) or isinstance(v, np.generic | np.ndarray):
        v = np.asarray(_np(v)).item()
    return v


def _loader(dataset: Any, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)


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
    funcs = {k: as_predictor(v) for k, v in named.items()}
    rows: list[dict] = []
    with _eval_mode(named.values(), device):
        for batch in tqdm(_loader(dataset, batch_size, num_workers), desc="saliency eval", disable=not progress):
            b, h, w = _canvas_shape(batch)
            gts = _maps(batch["saliency"])
            fixs = _maps(batch["fixations"]) > 0
            valid = batch.get("valid")
            preds = {k: _fit_canvas(f(batch), h, w) for k, f in funcs.items()}
            for i in range(b):
                v = None if valid is None else _np(valid[i])
                gt, fix = crop_to_valid(gts[i], v), crop_to_valid(fixs[i], v)
                name = _item_name(batch, i)
                for k, p in preds.items():
                    scores = saliency_scores(crop_to_valid(p[i], v), gt, fix, metrics)
                    rows.append({"name": name, "model": k, **scores})
    return rows


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
    rows: list[dict] = []
    with _eval_mode(modules, device):
        for batch in tqdm(_loader(dataset, batch_size, num_workers), desc="shift eval", disable=not progress):
            b, h, w = _canvas_shape(batch)
            gts = _maps(batch["ssm"])
            valid = batch.get("valid")
            preds = {k: _fit_canvas(f(batch), h, w) for k, f in funcs.items()}
            for i in range(b):
                v = None if valid is None else _np(valid[i])
                gt = crop_to_valid(gts[i], v)
                info = {k: _value(batch, k, i) for k in ("scene_id", "distortion", "level") if k in batch}
                name = _item_name(batch, i)
                for k, p in preds.items():
                    rows.append({"name": name, "model": k, **info, **shift_scores(crop_to_valid(p[i], v), gt, metrics)})
    return rows


# ---------------------------------------------------------------- tables
def _metric_keys(rows: Sequence[dict]) -> list[str]:
    """Metric columns present in the rows, in METRICS order."""
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    return [m for m in METRICS if m in present]


def summarize(
    rows: Sequence[dict], by: Sequence[str] = ("model",), metrics: Sequence[str] | None = None
) -> list[dict]:
    """Mean and sample std (ddof=1) per group; groups in order of first appearance.

    Each output dict: the `by` fields, "n", and "<metric>_mean", "<metric>_std".
    """
    metrics = list(metrics) if metrics is not None else _metric_keys(rows)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out: list[dict] = []
    for key, members in groups.items():
        s: dict = dict(zip(by, key))
        s["n"] = len(members)
        for m in metrics:
            mean, std = stats.summary([r[m] for r in members if m in r])
            s[f"{m}_mean"], s[f"{m}_std"] = mean, std
        out.append(s)
    return out


def _fmt(x: Any, digits: int) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        text = f"{x:.{digits}f}"
        return text.lstrip("-") if float(text) == 0.0 else text  # no "-0.000" from rounding
    return str(x)


def markdown_table(summary: Sequence[dict], digits: int = 3) -> str:
    """Summary rows as a Markdown table: group columns, n, then "mean ± std" per metric with an
    arrow for the better direction (↑ higher, ↓ lower), as the paper's tables."""
    if not summary:
        return ""
    keys = list(summary[0].keys())
    metrics = [k[: -len("_mean")] for k in keys if k.endswith("_mean")]
    groups = [k for k in keys if k != "n" and not k.endswith(("_mean", "_std"))]
    head = groups + ["n"] + [f"{LABELS.get(m, m)} {'↑' if HIGHER_IS_BETTER.get(m, True) else '↓'}" for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(groups) + ["--:"] * (1 + len(metrics))) + "|"]
    for s in summary:
        cells = [str(s.get(g, "")) for g in groups] + [str(s.get("n", ""))]
        cells += [f"{_fmt(s[f'{m}_mean'], digits)} ± {_fmt(s[f'{m}_std'], digits)}" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """All rows to CSV (columns: union of keys in first-seen order; floats at full precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------- significance
def _scores_by_name(rows: Sequence[dict], model: str, metric: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        if r.get("model") != model or metric not in r:
            continue
        if r["name"] in out:
            raise ValueError(f"model {model!r} has two scores for item {r['name']!r}")
        out[r["name"]] = float(r[metric])
    return out


def significance(
    rows: Sequence[dict], model_a: str, model_b: str, metric: str, alpha: float = 0.05, equal_var: bool = False
) -> stats.Comparison:
    """`stats.compare` of two models' per-image scores of one metric.

    Scores are matched by item name so both samples cover exactly the same images (an image
    one model lacks is dropped from both); the test itself is the paper's independent-samples
    protocol (t-test or Mann-Whitney U).
    """
    a = _scores_by_name(rows, model_a, metric)
    b = _scores_by_name(rows, model_b, metric)
    common = [n for n in a if n in b]
    if not common:
        raise ValueError(f"models {model_a!r} and {model_b!r} share no scored item for {metric!r}")
    return stats.compare([a[n] for n in common], [b[n] for n in common], alpha=alpha, equal_var=equal_var)


def significance_table(
    rows: Sequence[dict], model: str, others: Sequence[str], metrics: Sequence[str] | None = None, alpha: float = 0.05
) -> str:
    """Markdown: `model` against each other model per metric (test, p, significant, better)."""
    metrics = list(metrics) if metrics is not None else _metric_keys(rows)
    lines = [
        "| comparison | metric | test | statistic | p | significant | better |",
        "|---|---|---|--:|--:|:-:|---|",
    ]
    for other in others:
        for m in metrics:
            c = significance(rows, model, other, m, alpha)
            higher = HIGHER_IS_BETTER.get(m, True)
            better = model if (c.mean_a > c.mean_b) == higher else other
            if c.mean_a == c.mean_b:
                better = "tie"
            p = f"{c.p_value:.3g}"
            lines.append(
                f"| {model} vs {other} | {LABELS.get(m, m)} | {c.test} | {c.statistic:.4g} | {p} | "
                f"{'yes' if c.significant else 'no'} | {better} |"
            )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- one-call run
def _as_dataset(items: Any, size: tuple[int, int], cache_dir: str | Path | None = None) -> Any:
    """EyeTrackingImage items -> SaliencyDataset; anything already indexable is used as is."""
    from .data.fixations import EyeTrackingImage

    if not hasattr(items, "__getitem__"):
        items = list(items)
    if isinstance(items, (list, tuple)) and items and all(isinstance(i, EyeTrackingImage) for i in items):
        from .data.datasets import SaliencyDataset  # imported late: written separately

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
