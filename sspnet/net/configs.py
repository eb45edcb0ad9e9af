"""Named model configurations as plain data (so checkpoints can store them as JSON)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the architecture. Tuples are per scale, ordered strides (8, 16, 32)."""

    backbone: str = "resnet50"
    dims: tuple[int, int, int] = (512, 768, 768)  # 1x1-reduced widths = token widths
    depths: tuple[int, int, int] = (2, 2, 2)  # transformer blocks per scale (0 = none)
    heads: tuple[int, int, int] = (8, 12, 12)
    stage3: int = 256
    tail: tuple[int, ...] = (128, 64, 32)
    out_stride: int = 1
    dual_decoder: bool = True
    input_size: tuple[int, int] = (288, 384)  # (height, width)
    output_blur: float = 0.0  # Gaussian sigma (input pixels) on predicted maps; chosen on validation data
    # SSM from maps scaled to max 1 (the ground truth's convention, spec eq. 2 DECISION). For a
    # model trained on saliency only (the intuitive approach) this makes attention drawn away
    # from a blurred object count as a shift elsewhere, as it does in human data.
    shift_from_normalized: bool = False
    # Learned centre prior mixed into each saliency map (`sspnet.net.prior`), its gate optionally
    # also reading the mean of the deepest tokens (what kind of scene it is).
    prior: bool = False
    prior_image_features: bool = False
    # Log-density centre bias (`sspnet.net.prior.centre_weighting`, DeepGaze's): each map multiplied
    # by an isotropic Gaussian of this sigma (fraction of the image's box), 0 = off. Applied
    # after the output blur and before the mixed-in prior; chosen on leave-one-dataset-out runs.
    centre_sigma: float = 0.0
    # Saliency on its own (`predict_saliency`, `sspnet eval`, the codec's weights) averaged over
    # test-time views: the mirror image (`flip_saliency`) and the canvas resized by each factor
    # of `saliency_scales` (to multiples of 32). One network pass per view and image, so never
    # per codec candidate: shifts always use one pass at scale 1. Chosen on leave-one-dataset-out runs.
    flip_saliency: bool = False
    saliency_scales: tuple[float, ...] = (1.0,)
    # The SSM as a map, not a sparse difference (`SSPNet.shift`): eq. 2's positive part smoothed
    # at this sigma (input pixels), plus `shift_spread` times its own mass spread like SM_d.
    shift_blur: float = 0.0
    shift_spread: float = 0.0

    def __post_init__(self) -> None:
        if not self.saliency_scales or not all(s > 0 for s in self.saliency_scales):
            raise ValueError(f"saliency_scales must be one or more positive factors, got {self.saliency_scales!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


PAPER = ModelConfig()

CONFIGS: dict[str, ModelConfig] = {
    # The paper's exact sizes (about 83M parameters with ResNet-50).
    "paper-resnet50": PAPER,
    "paper-resnet18": replace(PAPER, backbone="resnet18"),
    "paper-vgg16": replace(PAPER, backbone="vgg16"),
    "paper-no-transformer": replace(PAPER, depths=(0, 0, 0)),
    "paper-single-decoder": replace(PAPER, dual_decoder=False),
    # CPU-friendly default: MobileNetV2 trunk, narrow tokens, no attention over the 1,728
    # stride-8 tokens (the paper's dominant cost), decoder stopping at stride 4.
    "default": ModelConfig(
        backbone="mobilenet_v2",
        dims=(64, 128, 192),
        depths=(0, 1, 2),
        heads=(4, 4, 4),
        stage3=48,
        tail=(32,),
        out_stride=4,
    ),
}
CONFIGS["default-no-transformer"] = replace(CONFIGS["default"], depths=(0, 0, 0))
CONFIGS["default-single-decoder"] = replace(CONFIGS["default"], dual_decoder=False)
# Backbone study (issue 10): `default` with an EfficientNet-Lite trunk, all else equal; the 1x1
# reductions absorb the different tap widths. Untrained; see docs/BACKBONES.md.
# Distillation teacher (issue 10, item 5; for a GPU): the default's trunk trained whole at 1.5x
# the canvas, with wider tokens, attention from stride 16 on and a decoder ending at stride 2.
CONFIGS["teacher"] = replace(CONFIGS["default"], dims=(128, 256, 384), depths=(0, 2, 2), heads=(4, 8, 8),
                             stage3=96, tail=(64, 32), out_stride=2, input_size=(432, 576))
CONFIGS.update({f"default-effl{n}": replace(CONFIGS["default"], backbone=f"efficientnet_lite{n}") for n in (0, 1, 2)})


def get_config(name_or_config: str | ModelConfig | dict) -> ModelConfig:
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        return ModelConfig.from_dict(name_or_config)
    if name_or_config not in CONFIGS:
        raise ValueError(f"unknown config '{name_or_config}'; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name_or_config]

