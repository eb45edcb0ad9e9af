"""The learned centre prior, the SSM as a map, leave-one-dataset-out splits and `sspnet fit-prior`."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers_data import TINY_CANVAS, tiny_model_config, write_blob_dataset
from typer.testing import CliRunner

from sspnet import metrics
from sspnet.cli import app
from sspnet.net.model import build_model
from sspnet.net.prior import SaliencyPrior, box_mask, centre_weighting, map_statistics
from sspnet.preprocess import Box, boxes_from_masks
from sspnet.training import priorfit
from sspnet.training.experiments import image_key, leave_one_dataset_out, read_saliency_items, train_saliency
from sspnet.training.train import TrainConfig
from sspnet.zoo import load_model, save_checkpoint


@pytest.fixture(autouse=True)
def cache_env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SSPNET_CACHE", str(tmp_path_factory.getbasetemp() / "sspnet-cache"))


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    return [write_blob_dataset(root / "alpha", n=8, seed=1), write_blob_dataset(root / "beta", n=6, seed=2)]


def _model(**changes):
    torch.manual_seed(0)
    return build_model(dataclasses.replace(tiny_model_config(), **changes)).eval()


# ----------------------------------------------------------------------------- prior module


def test_prior_map_sits_on_the_image_box_and_follows_its_aspect() -> None:
    prior = SaliencyPrior()
    size = (48, 64)
    landscape, portrait = Box(8, 0, 32, 64), Box(0, 20, 48, 24)
    p = prior.prior_map([landscape, portrait], 2, size, torch.device("cpu"))[:, 0].detach()
    outside = 1 - box_mask([landscape, portrait], 2, size, torch.device("cpu"))[:, 0]
    assert float((p * outside).abs().max()) == 0.0  # nothing in the letterbox padding
    for m, b in zip(p, (landscape, portrait)):
        row, col = divmod(int(m.argmax()), size[1])
        assert abs(row - (b.top + b.height / 2)) <= 1 and abs(col - (b.left + b.width / 2)) <= 1
    # the same sigma in fractions of the box: the portrait's Gaussian is narrower in pixels across
    width_at_half = lambda m: int((m.max(0).values > 0.5).sum())  # noqa: E731
    assert width_at_half(p[1]) < width_at_half(p[0])


def test_map_statistics_entropy_is_one_for_a_flat_map_and_lower_for_a_peak() -> None:
    mask = torch.ones(2, 1, 10, 10)
    flat = torch.full((1, 1, 10, 10), 0.3)
    peak = torch.zeros(1, 1, 10, 10)
    peak[..., 5, 5] = 1.0
    stats = map_statistics(torch.cat([flat, peak]), mask)
    assert stats[0, 3] == pytest.approx(1.0, abs=1e-4) and stats[1, 3] < 0.05
    assert stats[0, 0] == pytest.approx(0.3) and stats[0, 1] == pytest.approx(0.0, abs=1e-6)


def test_gate_gives_a_diffuse_map_more_prior_when_fitted_so() -> None:
    prior = SaliencyPrior()
    with torch.no_grad():
        prior.gate_stats.copy_(torch.tensor([0.0, 0.0, 0.0, 8.0]))  # weight on entropy
        prior.gate_bias.fill_(-6.0)
    mask = torch.ones(2, 1, 12, 12)
    diffuse = torch.full((1, 1, 12, 12), 0.5)
    sharp = torch.zeros(1, 1, 12, 12)
    sharp[..., 2, 3] = 1.0
    a = prior.weight(torch.cat([diffuse, sharp]), mask, None).flatten()
    assert a[0] > 0.8 > 0.1 > a[1]


def test_prior_keeps_identical_pairs_at_zero_shift_and_a_real_change_positive() -> None:
    model = _model(prior=True, shift_blur=3.0, shift_spread=1.0)
    model.tie_decoders()
    x = torch.rand(2, 3, *TINY_CANVAS)
    boxes = [Box(0, 0, *TINY_CANVAS), Box(4, 0, TINY_CANVAS[0] - 8, TINY_CANVAS[1])]
    with torch.inference_mode():
        assert float(model(x, x, boxes)["ssm"].abs().max()) == 0.0
        y = x.clone()
        y[:, :, 10:30, 10:40] = 1.0
        assert float(model(x, y, boxes)["ssm"].sum()) > 0


def test_centre_weighting_discounts_the_edges_of_each_box_and_only_shrinks() -> None:
    size = (48, 64)
    landscape, portrait = Box(8, 0, 32, 64), Box(0, 20, 48, 24)
    sm = torch.rand(2, 1, *size)
    assert centre_weighting(sm, [landscape, portrait], 0.0) is sm  # off
    out = centre_weighting(sm, [landscape, portrait], 0.5)
    assert bool((out <= sm).all()) and bool((out >= 0).all())
    flat = centre_weighting(torch.ones(2, 1, *size), [landscape, portrait], 0.5)[:, 0]
    for m, b in zip(flat, (landscape, portrait)):
        mid = m[b.top + b.height // 2, b.left + b.width // 2]
        corner = m[b.top, b.left]  # u = v = -1/2 (to half a pixel): exp(-0.5 / (2 * 0.25))
        assert float(mid) == pytest.approx(1.0, abs=0.01)
        assert float(corner) == pytest.approx(float(np.exp(-1.0)), abs=0.03)
        assert float(m[: b.top].abs().sum() + m[b.top + b.height :].abs().sum()) == 0.0  # padding


def test_centre_weighting_keeps_identical_pairs_at_zero_shift_and_is_in_the_config() -> None:
    model = _model(centre_sigma=0.6, shift_blur=3.0, shift_spread=1.0)
    model.tie_decoders()
    plain = _model(shift_blur=3.0, shift_spread=1.0)
    plain.tie_decoders()
    x = torch.rand(1, 3, *TINY_CANVAS)
    box = [Box(4, 0, TINY_CANVAS[0] - 8, TINY_CANVAS[1])]
    with torch.inference_mode():
        assert float(model(x, x, box)["ssm"].abs().max()) == 0.0
        sm, sm_plain = model.saliency(x, "r", box), plain.saliency(x, "r", box)
    h, w = TINY_CANVAS
    edge, mid = (h // 2, 0), (h // 2, w // 2)
    assert float(sm[0, 0][edge] / sm_plain[0, 0][edge]) < 0.75 < float(sm[0, 0][mid] / sm_plain[0, 0][mid])
    assert type(model.config).from_dict(model.config.to_dict()).centre_sigma == 0.6


def test_flip_averaged_saliency_is_mirror_symmetric_and_shifts_stay_single_pass() -> None:
    model = _model(centre_sigma=0.6, shift_blur=3.0, shift_spread=1.0, flip_saliency=True)
    model.tie_decoders()
    x = torch.rand(1, 3, *TINY_CANVAS)
    with torch.inference_mode():
        plain, mirrored = model.saliency(x), model.saliency(x.flip(-1)).flip(-1)
        assert float((plain - mirrored).abs().max()) > 1e-4  # one pass is not mirror-symmetric
        avg, avg_m = model.saliency(x, tta=True), model.saliency(x.flip(-1), tta=True).flip(-1)
        assert float((avg - avg_m).abs().max()) < 1e-5  # the average is
    rgb = (np.random.default_rng(0).random((40, 52, 3)) * 255).astype(np.uint8)
    sm = model.predict_saliency(rgb)
    sm_m = model.predict_saliency(np.ascontiguousarray(rgb[:, ::-1]))[:, ::-1]
    assert np.abs(sm - sm_m).max() < 1e-4  # predict_saliency follows the config
    pred = model.predict_shift(rgb, rgb)
    assert float(pred.ssm.max()) == 0.0  # identical pair: both single-pass, exactly zero
    assert np.abs(pred.sm_pristine - sm).max() > 0  # and not the flip-averaged map



def test_multi_scale_views_average_resized_passes_and_count_them() -> None:
    """saliency_scales: each view is the canvas resized (multiples of 32), decoded and brought back;
    the average is over the views, the shift's single pass is untouched, and prepare counts passes."""
    model = _model(centre_sigma=0.6, flip_saliency=True, saliency_scales=(1.0, 1.5))
    model.tie_decoders()
    assert model.views() == [(1.0, False), (1.0, True), (1.5, False), (1.5, True)]
    x = torch.rand(1, 3, *TINY_CANVAS)
    with torch.inference_mode():
        own, raw, averaged = model.single_and_averaged(x, "r")
        # 48x64 at 1.5 is 72x96: the view rounds each side to a multiple of 32 (the trunk's stride)
        big = torch.nn.functional.interpolate(x, size=(64, 96), mode="bilinear", antialias=True)
        views = [raw, model.decoder_r(model.encode(x.flip(-1)), TINY_CANVAS).flip(-1)]
        for v in (big, big.flip(-1)):
            m = model.decoder_r(model.encode(v), tuple(big.shape[-2:]))
            m = m.flip(-1) if v is not big else m
            views.append(torch.nn.functional.interpolate(m, size=TINY_CANVAS, mode="bilinear"))
        assert float((averaged - sum(views) / 4).abs().max()) < 1e-5
        assert float((averaged - raw).abs().max()) > 1e-4  # the views do change the map
        single = model.saliency(x)
        assert torch.equal(single, model.decode(own, "r", TINY_CANVAS))  # the shift's map: one pass
        assert float(model(x, x)["ssm"].abs().max()) == 0.0
    cache = model.prepare((np.random.default_rng(1).random((40, 52, 3)) * 255).astype(np.uint8))
    assert cache.passes == 4 and cache.view is not None
    model.config = dataclasses.replace(model.config, flip_saliency=False, saliency_scales=(1.0,))
    assert model.views() == [(1.0, False)] and model.prepare(np.zeros((8, 8, 3), np.uint8)).passes == 1
    for bad in ((), (0.0,), (1.0, -1.5)):
        with pytest.raises(ValueError, match="saliency_scales"):
            dataclasses.replace(model.config, saliency_scales=bad)

def test_shift_spread_keeps_the_total_and_reaches_where_people_look() -> None:
    plain, spread = _model(), _model(shift_blur=4.0, shift_spread=2.0)
    sm_r = torch.zeros(1, 1, 48, 64)
    sm_d = torch.zeros(1, 1, 48, 64)
    sm_d[..., 20, 30] = 0.5  # a one-pixel shift
    sm_d[..., 5:15, 40:60] += 0.2  # where people look in the distorted image
    d0, d1 = plain.shift(sm_d, sm_r), spread.shift(sm_d, sm_r)
    assert float(d1.sum()) == pytest.approx(float(d0.sum()), rel=1e-4)  # same total shift
    assert float((d0 > 0).float().mean()) < 0.2 < float((d1 > 1e-9).float().mean())
    assert float(d1[..., 10, 50]) > 0 == float(d0[..., 10, 50]) * 0  # mass reaches the salient region
    # and stronger distortion, larger shift
    assert float(spread.shift(sm_d * 2, sm_r).sum()) > float(d1.sum())
    assert float(spread.shift(sm_r, sm_r).abs().max()) == 0.0


def test_boxes_from_masks_finds_each_box_and_falls_back_to_the_canvas() -> None:
    mask = torch.zeros(2, 1, 6, 8, dtype=torch.bool)
    mask[0, 0, 1:5, 2:7] = True
    assert boxes_from_masks(mask) == [Box(1, 2, 4, 5), Box(0, 0, 6, 8)]


# ----------------------------------------------------------------------------- fitting


def _collected(n: int = 24, seed: int = 0) -> priorfit.Collected:
    """Network maps that are noise, human maps that are a centre Gaussian: only a prior helps."""
    g = torch.Generator().manual_seed(seed)
    h, w = 24, 32
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    centre = torch.exp(-((xx / w - 0.5) ** 2) / (2 * 0.15**2) - ((yy / h - 0.5) ** 2) / (2 * 0.15**2))
    raw = torch.rand(n, 1, h, w, generator=g)
    return priorfit.Collected(raw, raw.flip(-1), torch.zeros(n, 4), centre.expand(n, 1, h, w).clone(),
                              [Box(0, 0, h, w)] * n, [f"x/{i}" for i in range(n)])


def test_fit_prior_learns_the_centre_when_the_network_knows_nothing() -> None:
    c = _collected()
    before = priorfit.score(c, priorfit.predict(c, 0.0, None))
    prior = priorfit.fit_prior(c, 0.0, steps=150, lr=0.05)
    after = priorfit.score(c, priorfit.predict(c, 0.0, prior))
    assert before["cc"] < 0.2 and after["cc"] > 0.9
    assert after["kld"] < before["kld"] / 2
    assert float(prior.weight(c.raw, torch.ones_like(c.raw), None).mean()) > 0.5


def test_fit_output_stage_picks_the_best_blur_and_writes_it_into_the_model() -> None:
    c = _collected()
    model = _model()
    fitted, report = priorfit.fit_output_stage(model, c, [0.0, 2.0], steps=60)
    assert [r["blur"] for r in report["tried"]] == [0.0, 2.0]
    best = max(report["tried"], key=lambda r: r["cc"])
    assert fitted.config.output_blur == best["blur"] == report["output_blur"]
    assert fitted.config.prior and fitted.prior is not None
    for k, v in model.state_dict().items():  # the network itself is untouched
        assert torch.equal(fitted.state_dict()[k], v)
    plain, report = priorfit.fit_output_stage(fitted, c, [1.0], use_prior=False)
    assert plain.prior is None and not plain.config.prior and plain.config.output_blur == 1.0
    assert not report["prior"] and set(plain.state_dict()) == set(model.state_dict())


def test_score_matches_the_metric_functions() -> None:
    c = _collected(n=3)
    pred = priorfit.predict(c, 0.0, None)
    s = priorfit.score(c, pred)
    assert s["cc"] == pytest.approx(np.mean([metrics.cc(pred[i, 0].numpy(), c.gt[i, 0].numpy()) for i in range(3)]))


# ----------------------------------------------------------------------------- protocol and CLI


def test_leave_one_dataset_out_tests_on_whole_sets_never_seen(two_sets) -> None:
    items = read_saliency_items(two_sets)
    splits = leave_one_dataset_out(items, 0.25, seed=0)
    assert sorted(splits) == ["alpha", "beta"]
    for name, (tr, va, te) in splits.items():
        assert {items[i].dataset for i in te} == {name}
        assert len(te) == sum(it.dataset == name for it in items)
        assert all(items[i].dataset != name for i in tr + va) and tr and va
        assert not set(tr) & set(va)
    with pytest.raises(ValueError, match="at least two"):
        leave_one_dataset_out([it for it in items if it.dataset == "alpha"], 0.25, 0)


def test_train_leave_one_dataset_out_writes_one_run_per_set(two_sets, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("sspnet.training.experiments.build_model", lambda *a, **k: _model())
    cfg = TrainConfig(epochs=1, lr=1e-3, batch_size=4, workers=0, device="cpu", max_steps_per_epoch=1)
    results = train_saliency(two_sets, tmp_path, cfg, "default", False, val_fraction=0.4, leave_out=True)
    assert len(results) == 2
    for name in ("alpha", "beta"):
        split = json.loads((tmp_path / f"test-{name}" / "split.json").read_text())
        assert split["test"] and all(k.startswith(f"{name}/") for k in split["test"])
        assert not any(k.startswith(f"{name}/") for k in split["train"] + split["val"])
        assert (tmp_path / f"test-{name}" / "best.safetensors").is_file()


def test_fit_prior_cli_writes_a_loadable_checkpoint_with_the_stage(two_sets, tmp_path) -> None:
    ckpt = save_checkpoint(_model(), tmp_path / "net.safetensors", info={"name": "tiny"})
    items = read_saliency_items(two_sets)
    (tmp_path / "split.json").write_text(json.dumps({"val": [image_key(i) for i in items[:5]]}))
    out = tmp_path / "fitted.safetensors"
    args = ["fit-prior", "-m", str(ckpt), "-d", str(two_sets[0]), "-d", str(two_sets[1]), "--split",
            str(tmp_path / "split.json"), "-o", str(out), "--blurs", "0,1", "--steps", "20",
            "--shift-blur", "2", "--shift-spread", "1", "--centre-sigma", "0.6"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    model = load_model(str(out), "cpu")
    assert model.config.prior and model.config.shift_spread == 1.0 and model.config.shift_blur == 2.0
    assert model.config.centre_sigma == 0.6
    assert model.info["output_stage"]["images"] == 5 and model.info["name"] == "tiny"
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "exists" in again.output
    bad = CliRunner().invoke(app, [*args[:-8], "--blurs", "-1", "--overwrite"])
    assert bad.exit_code == 2 and "--blurs" in bad.output


def test_training_learns_the_prior_end_to_end(two_sets, tmp_path) -> None:
    """train.py hands the boxes through, so a config with the prior trains it with the network."""
    from sspnet.data import SaliencyDataset
    from sspnet.training.train import fit

    items = read_saliency_items(two_sets)
    model = _model(prior=True).train()
    before = {k: v.detach().clone() for k, v in model.prior.state_dict().items()}
    make = lambda part: SaliencyDataset(part, size=TINY_CANVAS)  # noqa: E731
    cfg = TrainConfig(epochs=1, lr=1e-2, batch_size=3, workers=0, device="cpu")
    fit(model, make(items[:6]), make(items[6:9]), cfg, tmp_path)
    after = model.prior.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
