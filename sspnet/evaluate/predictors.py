"""Predictor adapters: everything scored becomes one callable, batch dict -> (B, H, W) maps.

A model (one of its decoders, its own SSM, or the paper's intuitive approach), an
image-agnostic baseline (`.predict(shape)`) or any user callable: the loops only see
`Predictor`s, so adding a competitor never touches them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sspnet.net.model import SSPNet

from ..device import autocast
from ..preprocess import boxes_from_masks
from .scoring import valid_box

__all__ = [
    "Predictor",
    "PredictorLike",
    "as_maps",
    "as_numpy",
    "as_predictor",
    "baseline_predictor",
    "canvas_shape",
    "intuitive_predictor",
    "model_predictor",
    "shift_predictor",
]

Predictor = Callable[[dict], np.ndarray]
"""A batch dict -> (B, H, W) float maps on the batch's canvas."""
PredictorLike = SSPNet | Predictor | Any  # Any: an object with .predict(shape) (a baseline)


def as_numpy(x: Any) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def as_maps(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """(B,1,H,W) / (B,H,W) tensor or array -> (B,H,W) float32 numpy."""
    if torch.is_tensor(x):
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 4:
        a = a[:, 0]
    if a.ndim != 3:
        raise ValueError(f"a predictor must return (B, H, W) or (B, 1, H, W) maps, got {a.shape}")
    return a


def canvas_shape(batch: dict) -> tuple[int, int, int]:
    """(B, H, W) of the batch's canvas, from whichever map or image it carries."""
    for key in ("saliency", "ssm", "image", "pristine"):
        if key in batch:
            t = batch[key]
            return (int(t.shape[0]), int(t.shape[-2]), int(t.shape[-1]))
    raise KeyError("batch has none of saliency/ssm/image/pristine to take the canvas size from")


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _input(batch: dict, key: str, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(batch[key]).to(device, non_blocking=True).float()


def _boxes(batch: dict):
    """Where each image sits on the canvas (for the model's prior); None = the whole canvas."""
    return boxes_from_masks(batch["valid"]) if "valid" in batch else None


def model_predictor(model: SSPNet, which: str = "r", key: str = "image") -> Predictor:
    """Saliency of one decoder of `model` on batch[key]; the pristine decoder by default (as
    `predict_saliency` computes it: averaged over the config's test-time views)."""

    @torch.inference_mode()
    def predict(batch: dict) -> np.ndarray:
        device = _model_device(model)
        x = _input(batch, key, device)
        with autocast(device):
            return as_maps(model.saliency(x, which, _boxes(batch), tta=True))

    return predict


def shift_predictor(model: SSPNet) -> Predictor:
    """SSPNet's own SSM = ReLU(decoder_d(distorted) - decoder_r(pristine)) (`SSPNet.shift`)."""

    @torch.inference_mode()
    def predict(batch: dict) -> np.ndarray:
        device = _model_device(model)
        p, d = _input(batch, "pristine", device), _input(batch, "distorted", device)
        with autocast(device):
            return as_maps(model(p, d, _boxes(batch))["ssm"])

    return predict


def intuitive_predictor(model: SSPNet, which: str = "r") -> Predictor:
    """The paper's "intuitive approach" (V-D): one saliency model run on both images, then
    eq. 2, SSM = ReLU(SM(distorted) - SM(pristine)). Both images go through the SAME decoder
    (`which`), as a saliency-only model has only one trained decoder; eq. 2 is the model's
    own (`SSPNet.shift`), so the maps are scaled to max 1 first exactly when the model's
    config says `shift_from_normalized`, as in its `predict_shift`."""

    @torch.inference_mode()
    def predict(batch: dict) -> np.ndarray:
        device = _model_device(model)
        p, d = _input(batch, "pristine", device), _input(batch, "distorted", device)
        with autocast(device):
            boxes = _boxes(batch)
            sm = model.saliency(torch.cat([p, d]), which, None if boxes is None else boxes * 2).float()
        sm_r, sm_d = sm.split(p.shape[0])
        return as_maps(model.shift(sm_d, sm_r))

    return predict


def baseline_predictor(baseline: Any) -> Predictor:
    """Place `baseline.predict(box shape)` inside each item's valid box, zeros in the padding.

    The bias is a property of the picture, not of the canvas: predicting at the canvas size
    would centre it on the padded frame and stretch it over the padding.
    """

    def predict(batch: dict) -> np.ndarray:
        b, h, w = canvas_shape(batch)
        valid = batch.get("valid")
        out = np.zeros((b, h, w), dtype=np.float32)
        for i in range(b):
            rs, cs = valid_box(None if valid is None else as_numpy(valid[i]), (h, w))
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
