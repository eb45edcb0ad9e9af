"""Saliency-weighted RD pruning (sspcodec.quant.rdprune): the rule, the fits, and the JPEGs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sspcodec.backends import get_backend, read_dct
from sspcodec.quant.rdprune import (
    base_dct,
    encode_pruned,
    finer_quality,
    fit_lambda,
    fit_quality,
    frequency_mask,
    plain_encoder,
    prune,
    prune_to_budget,
    quant_step,
    rd_scores,
)
from sspcodec.quant.settings import (
    DEFAULT_CHROMA_GAIN,
    PruneSettings,
    check_refinement,
    strength_schedule,
)
from sspcodec.quant.weights import (
    block_weights,
    plane_weights,
)

try:
    import pyjpegli  # noqa: F401

    HAVE_JPEGLI = True
except ImportError:
    HAVE_JPEGLI = False

needs_jpegli = pytest.mark.skipif(not HAVE_JPEGLI, reason="pyjpegli not installed (pip install pyjpegli==0.3.2)")
ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo with a size that is not a multiple of 16 (MCU padding blocks exist)."""
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))[100:303, 80:341].copy()


def _left_half(shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.float32)
    m[:, : shape[1] // 2] = 1.0
    return m


# -- pure pieces ----------------------------------------------------------------------------

def test_finer_quality_is_the_first_quality_with_the_ratio_of_steps():
    def step(q):  # IJG-like: halves from q50 to q75
        return 200.0 - 2.0 * q

    assert finer_quality(step, 50, 0.5, 1.0) == 75  # step 100 -> 50
    assert finer_quality(step, 50, 0.5, 0.0) == 50  # exponent 0: the plain quality itself
    assert finer_quality(step, 50, 1.0, 1.0) == 50
    assert finer_quality(step, 50, 0.25, 0.5) == 75  # 0.25 ** 0.5 = 0.5
    assert finer_quality(step, 70, 0.9, 1.0) == 73  # 60 -> <= 54
    assert finer_quality(step, 95, 0.1, 1.0) == 100  # nothing fine enough: the finest
    for bad in ((0.7, 1.5), (0.7, -0.1), (0.0, 1.0), (1.2, 1.0)):
        with pytest.raises(ValueError):
            check_refinement(*bad)


def test_strength_schedule_lowers_the_floor_then_refines():
    assert strength_schedule(0.0, 0.05, 0.3) == (0.0, 0.05, 3)  # nothing pruned
    assert strength_schedule(0.25, 0.05, 0.3) == pytest.approx((0.5, 0.175, 4))  # halfway down the floor
    assert strength_schedule(0.5, 0.05, 0.3) == (0.5, 0.05, 3)  # the knee: floor reached, min_freq back
    assert strength_schedule(0.75, 0.05, 0.3) == (0.75, 0.05, 3)  # then the refinement grows
    assert strength_schedule(1.0, 0.05, 0.3) == (1.0, 0.05, 3)
    assert strength_schedule(1e-9, 0.05, 0.3) == pytest.approx((0.5, 0.3, 4))  # the path starts at low_floor
    assert strength_schedule(0.25, 0.5, 0.3) == (0.5, 0.5, 4)  # a floor above low_floor stays put
    assert strength_schedule(0.25, min_freq=6, low_min_freq=4).min_freq == 6  # never prunes lower than asked
    floors = [strength_schedule(s).floor for s in np.linspace(0.01, 1.0, 50)]
    assert np.all(np.diff(floors) <= 0)  # weights only sharpen with strength
    for bad in ((0.5, 1.5, 0.3), (0.5, 0.05, -0.1), (1.1, 0.05, 0.3)):
        with pytest.raises(ValueError):
            strength_schedule(*bad)


def test_prune_settings_are_checked_once_and_passed_whole():
    assert PruneSettings().options() == {
        "strength": 1.0, "ratio": 0.70, "floor": 0.03, "low_floor": 0.30, "min_freq": 3, "low_min_freq": 4,
        "chroma_gain": DEFAULT_CHROMA_GAIN, "step_power": 2.0,
    }
    for bad in ({"strength": 1.5}, {"ratio": 0.0}, {"floor": -0.1}, {"low_floor": 2.0}, {"step_power": -1.0}):
        with pytest.raises(ValueError):
            PruneSettings(**bad)


@needs_jpegli
def test_quant_step_reads_the_base_tables():
    steps = [quant_step("jpegli", q) for q in (30, 50, 70, 85, 95)]
    assert steps == sorted(steps, reverse=True) and len(set(steps)) == len(steps)  # finer with quality
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))[:64, :96]
    for q in (70, 85):  # a real image's table at q is the tiny grey probe's
        assert read_dct(get_backend("jpegli").encode(photo, q)).planes[0].qt.mean() == pytest.approx(
            quant_step("jpegli", q))
    assert quant_step("turbo", 75) / quant_step("turbo", 50) == pytest.approx(0.5, rel=0.02)  # IJG scaling


@needs_jpegli
def test_chroma_weights_count_the_luma_blocks_they_cover():
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))[:64, :96]
    dct = base_dct(photo, 85)
    assert dct.chroma_factor == (2, 2)
    luma = np.ones(dct.luma_grid)
    luma[:, : luma.shape[1] // 2] = 0.5
    w = plane_weights(dct, luma)
    assert np.allclose(w[0], luma)
    for c in w[1:]:  # each chroma block covers 2x2 luma blocks of one half
        assert np.allclose(c[:, : c.shape[1] // 2], 0.5 * 4 * DEFAULT_CHROMA_GAIN)
        assert np.allclose(c[:, c.shape[1] // 2 :], 4 * DEFAULT_CHROMA_GAIN)
    assert np.allclose(plane_weights(dct, luma, chroma_gain=0.25)[1], w[1] / (4 * DEFAULT_CHROMA_GAIN))


def test_block_weights_floor_peak_and_padding():
    prio = np.zeros((20, 36), np.float32)
    prio[:8, :8] = 3.0  # one hot block; scaled to max 1
    w = block_weights(prio, (20, 36), (4, 6), floor=0.1)  # grid wider than ceil(20/8) x ceil(36/8)
    assert w.shape == (4, 6)
    assert w[0, 0] == pytest.approx(1.0)
    assert w[1:, 1:].min() == pytest.approx(0.1)
    assert np.allclose(block_weights(np.full((20, 36), 0.3), (20, 36), (3, 5), 0.1), 1.0)  # constant: uniform
    half = block_weights(np.ones((10, 18)), (20, 36), (3, 5), 0.5)  # other resolutions are resampled
    assert np.allclose(half, 1.0)


def test_raise_with_only_raises_block_weights():
    prio = np.zeros((16, 32), np.float32)
    prio[:8, :8] = 1.0
    ssm = np.zeros((16, 32), np.float32)
    ssm[8:, 24:] = 2.0  # where the plain encoding would pull attention
    ssm[:8, :8] = 0.5
    base = block_weights(prio, (16, 32), (2, 4), 0.1)
    w = block_weights(prio, (16, 32), (2, 4), 0.1, raise_with=ssm)
    assert np.all(w >= base) and w[1, 3] == pytest.approx(1.0) and w[0, 0] == pytest.approx(1.0)
    assert w[0, 1] == pytest.approx(0.1)  # neither salient nor shifting: the floor
    half = block_weights(prio, (16, 32), (2, 4), 0.1, raise_with=ssm, raise_mix=0.5)
    assert half[1, 3] == pytest.approx(0.1 + 0.9 * 0.5)
    assert np.array_equal(block_weights(prio, (16, 32), (2, 4), 0.1, raise_with=np.zeros_like(ssm)), base)


def test_frequency_mask_never_dc():
    m = frequency_mask(3)
    assert not m[0, 0] and not m[1, 1] and not m[0, 2] and m[1, 2] and m[7, 7]
    assert m.sum() == 64 - 6
    assert not frequency_mask(0)[0, 0]


@pytest.mark.parametrize("power", [0.0, 1.0, 2.0])
def test_zeroing_rule_matches_formula(power):
    rng = np.random.default_rng(0)
    coeffs = rng.integers(-20, 21, size=(3, 4, 8, 8)).astype(np.int16)
    qt = rng.integers(2, 40, size=(8, 8))
    weights = rng.uniform(0.05, 1.0, size=(3, 4))
    lam = 50.0
    out = prune(coeffs, rd_scores(coeffs, qt, weights, 3, power), lam)
    c = coeffs.astype(np.float64)
    bits = 4 + np.array([[[[int(abs(v)).bit_length() for v in row] for row in blk] for blk in line] for line in c])
    error = (c * qt) ** 2 * (qt.min() / qt) ** power  # in pixels (0) or in the table's steps (2)
    want_zero = (weights[:, :, None, None] * error < lam * bits) & frequency_mask(3)
    assert np.array_equal(out, np.where(want_zero, 0, coeffs))
    assert np.array_equal(out[..., 0, 0], coeffs[..., 0, 0])


def test_higher_weight_keeps_more_coefficients():
    rng = np.random.default_rng(1)
    block = rng.integers(-12, 13, size=(8, 8)).astype(np.int16)
    coeffs = np.stack([np.stack([block] * 4)] * 2)  # (2, 4, 8, 8): the same block eight times
    qt = np.full((8, 8), 10)
    weights = np.array([[0.05, 0.2, 0.5, 1.0], [0.05, 0.2, 0.5, 1.0]])
    kept = (prune(coeffs, rd_scores(coeffs, qt, weights, 3), 200.0) != 0).sum(axis=(2, 3))[0]
    assert np.all(np.diff(kept) >= 0) and kept[-1] > kept[0]


def test_fit_lambda_lands_within_tolerance_below_budget():
    def write(lam: float) -> bytes:  # size falls smoothly with log(lambda)
        return b"x" * int(10000 / (1.0 + np.log1p(lam)))

    fit = fit_lambda(write, 4000, tol=0.01)
    assert fit is not None and 0.99 * 4000 <= len(fit.data) <= 4000
    assert fit_lambda(write, 20000).lam == 0.0  # nothing pruned already fits
    assert fit_lambda(lambda lam: b"x" * 5000, 4000) is None  # nothing fits


def test_fit_quality_is_largest_fitting_and_looks_past_non_monotonic_sizes():
    sizes = {q: 100 * q for q in range(1, 101)}
    sizes[51] = 6000  # a bump: bisection stops below it at 50, yet 52 fits
    sizes[52] = 5150
    fit = fit_quality(lambda q: b"x" * sizes[q], 5290)
    assert fit is not None and fit[0] == 52 and len(fit[1]) == 5150
    assert fit_quality(lambda q: b"x" * 1000, 999) is None


# -- end to end on a photo --------------------------------------------------------------------

@needs_jpegli
def test_fits_budget_within_one_percent(photo):
    budget = len(plain_encoder(photo)(85))
    data = encode_pruned(photo, _left_half(photo.shape[:2]), budget)
    assert 0.99 * budget <= len(data) <= budget
    Image.open(io.BytesIO(data)).load()  # a valid JPEG


@needs_jpegli
def test_dc_and_low_frequencies_untouched_only_zeros_added(photo):
    budget = len(plain_encoder(photo)(80))
    r = prune_to_budget(photo, _left_half(photo.shape[:2]), budget)
    assert r.base_quality > r.plain_quality and r.lam > 0
    base = read_dct(get_backend("jpegli").encode(photo, r.base_quality))
    out = read_dct(r.data)
    low = ~frequency_mask(3)
    for p, q in zip(base.planes, out.planes):
        assert np.array_equal(p.qt, q.qt)
        assert np.array_equal(p.coeffs[..., low], q.coeffs[..., low])  # DC and row+col < 3
        changed = p.coeffs != q.coeffs
        assert changed.any() or p.name != "Y"
        assert np.all(q.coeffs[changed] == 0)  # pruning only zeroes


@needs_jpegli
def test_deterministic(photo):
    prio = _left_half(photo.shape[:2])
    budget = len(plain_encoder(photo)(75))
    assert encode_pruned(photo, prio, budget) == encode_pruned(photo, prio, budget)


@needs_jpegli
def test_strength_zero_is_the_plain_base_at_equal_bytes(photo):
    from sspcodec.bench.encoders import JpegliCodec

    plain_at = plain_encoder(photo)
    budget = (len(plain_at(80)) + len(plain_at(81))) // 2  # between two qualities
    pruned = encode_pruned(photo, _left_half(photo.shape[:2]), budget, strength=0.0)
    assert pruned == JpegliCodec().encode_to_bytes(photo, budget).data == plain_at(80)


@needs_jpegli
def test_salient_half_keeps_more_coefficients(photo):
    prio = _left_half(photo.shape[:2])
    r = prune_to_budget(photo, prio, len(plain_encoder(photo)(85)))
    base = read_dct(get_backend("jpegli").encode(photo, r.base_quality)).planes[0].coeffs
    out = read_dct(r.data).planes[0].coeffs
    half = photo.shape[1] // 16  # luma block columns of the left half
    kept = [(out[:, s] != 0).sum() / max((base[:, s] != 0).sum(), 1) for s in (np.s_[:half], np.s_[half + 1:])]
    assert kept[0] > kept[1] + 0.05


@needs_jpegli
def test_strength_scales_the_reallocation(photo):
    prio = _left_half(photo.shape[:2])
    budget = len(plain_encoder(photo)(85))
    weak, strong = (prune_to_budget(photo, prio, budget, ratio=0.7, strength=s) for s in (0.5, 1.0))
    assert weak.plain_quality == strong.plain_quality < weak.base_quality < strong.base_quality
    for r, s in ((weak, 0.5), (strong, 1.0)):  # the first quality whose steps are 0.7 ** s as large
        target = 0.7**s * quant_step("jpegli", r.plain_quality)
        assert quant_step("jpegli", r.base_quality) <= target < quant_step("jpegli", r.base_quality - 1)
    assert weak.lam < strong.lam  # a coarser base needs less pruning to fit
    # below the knee the base stays that of 0.5 and the floor rises: the lowest weight is higher
    gentle = prune_to_budget(photo, prio, budget, ratio=0.7, strength=0.25, low_floor=0.3, low_min_freq=4)
    assert gentle.base_quality == weak.base_quality
    assert weak.weights.min() == pytest.approx(0.03) and gentle.weights.min() == pytest.approx(0.165)  # floor 0.03
    # ... and row + col = 3 survives below the knee: those coefficients equal the finer base's
    base = base_dct(photo, gentle.base_quality, "jpegli").planes[0].coeffs
    out = read_dct(gentle.data).planes[0].coeffs
    diag3 = np.add.outer(np.arange(8), np.arange(8)) == 3
    assert np.array_equal(out[..., diag3], base[..., diag3])
    assert not np.array_equal(read_dct(weak.data).planes[0].coeffs[..., diag3], base[..., diag3])
    with pytest.raises(ValueError):
        prune_to_budget(photo, prio, budget, floor=1.5)


@needs_jpegli
def test_budget_too_small_raises(photo):
    with pytest.raises(ValueError, match="too small"):
        encode_pruned(photo, _left_half(photo.shape[:2]), 200)


@needs_jpegli
def test_grey_pixels_give_one_component_jpegs(photo):
    grey = photo[..., 1].copy()
    plain = plain_encoder(grey)(85)
    data = encode_pruned(grey, _left_half(grey.shape), len(plain))
    from sspcodec.backends.markers import component_ids

    for jpeg in (plain, data):
        with Image.open(io.BytesIO(jpeg)) as im:
            assert im.mode == "L" and im.size == (grey.shape[1], grey.shape[0])
        assert component_ids(jpeg) == [1]
    assert 0.99 * len(plain) <= len(data) <= len(plain)
    three = get_backend("jpegli").encode(grey, 85)  # pyjpegli writes three components, chroma all zero
    with Image.open(io.BytesIO(three)) as a, Image.open(io.BytesIO(plain)) as b:
        assert np.array_equal(np.asarray(a.convert("L")), np.asarray(b))  # dropping it is lossless


@needs_jpegli
def test_a_given_plain_fit_is_used_as_is(photo):
    prio = _left_half(photo.shape[:2])
    budget = len(plain_encoder(photo)(85))
    fresh = prune_to_budget(photo, prio, budget)
    given = prune_to_budget(photo, prio, budget, plain=(fresh.plain_quality, plain_encoder(photo)(fresh.plain_quality)))
    assert given == fresh
