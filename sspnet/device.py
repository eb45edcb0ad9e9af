"""Where the model runs and in which precision: one place for both decisions."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when visible, else CPU; an explicit CUDA (or MPS) request without one is an
    error, and so is any other device type (``meta`` would build a model of no data)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a device name; use auto, cpu or cuda") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' was asked for but no CUDA GPU is visible; use device='cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise RuntimeError("device='mps' was asked for but Apple's Metal backend is not available here")
    elif dev.type != "cpu":  # meta, xla, ...: the model would load and then fail, far from the option
        raise ValueError(f"device {device!r} is not supported; use auto, cpu, cuda (cuda:N) or mps")
    return dev


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA only: it halves memory and time there; CPU bf16 is slower, so fp32."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


__all__ = ["autocast", "resolve_device"]
