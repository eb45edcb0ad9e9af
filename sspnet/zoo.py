"""Trained weights: named models shipped in the package (SHA-256 checked) and checkpoint files.

A checkpoint is one safetensors file; its metadata holds the model config, a JSON "info"
record (data, protocol, metrics) and the SHA-256 of its tensors, so no pickle and no sidecar
file is ever needed. Loading checks what it can before a model is built: the stored digest
(a flipped bit in the tensor data), NaN or infinite weights, and a config that parses into
known fields; every failure is one :class:`WeightsError` line naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from sspnet.files.outputs import write_bytes_atomic
from sspnet.net.configs import ModelConfig
from sspnet.net.model import SSPNet, resolve_device

WEIGHTS_DIR = Path(__file__).parent / "weights"

# name -> (file in sspnet/weights/, SHA-256 of that file, inference settings over the file's config)
ZOO: dict[str, tuple[str, str, dict]] = {
    # MobileNetV2 `default` config trained on OSIE + EyeCrowd human fixations, half of each target's
    # mass from a larger teacher's maps (config `teacher`, trained on a GPU; docs/MODEL_CARD.md);
    # trained on saliency only, so its shift is the intuitive approach on max-1 maps; maps under
    # the log-density centre bias of sigma 0.6, and saliency on its own averaged over four views
    # (the image and its mirror, at 1x and 1.5x the canvas); all chosen on leave-one-dataset-out
    # runs (docs/MODEL_CARD.md).
    "default": ("default.safetensors", "58a6d6822dac66a14d6ba1c0f7b2f6c71414ec77f26401c0863597821b922632",
                {"shift_from_normalized": True, "centre_sigma": 0.6, "flip_saliency": True,
                 "saliency_scales": (1.0, 1.5)}),
}


#: Metadata key of the SHA-256 of a checkpoint's tensors (:func:`tensor_digest`).
DIGEST_KEY = "tensor_sha256"


class WeightsError(RuntimeError):
    """A named model is unknown, missing or corrupt, or a checkpoint cannot be read."""


class UncheckedWeightsWarning(UserWarning):
    """A checkpoint loaded without the tensor digest that would have caught corruption."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order. Stored in each
    checkpoint (`save_checkpoint`) and checked on load: it covers exactly what a model is built
    from, so metadata edits do not trip it and any change to the weights does."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _unique_state(model: SSPNet) -> dict[str, torch.Tensor]:
    """State dict without the alias keys of a single (shared) decoder."""
    state = model.state_dict()
    if model.decoder_d is model.decoder_r:
        state = {k: v for k, v in state.items() if not k.startswith("decoder_d.")}
    return state


def save_checkpoint(model: SSPNet, path: str | os.PathLike, info: dict | None = None, half: bool = False) -> Path:
    """Write weights + config (+ info) + the tensors' SHA-256 (:func:`tensor_digest`) atomically
    (`sspnet.files.images.write_bytes_atomic`: a reader or a resumed run never sees half a
    checkpoint); `half` stores floating tensors as fp16."""
    state = {}
    for k, v in _unique_state(model).items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        state[k] = v.contiguous()
    meta = {
        "config": json.dumps(model.config.to_dict()), "info": json.dumps(info or {}), "format": "sspnet-1",
        DIGEST_KEY: tensor_digest(state),
    }
    write_bytes_atomic(path, save(state, metadata=meta))
    return Path(path)


def read_checkpoint(path: str | os.PathLike) -> tuple[ModelConfig, dict, dict[str, torch.Tensor]]:
    """(config, info, tensors) of a checkpoint file, verified: the stored tensor digest when
    there is one, finite weights, JSON metadata and known config fields."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise WeightsError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    if "config" not in meta:
        raise WeightsError(f"{path} has no model config in its metadata (not an sspnet checkpoint)")
    digest = meta.get(DIGEST_KEY)
    if digest is None:
        warnings.warn(f"{path} stores no SHA-256 of its tensors ({DIGEST_KEY}), so corruption cannot be detected; "
                      "re-save it with sspnet.save_checkpoint to add one", UncheckedWeightsWarning, stacklevel=2)
    elif tensor_digest(state) != digest:
        raise WeightsError(f"{path} is corrupt: its tensor data do not match the SHA-256 stored when it was saved")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"{path} has NaN or infinite weights in {len(bad)} tensor(s), e.g. {bad[:3]}")
    info = _json_object(meta.get("info", "{}"), "info record", path)
    return _config(_json_object(meta["config"], "model config", path), path), info, state


def _json_object(text: str, what: str, path: Path) -> dict:
    """A JSON object from the checkpoint's metadata, or one WeightsError line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: the {what} in its metadata is not valid JSON ({exc.msg}, char {exc.pos})") from exc
    if not isinstance(value, dict):
        raise WeightsError(f"{path}: the {what} in its metadata must be a JSON object, got {type(value).__name__}")
    return value


def _config(d: dict, path: Path) -> ModelConfig:
    """The model config, refusing unknown fields (a typo or a newer format would otherwise be
    dropped silently and another architecture built)."""
    unknown = sorted(set(d) - {f.name for f in fields(ModelConfig)})
    if unknown:
        raise WeightsError(f"{path}: unknown model config field(s) {unknown}")
    try:
        return ModelConfig.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: invalid model config ({exc})") from exc


def model_from_checkpoint(path: str | os.PathLike) -> SSPNet:
    config, info, state = read_checkpoint(path)
    try:
        model = SSPNet(config)
    except Exception as exc:  # a config of known fields with unusable values: assorted types
        raise WeightsError(f"{path}: its model config cannot be built ({type(exc).__name__}: {exc})") from exc
    target = _unique_state(model)
    missing = set(target) - set(state)
    if missing:
        raise WeightsError(f"{path} lacks {len(missing)} tensors, e.g. {sorted(missing)[:3]}")
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False)
    except RuntimeError as exc:  # torch lists every mismatch on a line of its own: name the first
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        first = lines[min(1, len(lines) - 1)] + (f", and {len(lines) - 2} more" if len(lines) > 2 else "")
        raise WeightsError(f"{path}: its tensors do not fit its model config ({first})") from exc
    model.info = info  # type: ignore[attr-defined]
    return model


def load_model(name_or_path: str = "default", device: str = "auto") -> SSPNet:
    """A trained SSPNet in eval mode: a zoo name (checked against its SHA-256) or a checkpoint path."""
    overrides: dict = {}
    if name_or_path in ZOO:
        filename, digest, overrides = ZOO[name_or_path]
        path = WEIGHTS_DIR / filename
        if not path.is_file():
            raise WeightsError(f"the packaged weights {path} are missing; reinstall sspcodec")
        actual = sha256_file(path)
        if actual != digest:
            raise WeightsError(f"{path} is corrupt: SHA-256 {actual} != expected {digest}; reinstall sspcodec")
    elif Path(name_or_path).suffix == ".safetensors" or Path(name_or_path).exists():
        path = Path(name_or_path)
    elif name_or_path == "default":
        raise WeightsError("no trained weights yet for 'default': train one with `sspnet train` and pass its path")
    else:
        raise WeightsError(f"'{name_or_path}' is neither a known model {sorted(ZOO)} nor a checkpoint file")
    model = model_from_checkpoint(path)
    if overrides:
        model.config = replace(model.config, **overrides)
    model = model.to(resolve_device(device)).eval()
    if model.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model
