"""sspnet.metrics against an independent transcription of the MIT MATLAB code."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import mit_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sspnet import metrics
from sspnet.maps import fixation_map, saliency_map

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OSIE = SHARED / "datasets" / "osie"
TOL = 1e-6
SHAPE = (24, 32)


def random_maps(seed: int, shape: tuple[int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A non-negative prediction, a correlated gt map, and a binary fixation map."""
    rng = np.random.default_rng(seed)
    gt = rng.random(shape) ** 3
    pred = np.clip(gt + 0.3 * rng.standard_normal(shape), 0, None) * rng.uniform(0.1, 10)
    fix = rng.random(shape) < 0.05
    fix[rng.integers(shape[0]), rng.integers(shape[1])] = True
    return pred, gt, fix


def gaussian_maps(seed: int, shape: tuple[int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real-like maps: eq. 1 maps of two fixation sets around shared hot spots."""
    rng = np.random.default_rng(seed)
    h, w = shape
    centres = rng.random((3, 2)) * [w, h]

    def draw(n: int) -> np.ndarray:
        return centres[rng.integers(3, size=n)] + rng.standard_normal((n, 2)) * 3

    pts_gt, pts_pred = draw(40), draw(40)
    gt = saliency_map(pts_gt, shape, sigma=3.0)
    pred = saliency_map(pts_pred, shape, sigma=4.0)
    return pred, gt, fixation_map(pts_gt, shape)


MAKERS = [random_maps, gaussian_maps]


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("seed", range(5))
def test_distribution_metrics_match_mit(make, seed: int) -> None:
    pred, gt, _ = make(seed)
    assert metrics.cc(pred, gt) == pytest.approx(ref.CC(pred, gt), abs=TOL)
    assert metrics.sim(pred, gt) == pytest.approx(ref.similarity(pred, gt), abs=TOL)
    assert metrics.kld(pred, gt) == pytest.approx(ref.KLdiv(pred, gt), abs=TOL)


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("seed", range(5))
def test_location_metrics_match_mit(make, seed: int) -> None:
    pred, _, fix = make(seed)
    assert metrics.nss(pred, fix) == pytest.approx(ref.NSS(pred, fix), abs=TOL)
    assert metrics.auc_judd(pred, fix, jitter=False) == pytest.approx(ref.AUC_Judd(pred, fix, jitter=False), abs=TOL)
    noise = np.random.default_rng(seed).random(pred.shape)
    assert metrics.auc_judd(pred, fix, jitter=True, seed=seed) == pytest.approx(
        ref.AUC_Judd(pred, fix, jitter=True, rand_matrix=noise), abs=TOL
    )


def test_auc_judd_with_ties_matches_mit() -> None:
    """Quantised maps have many ties: the MIT threshold rule must be reproduced exactly."""
    rng = np.random.default_rng(7)
    pred = np.floor(rng.random(SHAPE) * 4)
    fix = rng.random(SHAPE) < 0.1
    assert metrics.auc_judd(pred, fix, jitter=False) == pytest.approx(ref.AUC_Judd(pred, fix, jitter=False), abs=TOL)


def test_resizes_prediction_to_ground_truth() -> None:
    pred, gt, fix = gaussian_maps(3, (48, 64))
    small = cv2.resize(pred.astype(np.float64), (32, 24), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (64, 48), interpolation=cv2.INTER_LINEAR)
    for name, fn in metrics.METRICS.items():
        target = fix if name in metrics.LOCATION_METRICS else gt
        assert fn(small, target) == pytest.approx(fn(big, target), abs=1e-12), name


def test_float32_and_float64_agree() -> None:
    pred, gt, fix = random_maps(11)
    for name, fn in metrics.METRICS.items():
        target = fix if name in metrics.LOCATION_METRICS else gt
        p32 = pred.astype(np.float32)
        assert fn(p32, target) == pytest.approx(fn(p32.astype(np.float64), target), abs=1e-12), name


def test_identical_maps() -> None:
    _, gt, _ = gaussian_maps(1)
    assert metrics.cc(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert metrics.sim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert metrics.kld(gt, gt) == pytest.approx(0.0, abs=1e-12)


def test_good_prediction_beats_random() -> None:
    _pred, gt, fix = gaussian_maps(2, (48, 64))
    noise = np.random.default_rng(0).random(gt.shape)
    scores = {name: fn(gt, fix if name in metrics.LOCATION_METRICS else gt) for name, fn in metrics.METRICS.items()}
    rand = {name: fn(noise, fix if name in metrics.LOCATION_METRICS else gt) for name, fn in metrics.METRICS.items()}
    for name, higher in metrics.HIGHER_IS_BETTER.items():
        assert (scores[name] > rand[name]) == higher, name
    assert rand["auc_judd"] == pytest.approx(0.5, abs=0.15)


# --- degenerate maps: documented finite conventions -------------------------------------

ZERO = np.zeros(SHAPE)
CONST = np.full(SHAPE, 0.7)


def test_degenerate_distribution_metrics() -> None:
    _, gt, _ = gaussian_maps(4)
    n = gt.size
    assert metrics.cc(ZERO, ZERO) == 0.0
    assert metrics.cc(gt, ZERO) == 0.0
    assert metrics.cc(CONST, gt) == 0.0
    assert metrics.sim(ZERO, ZERO) == pytest.approx(1.0)
    assert metrics.sim(CONST, ZERO) == pytest.approx(1.0)
    assert metrics.kld(ZERO, ZERO) == pytest.approx(0.0, abs=1e-12)
    assert metrics.kld(CONST, ZERO) == pytest.approx(0.0, abs=1e-12)
    # constant map == uniform distribution
    uniform = np.full(SHAPE, 1.0 / n)
    g = (gt - gt.min()) / (gt.max() - gt.min())
    assert metrics.sim(gt, ZERO) == pytest.approx(np.minimum(g / g.sum(), uniform).sum())
    assert metrics.kld(ZERO, gt) == pytest.approx(metrics.kld(CONST, gt))
    expected = np.sum(uniform * np.log(metrics.EPS + uniform / (metrics.EPS + gt / gt.sum())))
    assert metrics.kld(gt, ZERO) == pytest.approx(expected)
    for fn in (metrics.cc, metrics.sim, metrics.kld):
        for a, b in [(ZERO, ZERO), (ZERO, gt), (gt, ZERO), (CONST, ZERO), (ZERO, CONST)]:
            assert math.isfinite(fn(a, b))


def test_degenerate_location_metrics() -> None:
    pred, _, fix = gaussian_maps(5)
    none = np.zeros(SHAPE, dtype=bool)
    assert metrics.nss(pred, none) == 0.0
    assert metrics.nss(ZERO, fix) == 0.0
    assert metrics.nss(CONST, fix) == 0.0
    assert metrics.auc_judd(pred, none) == 0.5
    assert metrics.auc_judd(ZERO, fix) == 0.5
    assert metrics.auc_judd(CONST, fix) == 0.5
    assert metrics.auc_judd(pred, np.ones(SHAPE, dtype=bool)) == 0.5


def test_auc_jitter_is_deterministic() -> None:
    pred, _, fix = random_maps(6)
    pred = np.round(pred, 1)
    assert metrics.auc_judd(pred, fix, seed=3) == metrics.auc_judd(pred, fix, seed=3)


def test_rejects_batches() -> None:
    with pytest.raises(ValueError):
        metrics.cc(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))


# --- real eye-tracking data --------------------------------------------------------------


def _field(struct: np.ndarray, key: str) -> np.ndarray:
    """Unwrap loadmat's nested 1x1 object arrays down to the numeric/str payload."""
    v = struct[key]
    while isinstance(v, np.ndarray) and v.dtype == object:
        v = v.ravel()[0]
    return np.ravel(v)


def _osie_fixations(index: int) -> tuple[str, list[np.ndarray]]:
    """Image name and per-observer 0-based (x, y) fixations of OSIE entry ``index``."""
    from scipy.io import loadmat

    entry = loadmat(OSIE / "eye" / "fixations.mat")["fixations"][index, 0]
    subjects = entry["subjects"][0, 0]
    per_subject = []
    for j in range(subjects.shape[0]):
        s = subjects[j, 0]
        xy = np.stack([_field(s, "fix_x"), _field(s, "fix_y")], axis=1).astype(np.float64) - 1.0  # MATLAB 1-based
        per_subject.append(xy)
    return str(_field(entry, "img")[0]), per_subject


@pytest.mark.shared
@pytest.mark.skipif(
    not (OSIE / "eye" / "fixations.mat").exists(), reason=f"OSIE data not found at {OSIE} (../shared absent)"
)
def test_real_osie_fixations_match_mit() -> None:
    """Split the observers of one OSIE image in two halves; score one half's map against the other."""
    name, subjects = _osie_fixations(0)
    assert name.endswith(".jpg")
    scale = 0.25  # 800x600 -> 200x150 keeps the loop-style reference fast
    shape = (150, 200)
    half = len(subjects) // 2
    a = np.concatenate(subjects[:half]) * scale
    b = np.concatenate(subjects[half:]) * scale
    sigma = 45 / 1920 * 200
    pred = saliency_map(a, shape, sigma=sigma)
    gt = saliency_map(b, shape, sigma=sigma)
    fix = fixation_map(b, shape)
    assert fix.sum() > 10
    assert metrics.cc(pred, gt) == pytest.approx(ref.CC(pred, gt), abs=TOL)
    assert metrics.sim(pred, gt) == pytest.approx(ref.similarity(pred, gt), abs=TOL)
    assert metrics.kld(pred, gt) == pytest.approx(ref.KLdiv(pred, gt), abs=TOL)
    assert metrics.nss(pred, fix) == pytest.approx(ref.NSS(pred, fix), abs=TOL)
    noise = np.random.default_rng(0).random(shape)
    assert metrics.auc_judd(pred, fix) == pytest.approx(ref.AUC_Judd(pred, fix, rand_matrix=noise), abs=TOL)
    # inter-observer agreement on a real image is well above chance
    assert metrics.cc(pred, gt) > 0.3
    assert metrics.auc_judd(pred, fix) > 0.7


# --- property: finite, in range, for any non-negative map ------------------------------

_maps = arrays(np.float64, (6, 5), elements=st.sampled_from([0.0, 0.0, 1e-12, 0.25, 1.0, 3.0]))


@settings(max_examples=60, deadline=None)
@given(pred=_maps, gt=_maps)
def test_all_metrics_finite_and_in_range(pred: np.ndarray, gt: np.ndarray) -> None:
    fix = gt > 0.5
    c, s, k = metrics.cc(pred, gt), metrics.sim(pred, gt), metrics.kld(pred, gt)
    n, a = metrics.nss(pred, fix), metrics.auc_judd(pred, fix)
    assert all(math.isfinite(v) for v in (c, s, k, n, a))
    assert -1.0 <= c <= 1.0 and 0.0 <= s <= 1.0 + 1e-12 and k >= -1e-12 and 0.0 <= a <= 1.0
