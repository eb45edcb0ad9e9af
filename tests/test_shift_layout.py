"""Shift-data layout: build from a tiny fixation set, read back, validation errors."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sspnet import maps
from sspnet.data.fixations import DatasetError, EyeTrackingImage, Fixations
from sspnet.data.shift_layout import (
    MANIFEST_COLUMNS,
    SYNTH_ALPHA,
    build_shift_layout,
    load_fixation_file,
    read_shift_dataset,
    synthesize_distorted_saliency,
)


def _textured(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)


def tiny_items(root: Path, n: int = 2, size=(48, 36)) -> list[EyeTrackingImage]:
    w, h = size
    (root / "stimuli").mkdir(parents=True)
    items = []
    for i in range(n):
        path = root / "stimuli" / f"{i:03d}.jpg"
        Image.fromarray(_textured(h, w, i)).save(path, quality=95)
        x = np.array([5.0 + i, 30.0, 40.0])
        y = np.array([5.0, 20.0 + i, 30.0])
        fx = Fixations(x, y, np.array([100, 200, 300], np.float32), np.array([0, 0, 1], np.int32))
        items.append(EyeTrackingImage(path.name, path, w, h, fx, "tiny"))
    return items


@pytest.fixture()
def built(tmp_path: Path):
    items = tiny_items(tmp_path / "src")
    scenes = build_shift_layout(items, tmp_path / "out", distortions=("contrast", "jpeg"), levels=(1, 3))
    return items, tmp_path / "out", scenes


def test_build_and_read_back(built) -> None:
    items, out, scenes = built
    assert [s.scene_id for s in scenes] == ["tiny-000", "tiny-001"]
    again = read_shift_dataset(out)
    assert [s.scene_id for s in again] == [s.scene_id for s in scenes]
    s = scenes[0]
    assert s.pristine.is_pristine and s.pristine.level == 0 and s.pristine.saliency_source == "human"
    expected = [("contrast", 1), ("contrast", 3), ("jpeg", 1), ("jpeg", 3)]
    assert [(r.distortion, r.level) for r in s.distorted] == expected
    assert all(r.saliency_source == "synthetic" and r.fixations is None for r in s.distorted)
    assert next(r.label for r in s.distorted) == "contrast_1"
    # pristine is the exact stimulus file; distorted images are lossless PNG of distort()
    assert s.pristine.image.read_bytes() == items[0].image_path.read_bytes()
    from sspnet.distortions import distort

    pristine = s.pristine.load_image()
    np.testing.assert_array_equal(s.distorted[3].load_image(), distort(pristine, "jpeg", 3))
    assert s.distorted[3].image.suffix == ".png"
    # human map and fixations of the pristine image
    sm_r = s.pristine.load_saliency()
    ref = maps.saliency_map(items[0].fixations.xy, items[0].shape)
    np.testing.assert_allclose(sm_r, ref, atol=1e-4)
    np.testing.assert_allclose(s.pristine.load_fixations(), items[0].fixations.xy)
    assert s.pristine.load_fixation_map().sum() == 3
    for r in s.distorted:
        sm_d = r.load_saliency()
        assert sm_d.shape == (36, 48) and sm_d.dtype == np.float32
        assert sm_d.max() == pytest.approx(1.0)
    readme = (out / "README.md").read_text()
    assert "SYNTHETIC" in readme and "NOT HUMAN" in readme
    assert not [p for p in out.rglob(".*")], "temporary files left behind"
    header = (out / "manifest.csv").read_text().splitlines()[0].split(",")
    assert header[: len(MANIFEST_COLUMNS)] == list(MANIFEST_COLUMNS)


def test_build_refuses_existing_and_source_folder(built, tmp_path: Path) -> None:
    items, out, _ = built
    with pytest.raises(FileExistsError):
        build_shift_layout(items, out)
    build_shift_layout(items[:1], out, distortions=("mb",), levels=(2,), overwrite=True)
    assert [(r.distortion, r.level) for r in read_shift_dataset(out)[0].distorted] == [("motion_blur", 2)]
    with pytest.raises(ValueError, match="source data"):
        build_shift_layout(items, tmp_path / "src" / "shift")


def test_synthesis_properties() -> None:
    rng = np.random.default_rng(0)
    pristine = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    sm_r = maps.saliency_map(np.array([[10.0, 10.0]]), (40, 60))
    # identical images: no visibility, the map is SM_r
    np.testing.assert_allclose(synthesize_distorted_saliency(sm_r, pristine, pristine, 3), sm_r, atol=1e-6)
    # a distortion far from the fixation pulls the map there, more at higher levels
    distorted = pristine.copy()
    distorted[25:35, 45:55] = 255 - distorted[25:35, 45:55]
    far = (30, 50)
    vals = [synthesize_distorted_saliency(sm_r, pristine, distorted, lv) for lv in (1, 2, 3)]
    for v in vals:
        assert v.dtype == np.float32 and v.max() == pytest.approx(1.0) and v.min() >= 0
        ssm = maps.shift_map(v, sm_r)
        assert np.unravel_index(np.argmax(ssm), ssm.shape) == pytest.approx(far, abs=3)
    assert vals[0][far] < vals[1][far] < vals[2][far]
    assert SYNTH_ALPHA[1] < SYNTH_ALPHA[2] < SYNTH_ALPHA[3]


# ----------------------------------------------------------------------------- validation


def _write(root: Path, rows: list[dict], header=MANIFEST_COLUMNS) -> Path:
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(header))
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in header})
    return root


@pytest.fixture()
def hand(tmp_path: Path) -> tuple[Path, list[dict]]:
    """A hand-written layout: two scenes, maps or fixations, fixations as .csv and .npy."""
    root = tmp_path / "hand"
    (root / "img").mkdir(parents=True)
    for name in ("p1", "d1", "p2", "d2"):
        Image.fromarray(_textured(20, 24, len(name))).save(root / "img" / f"{name}.png")
    cv2.imwrite(str(root / "img" / "m8.png"), np.full((20, 24), 128, np.uint8))
    cv2.imwrite(str(root / "img" / "m16.png"), np.full((20, 24), 30000, np.uint16))
    (root / "img" / "f.csv").write_text("x,y,observer\n1,2,0\n3.5,4,1\n")
    np.save(root / "img" / "f.npy", np.array([[1.0, 2.0]]))
    rows = [
        dict(scene_id="s1", category="OBJ", image="img/p1.png", distortion="none", level="", saliency="img/m8.png"),
        dict(scene_id="s1", category="OBJ", image="img/d1.png", distortion="JPEG", level="2", fixations="img/f.csv"),
        dict(scene_id="s2", category="POT", image="img/p2.png", distortion="none", level="0", saliency="img/m16.png"),
        dict(scene_id="s2", category="POT", image="img/d2.png", distortion="CC", level="1", fixations="img/f.npy"),
    ]
    return root, rows


def test_hand_written_layout(hand) -> None:
    root, rows = hand
    scenes = read_shift_dataset(_write(root, rows))
    assert [(s.scene_id, s.category) for s in scenes] == [("s1", "OBJ"), ("s2", "POT")]
    d = scenes[0].distorted[0]
    assert (d.distortion, d.level) == ("jpeg", 2)
    np.testing.assert_allclose(d.load_fixations(), [[1, 2], [3.5, 4]])
    sm = d.load_saliency()
    assert sm.shape == (20, 24) and sm.max() == pytest.approx(1.0)
    np.testing.assert_allclose(scenes[0].pristine.load_saliency(), 1.0)  # 8-bit map scaled to max 1
    np.testing.assert_allclose(scenes[1].pristine.load_saliency(), 1.0)  # 16-bit map too
    np.testing.assert_allclose(load_fixation_file(root / "img" / "f.npy"), [[1, 2]])


def test_exif_rotated_image_is_sized_as_read(hand) -> None:
    """An image stored 24x20 with EXIF "rotate 90" is read (and so checked) as 20x24, like its map."""
    root, rows = hand
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_textured(20, 24, 7)).save(root / "img" / "rot.png", exif=exif.tobytes())
    cv2.imwrite(str(root / "img" / "rot_map.png"), np.full((24, 20), 200, np.uint8))
    rot = [dict(scene_id="s3", category="X", image="img/rot.png", distortion="none", saliency="img/rot_map.png")]
    scene = read_shift_dataset(_write(root, rows + rot))[2]
    assert scene.pristine.shape == (24, 20)
    assert scene.pristine.load_image().shape == (24, 20, 3)
    assert scene.pristine.load_saliency().shape == (24, 20)


def _bad(root: Path, rows: list[dict], *words: str, header=MANIFEST_COLUMNS) -> None:
    _write(root, rows, header)
    with pytest.raises(DatasetError) as info:
        read_shift_dataset(root)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="manifest not found"):
        read_shift_dataset(tmp_path)


def test_missing_column(hand) -> None:
    root, rows = hand
    _bad(root, rows, "missing column", "fixations", header=MANIFEST_COLUMNS[:-1])


def test_missing_pristine(hand) -> None:
    root, rows = hand
    _bad(root, rows[1:], "s1", "no pristine")


def test_duplicate_rows(hand) -> None:
    root, rows = hand
    dup = dict(rows[1], image="img/d2.png")
    _bad(root, rows[:2] + [dup], "duplicate", "s1", "line 3")
    _bad(root, rows + [dict(rows[1], level="3")], "already used", "img/d1.png")
    _bad(root, rows + [dict(rows[0], image="img/d2.png")], "duplicate", "none")


def test_unknown_paths(hand) -> None:
    root, rows = hand
    _bad(root, [dict(rows[0], image="img/nope.png")] + rows[1:], "manifest.csv:2", "nope.png", "not found")
    _bad(root, [dict(rows[0], saliency="../outside.png")] + rows[1:], "leaves the dataset root")
    _bad(root, [dict(rows[0], image=str(root / "img" / "p1.png"))] + rows[1:], "must be relative")


def test_bad_levels(hand) -> None:
    root, rows = hand
    _bad(root, [rows[0], dict(rows[1], level="high")] + rows[2:], "level", "'high'", "not an integer")
    _bad(root, [rows[0], dict(rows[1], level="0")] + rows[2:], "level must be >= 1")
    _bad(root, [dict(rows[0], level="2")] + rows[1:], "pristine row", "'2'")


def test_other_errors(hand) -> None:
    root, rows = hand
    _bad(root, [rows[0], dict(rows[1], fixations="")] + rows[2:], "needs a saliency map or a fixation file")
    _bad(root, [rows[0], dict(rows[1], category="ACT")] + rows[2:], "category")
    _bad(root, [rows[0], dict(rows[1], distortion="")] + rows[2:], "empty distortion")
    _bad(root, [rows[0], dict(rows[1], fixations="img/m8.png")] + rows[2:], ".npy or .csv")
    Image.fromarray(_textured(12, 24, 0)).save(root / "img" / "small.png")
    _bad(root, [rows[0], dict(rows[1], image="img/small.png")] + rows[2:], "24x12", "24x20")
    _bad(root, [dict(rows[0], saliency="img/small.png")] + rows[1:], "saliency map is 24x12")
    _bad(root, [], "no rows")
