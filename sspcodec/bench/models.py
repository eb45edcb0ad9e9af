"""Random-weight SSPNet models for benchmarks whose figures do not depend on the weights:
cost (the same FLOPs as trained weights) and mechanics (reading, writing, batching)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

import sspnet


def build(config: str, device: torch.device, shipped: bool = False) -> sspnet.SSPNet:
    """A config with random weights (the same cost as trained ones); `shipped`: the zoo's
    `default` instead, whose output stage (blur, centre bias, SSM spread) costs time too.
    In eval mode on *device*, channels_last on CUDA."""
    torch.manual_seed(0)
    if shipped and config == "default":
        model = sspnet.load_model("default", "cpu").eval().to(device)
    else:
        model = sspnet.build_model(config, pretrained_backbone=False).eval().to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def tiny_model(path: Path, input_size: tuple[int, int] = (48, 64)) -> Path:
    """A random-weight `default`-architecture checkpoint at a small input (48x64 by default: fast
    on a CPU) written to *path*; returns *path*."""
    from sspnet import build_model, save_checkpoint
    from sspnet.net.configs import CONFIGS

    save_checkpoint(build_model(replace(CONFIGS["default"], input_size=input_size)), path)
    return path


__all__ = ["build", "tiny_model"]
