"""Evaluation loop on tiny synthetic data: row format, cropping, perfect predictors, outputs."""
from __future__ import annotations

import csv
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from sspnet.baselines import AverageMap, CenterBias
from sspnet.evaluate import (
    SALIENCY_METRICS,
    SHIFT_METRICS,
    crop_to_valid,
    evaluate_saliency,
    evaluate_shift,
    intuitive_predictor,
    markdown_table,
    run_saliency_eval,
    significance,
    summarize,
    valid_box,
    write_csv,
)
from sspnet.maps import fixation_map, saliency_map, shift_map
from sspnet.net.configs import CONFIGS
from sspnet.net.model import build_model
from sspnet.preprocess import letterbox

CANVAS = (64, 96)  # small letterbox canvas: the model accepts any size, tests stay fast
IMAGE = (40, 80)  # aspect 2:1 -> box 48x96 at top 8: padding above and below


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("default")


def _fixations(rng: np.random.Generator, shape, n=12) -> np.ndarray:
    h, w = shape
    return np.stack([rng.uniform(0, w - 1, n), rng.uniform(0, h - 1, n)], axis=1)


def _valid(box) -> np.ndarray:
    m = np.zeros(CANVAS, bool)
    m[box.top : box.top + box.height, box.left : box.left + box.width] = True
    return m


def _to_canvas_fix(xy: np.ndarray, box) -> np.ndarray:
    """Fixations scaled into the box, rasterised at their nearest canvas pixel."""
    s = box.width / IMAGE[1]
    canvas_xy = np.stack([box.left + (xy[:, 0] + 0.5) * s - 0.5, box.top + (xy[:, 1] + 0.5) * s - 0.5], 1)
    return fixation_map(canvas_xy, CANVAS)


def saliency_items(n=4, seed=0) -> list[dict]:
    """Batch-ready dicts shaped like SaliencyDataset items."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = rng.integers(0, 256, IMAGE + (3,), dtype=np.uint8)
        xy = _fixations(rng, IMAGE)
        canvas, box = letterbox(img, CANVAS)
        sm, _ = letterbox(saliency_map(xy, IMAGE, sigma=6.0), CANVAS)
        out.append(
            {
                "image": torch.from_numpy(canvas.transpose(2, 0, 1).copy()).float() / 255,
                "saliency": torch.from_numpy(sm)[None],
                "fixations": torch.from_numpy(_to_canvas_fix(xy, box))[None],
                "valid": torch.from_numpy(_valid(box))[None],
                "name": f"img{i}.png",
            }
        )
    return out


def shift_items(seed=0) -> list[dict]:
    """Shaped like ShiftDataset items; the last one has no shift at all (all-zero SSM)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (dist, level) in enumerate([("JPEG", 1), ("JPEG", 3), ("MB", 2), ("CC", 1)]):
        img = rng.integers(0, 256, IMAGE + (3,), dtype=np.uint8)
        xy_r, xy_d = _fixations(rng, IMAGE), _fixations(rng, IMAGE)
        if i == 3:
            xy_d = xy_r
        p, box = letterbox(img, CANVAS)
        d, _ = letterbox(np.clip(img.astype(int) + 30, 0, 255).astype(np.uint8), CANVAS)
        sm_r, _ = letterbox(saliency_map(xy_r, IMAGE, sigma=6.0), CANVAS)
        sm_d, _ = letterbox(saliency_map(xy_d, IMAGE, sigma=6.0), CANVAS)
        t = lambda a: torch.from_numpy(a.transpose(2, 0, 1).copy()).float() / 255  # noqa: E731
        out.append(
            {
                "pristine": t(p),
                "distorted": t(d),
                "sm_r": torch.from_numpy(sm_r)[None],
                "sm_d": torch.from_numpy(sm_d)[None],
                "ssm": torch.from_numpy(shift_map(sm_d, sm_r))[None],
                "valid": torch.from_numpy(_valid(box))[None],
                "distortion": dist,
                "level": level,
                "scene_id": f"s{i % 2}",
            }
        )
    return out


def gt_predictor(key: str):
    return lambda batch: batch[key][:, 0].numpy()


def test_valid_box_and_crop():
    m = np.zeros((6, 8), bool)
    m[1:4, 2:7] = True
    assert valid_box(m, (6, 8)) == (slice(1, 4), slice(2, 7))
    assert crop_to_valid(np.arange(48).reshape(6, 8), m).shape == (3, 5)
    assert crop_to_valid(np.ones((1, 6, 8)), None).shape == (6, 8)
    with pytest.raises(ValueError):
        valid_box(np.zeros((6, 8)), (6, 8))


def test_evaluate_saliency_rows(model):
    items = saliency_items()
    train_maps = [crop_to_valid(it["saliency"].numpy(), it["valid"].numpy()) for it in items]
    model.train()
    rows = evaluate_saliency(
        model,
        items,
        baselines={
            "center_bias": CenterBias.fit(train_maps),
            "average": AverageMap.fit(train_maps),
            "gt": gt_predictor("saliency"),
        },
        batch_size=3,
        progress=False,
    )
    assert model.training, "the caller's train/eval flag must be restored"
    assert len(rows) == 4 * 4
    assert {r["model"] for r in rows} == {"sspnet", "center_bias", "average", "gt"}
    for r in rows:
        assert set(r) == {"name", "model", *SALIENCY_METRICS}
        assert all(math.isfinite(r[m]) for m in SALIENCY_METRICS)
    for r in (r for r in rows if r["model"] == "gt"):
        assert r["cc"] == pytest.approx(1.0, abs=1e-6)
        assert r["sim"] == pytest.approx(1.0, abs=1e-6)
        assert r["kld"] == pytest.approx(0.0, abs=1e-6)
        assert r["auc_judd"] > 0.9


def test_padding_is_not_scored():
    """A prediction equal to the gt inside the image and garbage in the padding is perfect."""
    items = saliency_items(2)

    def noisy_padding(batch):
        out = batch["saliency"][:, 0].numpy().copy()
        pad = ~batch["valid"][:, 0].numpy()
        out[pad] = np.random.default_rng(0).random(pad.sum())
        return out

    rows = evaluate_saliency({"p": noisy_padding}, items, progress=False)
    assert all(r["cc"] == pytest.approx(1.0, abs=1e-6) for r in rows)


def test_evaluate_shift_rows_and_tables(model):
    items = shift_items()
    rows = evaluate_shift(
        model,
        items,
        intuitive={"IA_default": model, "perfect": gt_predictor("ssm")},
        batch_size=2,
        device="cpu",
        progress=False,
    )
    assert len(rows) == 4 * 3
    for r in rows:
        assert set(r) == {"name", "model", "scene_id", "distortion", "level", *SHIFT_METRICS}
        assert isinstance(r["level"], int) and isinstance(r["distortion"], str)
        assert all(math.isfinite(r[m]) for m in SHIFT_METRICS)
    perfect = [r for r in rows if r["model"] == "perfect"]
    assert all(r["sim"] == pytest.approx(1.0, abs=1e-6) and r["kld"] == pytest.approx(0.0, abs=1e-6) for r in perfect)
    assert all(r["cc"] == pytest.approx(1.0, abs=1e-6) for r in perfect if r["distortion"] != "CC")

    table = summarize(rows, by=("model", "distortion", "level"))
    assert len(table) == 3 * 4
    assert {"model", "distortion", "level", "n", "cc_mean", "cc_std", "kld_mean"} <= set(table[0])
    md = markdown_table(table)
    assert "KLD ↓" in md and "CC ↑" in md and "±" in md
    assert len(md.strip().splitlines()) == 2 + len(table)


@pytest.mark.parametrize("normalized", [False, True])
def test_intuitive_predictor_uses_the_models_eq2(normalized):
    """The intuitive approach is ReLU(SM(d) - SM(r)) of ONE decoder, on max-1 maps exactly when
    the model's config says `shift_from_normalized` (as the model's own predict_shift does)."""
    m = build_model(replace(CONFIGS["default"], shift_from_normalized=normalized)).eval()
    decoders = []

    def saliency(x: torch.Tensor, which: str = "r", boxes=None) -> torch.Tensor:  # known maps with peaks below 1
        decoders.append(which)
        return 0.8 * x.mean(dim=1, keepdim=True)

    m.saliency = saliency
    batch = torch.utils.data.default_collate(shift_items()[:2])
    got = intuitive_predictor(m)(batch)
    assert decoders == ["r"]  # both images in one pass through the pristine decoder
    sm_r, sm_d = saliency(batch["pristine"]), saliency(batch["distorted"])
    top = lambda x: x / x.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-6)  # noqa: E731 (written out here)
    raw = (sm_d - sm_r).clamp_min(0)[:, 0].numpy()
    scaled = (top(sm_d) - top(sm_r)).clamp_min(0)[:, 0].numpy()
    assert raw.max() > 0.05 and np.abs(raw - scaled).max() > 0.05  # the two rules really differ here
    assert got.shape == (2, *CANVAS)
    np.testing.assert_allclose(got, scaled if normalized else raw, rtol=0, atol=1e-6)


def test_summarize_and_significance_on_synthetic_rows():
    rng = np.random.default_rng(0)
    rows = [
        {"name": f"i{i}", "model": m, "cc": float(v)}
        for i in range(60)
        for m, v in (("a", rng.normal(0.8, 0.05)), ("b", rng.normal(0.5, 0.05)))
    ]
    s = summarize(rows)
    assert [x["model"] for x in s] == ["a", "b"] and s[0]["n"] == 60
    assert s[0]["cc_mean"] == pytest.approx(np.mean([r["cc"] for r in rows if r["model"] == "a"]))
    c = significance(rows, "a", "b", "cc")
    assert c.significant and c.n_a == 60
    assert not significance(rows, "a", "a", "cc").significant
    with pytest.raises(ValueError):
        significance(rows + [rows[0]], "a", "b", "cc")  # a duplicated image cannot be paired


def test_run_saliency_eval_writes_outputs(model, tmp_path):
    items = saliency_items()
    maps = [crop_to_valid(it["saliency"].numpy(), it["valid"].numpy()) for it in items]
    summary = run_saliency_eval(model, items, {"center_bias": CenterBias.fit(maps)}, tmp_path / "out", progress=False)
    assert [s["model"] for s in summary] == ["sspnet", "center_bias"]
    with (tmp_path / "out" / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and set(rows[0]) == {"name", "model", *SALIENCY_METRICS}
    assert all(math.isfinite(float(r["nss"])) for r in rows)
    md = (tmp_path / "out" / "results.md").read_text()
    assert "sspnet vs center_bias" in md and "AUC-Judd ↑" in md and "±" in md


def test_write_csv_roundtrip(tmp_path):
    rows = [{"name": "a", "model": "m", "cc": 0.123456789}, {"name": "b", "model": "m", "cc": 0.5, "extra": 1}]
    path = write_csv(rows, tmp_path / "sub" / "r.csv")
    back = list(csv.DictReader(path.open()))
    assert float(back[0]["cc"]) == 0.123456789 and back[1]["extra"] == "1" and back[0]["extra"] == ""


def test_run_saliency_eval_from_eye_tracking_items(model, tmp_path):
    """End to end through the real SaliencyDataset when it is available."""
    from PIL import Image

    from sspnet.data.fixations import EyeTrackingImage, Fixations

    rng = np.random.default_rng(1)
    stimuli = tmp_path / "ds" / "stimuli"
    stimuli.mkdir(parents=True)
    items = []
    for i in range(3):
        path = stimuli / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, IMAGE + (3,), dtype=np.uint8)).save(path)
        xy = _fixations(rng, IMAGE)
        fix = Fixations(xy[:, 0], xy[:, 1], np.full(len(xy), 200, np.float32), np.zeros(len(xy), np.int32))
        items.append(EyeTrackingImage(path.name, path, IMAGE[1], IMAGE[0], fix, "synthetic"))
    summary = run_saliency_eval(
        model, items, {}, tmp_path / "out", size=CANVAS, cache_dir=tmp_path / "cache", progress=False
    )
    assert summary[0]["n"] == 3 and all(math.isfinite(summary[0][f"{m}_mean"]) for m in SALIENCY_METRICS)
    assert (tmp_path / "out" / "results.md").exists()
