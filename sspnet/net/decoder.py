"""One saliency decoder (TranSalNet/SSPNet): coarse-to-fine fusion by Hadamard products.

The deepest tokens give the layout, each finer scale gates it (x * T(F_k)), and a small tail
upsamples to the output stride. A sigmoid keeps the map in [0, 1] like the 8-bit ground truth.
"""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SaliencyDecoder(nn.Module):
    """dims = token widths at strides (8, 16, 32); stage3 = width at stride 4; tail = widths after.

    The tail upsamples after each of its first log2(4 / out_stride) convs; with `out_stride` > 1
    the logits are upsampled bilinearly to the input size (saliency is smooth, so a coarse
    decoder costs little accuracy and much less time on a CPU).
    """

    def __init__(
        self,
        dims: tuple[int, int, int],
        stage3: int = 256,
        tail: tuple[int, ...] = (128, 64, 32),
        out_stride: int = 1,
    ) -> None:
        super().__init__()
        d1, d2, d3 = dims
        n_up = {1: 2, 2: 1, 4: 0}[out_stride]
        if len(tail) < n_up:
            raise ValueError(f"a tail of {len(tail)} convs cannot upsample {n_up} times")
        self.out_stride = out_stride
        self.n_up = n_up
        self.stage1 = conv_bn_relu(d3, d2)
        self.stage2 = conv_bn_relu(d2, d1)
        self.stage3 = conv_bn_relu(d1, stage3)
        widths = (stage3, *tail)
        self.tail = nn.ModuleList(conv_bn_relu(a, b) for a, b in itertools.pairwise(widths))
        self.head = nn.Conv2d(widths[-1], 1, 3, padding=1)

    def logits(self, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor) -> torch.Tensor:
        up = lambda t: F.interpolate(t, scale_factor=2.0, mode="nearest")  # noqa: E731
        x = up(self.stage1(f3))
        x = up(self.stage2(F.relu(_match(x, f2) * f2)))
        x = up(self.stage3(F.relu(_match(x, f1) * f1)))
        for i, conv in enumerate(self.tail):
            x = conv(x)
            if i < self.n_up:
                x = up(x)
        return self.head(x)

    def forward(self, feats: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        """Saliency in [0, 1] at `size` (the input's height, width)."""
        z = self.logits(*feats)
        if z.shape[-2:] != size:
            z = F.interpolate(z.float(), size=size, mode="bilinear", align_corners=False)
        return torch.sigmoid(z.float())


def _match(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Crop/pad an upsampled map to a skip feature's grid (odd input sizes round differently)."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    h, w = ref.shape[-2:]
    x = x[..., :h, :w]
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 1, H, W) maps with reflected borders.

    On a CPU without gradients the same kernel runs through OpenCV's `sepFilter2D` (same
    reflected border, equal to the conv path within 1e-6): a one-channel `conv2d` with a long
    kernel is slow on CPUs, and the shipped model's output stage blurs every candidate's maps
    three times (4x faster per blur here, `benchmarks/bench_model.py`)."""
    if sigma <= 0:
        return x
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    r_y, r_x = min(r, x.shape[-2] - 1), min(r, x.shape[-1] - 1)
    if x.device.type == "cpu" and x.dtype == torch.float32 and (r_y, r_x) == (r, r) and not (
        torch.is_grad_enabled() and x.requires_grad
    ):
        return _blur_opencv(x, k.numpy())
    x = F.conv2d(F.pad(x, (0, 0, r_y, r_y), mode="reflect"), k[r - r_y : r + r_y + 1].view(1, 1, -1, 1))
    return F.conv2d(F.pad(x, (r_x, r_x, 0, 0), mode="reflect"), k[r - r_x : r + r_x + 1].view(1, 1, 1, -1))


def _blur_opencv(x: torch.Tensor, k: np.ndarray) -> torch.Tensor:
    """`gaussian_blur`'s CPU path: each map through cv2.sepFilter2D (BORDER_REFLECT_101 is
    torch's "reflect")."""
    maps = x.detach().contiguous().numpy().reshape(-1, *x.shape[-2:])
    out = np.stack([cv2.sepFilter2D(m, -1, k, k, borderType=cv2.BORDER_REFLECT_101) for m in maps])
    return torch.from_numpy(out.reshape(x.shape))
