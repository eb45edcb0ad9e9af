"""torch Datasets: item layout, letterbox geometry, flips that keep image and maps aligned."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sspnet.data.datasets import SaliencyDataset, ShiftDataset, letterbox_fixations, valid_mask
from sspnet.data.fixations import EyeTrackingImage, Fixations
from sspnet.data.shift_layout import build_shift_layout
from sspnet.preprocess import fit_box

SIZE = (36, 48)  # small canvas (h, w) keeps the tests fast; same aspect as 288 x 384


def spot_item(root: Path, name: str, w: int, h: int, x: int, y: int) -> EyeTrackingImage:
    """A dark image with one bright 3x3 spot at (x, y) and one fixation on it."""
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), 20, np.uint8)
    img[y - 1 : y + 2, x - 1 : x + 2] = 250
    path = root / "stimuli" / name
    Image.fromarray(img).save(path)  # PNG: exact pixels
    fx = Fixations(np.array([float(x)]), np.array([float(y)]), np.array([200.0], np.float32), np.array([0], np.int32))
    return EyeTrackingImage(name, path, w, h, fx, "spots")


@pytest.fixture()
def items(tmp_path: Path) -> list[EyeTrackingImage]:
    # 60x30 is wider than the canvas aspect: padding above and below
    return [spot_item(tmp_path / "data", "a.png", 60, 30, 12, 9), spot_item(tmp_path / "data", "b.png", 40, 40, 30, 20)]


def test_item_layout_default_size(items, tmp_path: Path) -> None:
    ds = SaliencyDataset(items, cache_dir=tmp_path / "cache")
    assert len(ds) == 2
    it = ds[0]
    assert set(it) >= {"image", "saliency", "fixations", "valid", "name"}
    assert it["image"].shape == (3, 288, 384) and it["image"].dtype == torch.float32
    assert float(it["image"].min()) >= 0.0 and float(it["image"].max()) <= 1.0
    assert it["saliency"].shape == (1, 288, 384) and it["saliency"].dtype == torch.float32
    assert it["fixations"].shape == (1, 288, 384) and it["fixations"].dtype == torch.bool
    assert it["valid"].shape == (1, 288, 384) and it["valid"].dtype == torch.bool
    assert it["name"] == "a.png"
    box = fit_box((30, 60), (288, 384))
    assert int(it["valid"].sum()) == box.height * box.width
    assert float(it["saliency"][~it["valid"]].abs().sum()) == 0.0  # padding carries no saliency
    assert float(it["image"][:, ~it["valid"][0]].abs().sum()) == 0.0
    assert int(it["fixations"].sum()) == 1 and bool(it["valid"][it["fixations"]].all())


def _argmax2d(t) -> tuple[int, int]:
    a = t.reshape(t.shape[-2], t.shape[-1]) if t.ndim == 3 and t.shape[0] == 1 else t
    idx = int(torch.argmax(a.float()))
    return divmod(idx, a.shape[-1])


def test_spot_map_and_image_agree(items, tmp_path: Path) -> None:
    it = SaliencyDataset(items, size=SIZE, cache_dir=tmp_path / "cache")[0]
    bright = _argmax2d(it["image"].mean(0))
    peak = _argmax2d(it["saliency"])
    fix = _argmax2d(it["fixations"])
    assert abs(bright[0] - peak[0]) <= 1 and abs(bright[1] - peak[1]) <= 1
    assert abs(fix[0] - peak[0]) <= 1 and abs(fix[1] - peak[1]) <= 1


def _flipped_epoch(ds: SaliencyDataset, plain: dict, index: int) -> dict:
    for epoch in range(64):
        ds.set_epoch(epoch)
        it = ds[index]
        if not torch.equal(it["image"], plain["image"]):
            return it
    raise AssertionError("no flip in 64 epochs at p = 0.5")


def test_flip_moves_image_and_maps_together(items, tmp_path: Path) -> None:
    plain_ds = SaliencyDataset(items, size=SIZE, cache_dir=tmp_path / "cache")
    aug = SaliencyDataset(items, size=SIZE, augment=True, cache_dir=tmp_path / "cache", seed=5)
    for index in range(len(items)):
        plain = plain_ds[index]
        flipped = _flipped_epoch(aug, plain, index)
        for key in ("image", "saliency", "fixations", "valid"):
            assert torch.equal(flipped[key], torch.flip(plain[key], dims=[-1])), key
        w = SIZE[1]
        py, px = _argmax2d(plain["fixations"])
        fy, fx = _argmax2d(flipped["fixations"])
        assert (fy, fx) == (py, w - 1 - px)
        by, bx = _argmax2d(flipped["image"].mean(0))
        sy, sx = _argmax2d(flipped["saliency"])
        assert abs(by - fy) <= 1 and abs(bx - fx) <= 1 and abs(sy - fy) <= 1 and abs(sx - fx) <= 1


def test_flip_deterministic_per_seed_epoch_index(items, tmp_path: Path) -> None:
    def flips(seed: int, epoch: int) -> list[bool]:
        ds = SaliencyDataset(items * 16, size=SIZE, augment=True, cache_dir=tmp_path / "cache", seed=seed)
        ds.set_epoch(epoch)
        return [ds.flips(i) for i in range(len(ds))]

    assert flips(1, 0) == flips(1, 0)
    assert flips(1, 0) != flips(1, 1) and flips(1, 0) != flips(2, 0)  # 32 draws: equal by chance p = 2^-32
    assert 4 <= sum(flips(1, 0)) <= 28  # about half of 32
    no_aug = SaliencyDataset(items, size=SIZE, augment=False, cache_dir=tmp_path / "cache")
    assert not any(no_aug.flips(i) for i in range(len(no_aug)))


def test_dataloader_batches(items, tmp_path: Path) -> None:
    ds = SaliencyDataset(items, size=SIZE, augment=True, cache_dir=tmp_path / "cache")
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, *SIZE) and batch["saliency"].shape == (2, 1, *SIZE)
    assert batch["name"] == ["a.png", "b.png"]


def test_letterbox_fixations_keeps_every_fixation() -> None:
    shape = (600, 800)
    box = fit_box(shape, SIZE)
    xy = np.array([[0, 0], [799, 599], [799, 0], [0, 599], [400, 300]], float)
    fm = letterbox_fixations(xy, shape, box, SIZE)
    assert fm.sum() == 5 and fm[valid_mask(box, SIZE)].sum() == 5
    assert fm[box.top, box.left] and fm[box.top + box.height - 1, box.left + box.width - 1]


# ----------------------------------------------------------------------------- shift pairs


@pytest.fixture()
def scenes(items, tmp_path: Path):
    return build_shift_layout(items, tmp_path / "shift", distortions=("contrast", "motion_blur"), levels=(1, 3))


def test_shift_items(scenes) -> None:
    ds = ShiftDataset(scenes, size=SIZE)
    assert len(ds) == 2 * 4
    assert ds.scene_ids == ["spots-a"] * 4 + ["spots-b"] * 4
    it = ds[3]
    for key in ("pristine", "distorted"):
        assert it[key].shape == (3, *SIZE) and it[key].dtype == torch.float32
    for key in ("sm_r", "sm_d", "ssm"):
        assert it[key].shape == (1, *SIZE) and it[key].dtype == torch.float32
    assert (it["distortion"], it["level"], it["scene_id"]) == ("motion_blur", 3, "spots-a")
    assert torch.equal(it["ssm"], torch.clamp(it["sm_d"] - it["sm_r"], min=0))
    assert not torch.equal(it["pristine"], it["distorted"])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["ssm"].shape == (4, 1, *SIZE) and batch["level"].tolist() == [1, 3, 1, 3]


def test_shift_flip_keeps_pairs_aligned(scenes) -> None:
    plain = ShiftDataset(scenes, size=SIZE)[5]
    aug = ShiftDataset(scenes, size=SIZE, augment=True, seed=2)
    for epoch in range(64):
        aug.set_epoch(epoch)
        it = aug[5]
        if not torch.equal(it["pristine"], plain["pristine"]):
            break
    else:
        raise AssertionError("no flip in 64 epochs")
    for key in ("pristine", "distorted", "sm_r", "sm_d", "ssm", "valid"):
        assert torch.equal(it[key], torch.flip(plain[key], dims=[-1])), key
