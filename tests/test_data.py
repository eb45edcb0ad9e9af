"""Reader of the OSIE/EyeCrowd .mat format, and the saliency-map cache."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from sspnet import maps
from sspnet.data import cache
from sspnet.data.fixations import DatasetError, EyeTrackingImage, Fixations, read_fixation_dataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATASETS = SHARED / "datasets"


def _subject(x, y, d) -> dict:
    return {
        "fix_x": np.array([x], dtype=float).reshape(1, -1),
        "fix_y": np.array([y], dtype=float).reshape(1, -1),
        "fix_duration": np.array([d], dtype=np.uint16).reshape(1, -1),
    }


def _cell(items: list) -> np.ndarray:
    cell = np.empty((len(items), 1), dtype=object)
    for i, v in enumerate(items):
        cell[i, 0] = v
    return cell


def write_dataset(root: Path, entries: dict[str, list[dict]], size=(40, 30), layout: str = "cell") -> Path:
    """A dataset folder like ../shared/datasets/<name>: stimuli/*.jpg + eye/fixations.mat.

    layout "cell" reproduces the real files (cell arrays of 1x1 structs);
    "struct" writes true MATLAB struct arrays, the form the format description implies.
    """
    (root / "stimuli").mkdir(parents=True)
    (root / "eye").mkdir()
    for name in entries:
        Image.new("RGB", size, (100, 120, 140)).save(root / "stimuli" / name)
    if layout == "cell":
        fix = _cell([{"img": name, "subjects": _cell(subs)} for name, subs in entries.items()])
    else:
        sub_dt = [("fix_x", object), ("fix_y", object), ("fix_duration", object)]
        fix = np.zeros((len(entries), 1), dtype=[("img", object), ("subjects", object)])
        for i, (name, subs) in enumerate(entries.items()):
            arr = np.zeros((len(subs), 1), dtype=sub_dt)
            for j, s in enumerate(subs):
                arr[j, 0] = (s["fix_x"], s["fix_y"], s["fix_duration"])
            fix[i, 0] = (name, arr)
    scipy.io.savemat(root / "eye" / "fixations.mat", {"fixations": fix})
    return root


TINY = {
    "b.jpg": [_subject([1, 40], [1, 30], [100, 200]), _subject([10.5], [20.25], [300])],
    "a.jpg": [_subject([2, 3, 4], [5, 6, 7], [10, 20, 30])],
}


@pytest.mark.parametrize("layout", ["cell", "struct"])
def test_reader_tiny_converts_to_zero_based_and_sorts(tmp_path: Path, layout: str) -> None:
    root = write_dataset(tmp_path / "tiny", TINY, layout=layout)
    items = read_fixation_dataset(root)
    assert [it.name for it in items] == ["a.jpg", "b.jpg"]
    a, b = items
    assert (a.width, a.height, a.shape, a.dataset) == (40, 30, (30, 40), "tiny")
    assert a.image_path == root / "stimuli" / "a.jpg"
    np.testing.assert_allclose(a.fixations.x, [1, 2, 3])
    np.testing.assert_allclose(a.fixations.y, [4, 5, 6])
    np.testing.assert_allclose(b.fixations.x, [0, 39, 9.5])  # corners: MATLAB 1 -> 0, 40 -> 39
    np.testing.assert_allclose(b.fixations.y, [0, 29, 19.25])
    np.testing.assert_array_equal(b.fixations.duration_ms, [100, 200, 300])
    np.testing.assert_array_equal(b.fixations.observer, [0, 0, 1])
    assert b.fixations.n_observers == 2 and len(b.fixations) == 3
    assert b.fixations.xy.shape == (3, 2)


def test_reader_single_subject_and_empty_subject(tmp_path: Path) -> None:
    entries = {"a.jpg": [_subject([], [], [])], "b.jpg": [_subject([3], [4], [50])]}
    items = read_fixation_dataset(write_dataset(tmp_path / "d", entries))
    assert len(items[0].fixations) == 0
    np.testing.assert_allclose(items[1].fixations.xy, [[2, 3]])


def test_reader_dataset_name_override(tmp_path: Path) -> None:
    items = read_fixation_dataset(write_dataset(tmp_path / "d", TINY), name="custom")
    assert {it.dataset for it in items} == {"custom"}


def _error(root: Path, *words: str, **kw) -> None:
    with pytest.raises(DatasetError) as info:
        read_fixation_dataset(root, **kw)
    msg = str(info.value)
    for w in words:
        assert w in msg, msg


def test_missing_folder_and_files(tmp_path: Path) -> None:
    _error(tmp_path / "nope", "nope", "not found")
    root = write_dataset(tmp_path / "d", TINY)
    (root / "eye" / "fixations.mat").unlink()
    _error(root, "fixations.mat", "not found")


def test_image_missing_names_the_file(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    (root / "stimuli" / "b.jpg").unlink()
    _error(root, "b.jpg", "missing")


def test_unreadable_image(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    (root / "stimuli" / "a.jpg").write_bytes(b"not an image")
    _error(root, "a.jpg", "not a readable image")


def test_not_a_mat_file(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    (root / "eye" / "fixations.mat").write_bytes(b"garbage" * 20)
    _error(root, "fixations.mat", "MATLAB")


def test_wrong_variable(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    scipy.io.savemat(root / "eye" / "fixations.mat", {"fix": np.zeros(3)})
    _error(root, "no variable 'fixations'", "fix")


def test_missing_field(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    bad = {"fix_x": np.array([[1.0]]), "fix_y": np.array([[1.0]])}  # no fix_duration
    scipy.io.savemat(root / "eye" / "fixations.mat", {"fixations": _cell([{"img": "a.jpg", "subjects": _cell([bad])}])})
    _error(root, "entry 0", "a.jpg", "subject 0", "fix_duration")


def test_missing_img_field(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    scipy.io.savemat(root / "eye" / "fixations.mat", {"fixations": _cell([{"name": "a.jpg", "subjects": _cell([])}])})
    _error(root, "entry 0", "'img'")


def test_length_mismatch(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    bad = {"fix_x": np.array([[1.0, 2.0]]), "fix_y": np.array([[1.0]]), "fix_duration": np.array([[5, 6]])}
    scipy.io.savemat(root / "eye" / "fixations.mat", {"fixations": _cell([{"img": "a.jpg", "subjects": _cell([bad])}])})
    _error(root, "a.jpg", "different lengths")


def test_duplicate_image(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    entry = {"img": "a.jpg", "subjects": _cell([_subject([1], [1], [1])])}
    scipy.io.savemat(root / "eye" / "fixations.mat", {"fixations": _cell([entry, entry])})
    _error(root, "a.jpg", "more than once")


def test_non_numeric_coordinates(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", TINY)
    bad = {"fix_x": "abc", "fix_y": np.array([[1.0]]), "fix_duration": np.array([[5]])}
    scipy.io.savemat(root / "eye" / "fixations.mat", {"fixations": _cell([{"img": "a.jpg", "subjects": _cell([bad])}])})
    _error(root, "a.jpg", "fix_x")


def test_outside_fixations_error_drop_clip(tmp_path: Path) -> None:
    entries = {"a.jpg": [_subject([5, 45], [5, 10], [1, 2])]}  # x=45 > width 40
    root = write_dataset(tmp_path / "d", entries)
    _error(root, "a.jpg", "outside", "40x30")
    (item,) = read_fixation_dataset(root, on_outside="drop")
    np.testing.assert_allclose(item.fixations.xy, [[4, 4]])
    (item,) = read_fixation_dataset(root, on_outside="clip")
    np.testing.assert_allclose(item.fixations.xy, [[4, 4], [39, 9]])


# ----------------------------------------------------------------------------- real data


@pytest.mark.shared
@pytest.mark.parametrize("name,count,size", [("osie", 700, (800, 600)), ("eyecrowd", 500, (1024, 768))])
def test_real_dataset(name: str, count: int, size: tuple[int, int]) -> None:
    root = DATASETS / name
    if not (root / "eye" / "fixations.mat").is_file():
        pytest.skip(f"real dataset not available at {root} (../shared is absent outside the dev machines)")
    t0 = time.perf_counter()
    items = read_fixation_dataset(root)
    elapsed = time.perf_counter() - t0
    print(f"\nread {name}: {len(items)} images in {elapsed:.2f} s")
    assert len(items) == count
    assert [it.name for it in items] == sorted(it.name for it in items)
    for it in items:
        assert (it.width, it.height) == size
        fx = it.fixations
        assert len(fx) > 0 and fx.n_observers >= 10
        assert np.all((fx.x >= 0) & (fx.x <= it.width - 1)), it.name
        assert np.all((fx.y >= 0) & (fx.y <= it.height - 1)), it.name
        assert np.all(fx.duration_ms > 0), it.name
    assert elapsed < 10


# ----------------------------------------------------------------------------- cache


def _item(tmp_path: Path) -> EyeTrackingImage:
    fx = Fixations(
        np.array([5.0, 30.0]), np.array([5.0, 20.0]), np.array([100.0, 200.0], np.float32), np.array([0, 1], np.int32)
    )
    return EyeTrackingImage("x.jpg", tmp_path / "data" / "stimuli" / "x.jpg", 40, 30, fx, "toy")


def test_cache_roundtrip_and_key(tmp_path: Path) -> None:
    item = _item(tmp_path)
    cdir = tmp_path / "cache"
    sm = cache.get_saliency_map(item, cdir)
    path = cache.saliency_cache_path(item, cdir)
    assert path.is_file() and path.suffix == ".png" and "toy" in str(path)
    ref = maps.saliency_map(item.fixations.xy, item.shape)
    assert sm.dtype == np.float32 and sm.shape == (30, 40)
    np.testing.assert_allclose(sm, ref, atol=1 / 65535)
    again = cache.get_saliency_map(item, cdir)
    np.testing.assert_array_equal(sm, again)  # read back == freshly computed (both quantised)
    assert cache.saliency_cache_path(item, cdir, sigma=3.0) != path
    moved = Fixations(item.fixations.x + 1, item.fixations.y, item.fixations.duration_ms, item.fixations.observer)
    other = EyeTrackingImage(item.name, item.image_path, 40, 30, moved, "toy")
    assert cache.saliency_cache_path(other, cdir) != path


def test_cache_env_default_and_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSPNET_CACHE", str(tmp_path / "envcache"))
    assert cache.default_cache_dir() == tmp_path / "envcache"
    item = _item(tmp_path)
    path = cache.saliency_cache_path(item)
    assert tmp_path / "envcache" in path.parents
    path.parent.mkdir(parents=True)
    path.write_bytes(b"broken")
    sm = cache.get_saliency_map(item)
    assert sm.max() == pytest.approx(1.0)
    assert cache.decode_map_png(path.read_bytes()).shape == (30, 40)


def test_cache_refuses_data_folder(tmp_path: Path) -> None:
    item = _item(tmp_path)
    with pytest.raises(ValueError, match="beside the data"):
        cache.get_saliency_map(item, tmp_path / "data" / "cache")


def test_precompute(tmp_path: Path) -> None:
    items = [_item(tmp_path)]
    assert cache.precompute_saliency_maps(items, tmp_path / "c", progress=False) == 1
    assert cache.precompute_saliency_maps(items, tmp_path / "c", progress=False) == 0
