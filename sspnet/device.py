"""Where the model runs and in which precision: one place for both decisions."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when visible, else CPU; an explicit CUDA request without a GPU is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return dev


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA only: it halves memory and time there; CPU bf16 is slower, so fp32."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


__all__ = ["autocast", "resolve_device"]
