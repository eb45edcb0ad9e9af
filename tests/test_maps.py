"""sspnet.maps: eq. 1 and eq. 2 ground truth, fixation maps."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sspnet.maps import default_sigma, fixation_map, saliency_map, shift_map


def direct_eq1(fix: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Eq. 1 as written: a double loop over pixels, summing over fixations."""
    h, w = shape
    out = np.zeros(shape)
    for y in range(h):
        for x in range(w):
            out[y, x] = sum(math.exp(-((fx - x) ** 2 + (fy - y) ** 2) / sigma**2) for fx, fy in fix)
    return out / out.max()


def test_eq1_matches_direct_loop() -> None:
    rng = np.random.default_rng(0)
    shape = (13, 17)
    fix = rng.random((9, 2)) * [17, 13] - 0.5
    fix[0] = [3.0, 4.0]
    fix[1] = [3.0, 4.0]  # repeated fixations add up
    got = saliency_map(fix, shape, sigma=2.5)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_allclose(got, direct_eq1(fix, shape, 2.5), atol=1e-6)
    assert got.max() == pytest.approx(1.0)


def test_sigma_squared_convention() -> None:
    """At distance sigma from a lone fixation the map is exp(-1) of its peak (not exp(-1/2))."""
    sm = saliency_map(np.array([[20.0, 10.0]]), (21, 41), sigma=5.0)
    assert sm[10, 20] == pytest.approx(1.0)
    assert sm[10, 25] == pytest.approx(math.exp(-1), rel=1e-6)
    assert sm[15, 20] == pytest.approx(math.exp(-1), rel=1e-6)
    assert sm[13, 24] == pytest.approx(math.exp(-1), rel=1e-6)  # 3-4-5 triangle


def test_default_sigma() -> None:
    assert default_sigma(1920) == pytest.approx(45.0)
    assert default_sigma(800) == pytest.approx(18.75)
    assert default_sigma(1024) == pytest.approx(24.0)
    fix = np.array([[50.0, 30.0]])
    np.testing.assert_array_equal(saliency_map(fix, (60, 100)), saliency_map(fix, (60, 100), sigma=100 * 45 / 1920))


def test_no_fixations_and_out_of_bounds() -> None:
    empty = saliency_map(np.zeros((0, 2)), (8, 10))
    assert empty.shape == (8, 10) and not empty.any()
    assert not saliency_map([], (8, 10)).any()
    outside = np.array([[-0.51, 3.0], [9.5, 3.0], [4.0, 7.5], [4.0, -1.0], [np.nan, 2.0]])
    assert not saliency_map(outside, (8, 10), sigma=3.0).any()
    inside = np.array([[5.0, 4.0]])
    np.testing.assert_array_equal(
        saliency_map(np.vstack([outside, inside]), (8, 10), sigma=3.0), saliency_map(inside, (8, 10), sigma=3.0)
    )
    with pytest.raises(ValueError):
        saliency_map(np.zeros((3, 3)), (8, 10))
    with pytest.raises(ValueError):
        saliency_map(inside, (8, 10), sigma=0.0)


def test_full_hd_thousand_fixations_runs() -> None:
    """The paper's resolution and a realistic fixation count (speed is benchmarked elsewhere)."""
    rng = np.random.default_rng(1)
    fix = rng.random((1000, 2)) * [1920, 1080]
    sm = saliency_map(fix, (1080, 1920))
    assert sm.shape == (1080, 1920) and sm.dtype == np.float32
    assert sm.max() == pytest.approx(1.0) and sm.min() >= 0.0


def test_many_fixations_chunked_equals_single_product() -> None:
    rng = np.random.default_rng(2)
    fix = rng.random((3000, 2)) * [39, 29]  # all inside, more than one chunk
    sm = saliency_map(fix, (30, 40), sigma=3.0)
    ex = np.exp(-((fix[:, :1] - np.arange(40)) ** 2) / 9.0)
    ey = np.exp(-((fix[:, 1:] - np.arange(30)) ** 2) / 9.0)
    ref = ey.T @ ex
    np.testing.assert_allclose(sm, ref / ref.max(), atol=1e-6)


def test_shift_map() -> None:
    rng = np.random.default_rng(3)
    d = saliency_map(rng.random((20, 2)) * 30, (30, 30), sigma=4.0)
    r = saliency_map(rng.random((20, 2)) * 30, (30, 30), sigma=4.0)
    ssm = shift_map(d, r)
    assert ssm.dtype == np.float32 and ssm.shape == d.shape
    assert ssm.min() >= 0.0 and ssm.max() <= 1.0
    np.testing.assert_array_equal(ssm, np.where(d > r, d - r, 0.0).astype(np.float32))
    assert not shift_map(d, d).any()  # no distortion, no shift
    assert not shift_map(np.zeros_like(d), d).any()
    np.testing.assert_array_equal(shift_map(d, np.zeros_like(d)), d)
    assert shift_map(d.astype(np.float64), r).dtype == np.float64
    with pytest.raises(ValueError):
        shift_map(d, r[:-1])


def test_shift_map_normalize_numpy_and_torch_agree() -> None:
    """One eq. 2 for both array kinds: normalize scales each map to its own peak first."""
    import torch  # a hard dependency; maps.py itself only uses it when handed tensors
    rng = np.random.default_rng(5)
    d = 0.6 * saliency_map(rng.random((15, 2)) * 30, (30, 30), sigma=4.0)  # peaks 0.6 and 0.3:
    r = 0.3 * saliency_map(rng.random((15, 2)) * 30, (30, 30), sigma=4.0)  # raw and scaled differ
    scaled = np.maximum(d / d.max() - r / r.max(), 0)
    np.testing.assert_allclose(shift_map(d, r, normalize=True), scaled, rtol=0, atol=1e-6)
    assert np.abs(shift_map(d, r) - scaled).max() > 0.1
    for normalize in (False, True):
        t = shift_map(torch.from_numpy(d), torch.from_numpy(r), normalize=normalize)
        assert torch.is_tensor(t) and t.dtype == torch.float32
        np.testing.assert_allclose(t.numpy(), shift_map(d, r, normalize=normalize), rtol=0, atol=1e-6)
    # a batch of distorted maps against one pristine map, each scaled by its own peak
    batch = np.stack([d, 2 * d])[:, None]
    out = shift_map(torch.from_numpy(batch), torch.from_numpy(r)[None, None], normalize=True)
    assert out.shape == (2, 1, 30, 30)
    np.testing.assert_allclose(out[0, 0].numpy(), out[1, 0].numpy(), rtol=0, atol=1e-6)
    assert not shift_map(np.zeros_like(d), r, normalize=True).any()  # an empty map stays empty


def test_fixation_map_rounding_and_bounds() -> None:
    fix = np.array(
        [
            [0.0, 0.0],  # (row 0, col 0)
            [2.49, 1.5],  # round half up: row 2, col 2
            [3.5, 0.4],  # col 4 is outside a width of 4
            [-0.5, 2.6],  # col 0 (still nearest to pixel 0), row 3
            [-0.51, 1.0],  # outside
            [1.0, 3.5],  # row 4 is outside a height of 4
            [np.nan, 1.0],  # dropped
            [0.2, 0.3],  # duplicate of the first pixel
        ]
    )
    fm = fixation_map(fix, (4, 4))
    assert fm.dtype == bool and fm.shape == (4, 4)
    expected = np.zeros((4, 4), dtype=bool)
    expected[0, 0] = expected[2, 2] = expected[3, 0] = True
    np.testing.assert_array_equal(fm, expected)
    assert not fixation_map(np.zeros((0, 2)), (4, 4)).any()


def test_fixation_map_and_saliency_map_drop_the_same_fixations() -> None:
    rng = np.random.default_rng(4)
    fix = rng.random((200, 2)) * [14, 12] - 1.0
    col, row = np.floor(fix[:, 0] + 0.5), np.floor(fix[:, 1] + 0.5)
    kept = (col >= 0) & (col <= 11) & (row >= 0) & (row <= 9)
    assert 0 < kept.sum() < len(fix)
    np.testing.assert_array_equal(saliency_map(fix, (10, 12), sigma=2.0), saliency_map(fix[kept], (10, 12), sigma=2.0))
    np.testing.assert_array_equal(fixation_map(fix, (10, 12)), fixation_map(fix[kept], (10, 12)))
    assert not saliency_map(fix[~kept], (10, 12), sigma=2.0).any()
    assert not fixation_map(fix[~kept], (10, 12)).any()
