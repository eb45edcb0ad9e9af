"""The search (sspcodec.methods.search): byte fitting, priority maps, allocation strategies, refinement,
and CandidateSearch's choice among candidates, driven by a fake scorer (no model)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from sspcodec.allocation import (
    CentreBiasAllocation,
    GivenMapAllocation,
    PlainAllocation,
    SaliencyAllocation,
    block_priority,
    pixel_priority,
)
from sspcodec.backends import get_backend
from sspcodec.methods import PlainJpeg
from sspcodec.methods.search import (
    DEFAULT_FAMILIES,
    CandidateSearch,
    fit_to_bytes,
    quality_map,
    refine_priority,
)
from sspcodec.scoring import Score


def _codec(k: float = 1000.0, wobble: float = 0.0):
    """A fake encoder whose size grows with q, and an estimate off by a drifting factor."""
    calls = []

    def encode(q: float) -> bytes:
        calls.append(q)
        return b"x" * int(k * q + 30 * q**0.5)

    def estimate(q: float) -> float:
        return (k * q + 30 * q**0.5) / (1.3 + wobble * q / 100)

    return encode, estimate, calls


@pytest.mark.parametrize("use_estimate", [False, True])
@pytest.mark.parametrize("target", [25_000, 61_234, 99_000])
def test_fit_lands_within_tolerance_below_the_target(use_estimate, target):
    encode, estimate, calls = _codec(wobble=0.2)
    _q, data, ratio = fit_to_bytes(encode, target, 5.0, 100.0, estimate if use_estimate else None)
    assert target * 0.99 <= len(data) <= target
    assert ratio > 0
    if use_estimate:
        assert len(calls) <= 4  # the estimate does the searching, real writes only confirm


def test_fit_reuses_a_calibrated_ratio_and_reports_infeasible_budgets():
    encode, estimate, calls = _codec()
    _, _, ratio = fit_to_bytes(encode, 50_000, 5.0, 100.0, estimate)
    calls.clear()
    fit_to_bytes(encode, 52_000, 5.0, 100.0, estimate, ratio=ratio)
    assert len(calls) == 1
    assert fit_to_bytes(encode, 1_000, 5.0, 100.0, estimate) is None
    assert fit_to_bytes(encode, 1_000, 5.0, 100.0) is None


def test_priority_and_quality_maps():
    m = np.zeros((64, 96), np.float32)
    m[20:30, 40:50] = 1
    w = block_priority(m, (8, 12))
    assert w.shape == (8, 12) and w.max() == 1 and w.min() == 0
    assert w[3, 5] == 1 and w[0, 0] == 0
    q = quality_map(w, 90, 40, 1.0)
    assert q.max() == 90 and q.min() == 40
    assert np.all(block_priority(np.ones_like(m), (8, 12)) == 0)  # flat map: no preference


def test_refinement_only_raises_priority():
    w = np.array([[1.0, 0.2], [0.0, 0.5]])
    shift = np.array([[0.0, 1.0], [0.4, 0.0]])
    r = refine_priority(w, shift)
    assert np.all(r >= w)
    assert r[0, 0] == 1.0 and r[0, 1] == 0.5 and r[1, 0] == pytest.approx(0.2)
    assert np.array_equal(refine_priority(w, np.zeros_like(w)), w)


# ---------------- allocation strategies ----------------
def test_allocations_say_where_quality_matters():
    rgb = np.zeros((64, 96, 3), np.uint8)
    saliency = np.zeros((64, 96), np.float32)
    saliency[:, 80:] = 1
    given = np.zeros((32, 48), np.float32)
    given[:8, :8] = 1
    np.testing.assert_array_equal(SaliencyAllocation().where(rgb, saliency), saliency)
    centre = CentreBiasAllocation().where(rgb, saliency)
    assert centre.shape == (64, 96) and centre[32, 48] == centre.max() > centre[0, 0]
    mine = GivenMapAllocation(given).where(rgb, saliency)
    assert mine is not saliency and np.array_equal(mine, given)  # the given map, not the saliency, decides
    assert PlainAllocation().where(rgb, saliency) is None


def test_block_priority_dilates_by_blocks_and_pixel_priority_by_pixels():
    """One meaning each: `blocks` is the luma block grid and the spread is in blocks; the pixel
    form (the RD pruning's input) spreads by pixels."""
    m = np.zeros((64, 96), np.float32)
    m[32:40, 48:56] = 1  # one hot 8x8 block: block (4, 6)
    blocks = block_priority(m, (8, 12))
    assert blocks.shape == (8, 12)
    assert (blocks[3:6, 5:8] == 1).all() and blocks.sum() == 9  # its 3x3 block neighbourhood
    pixels = pixel_priority(m, (64, 96))
    assert pixels.shape == (64, 96)
    assert (pixels[31:41, 47:57] == 1).all() and pixels.sum() == 100  # grown by one pixel: 10x10
    assert block_priority(np.zeros((64, 96)), (8, 12)).max() == 0  # a flat map: no priority, no NaN


# ---------------- the candidate search ----------------
def _image(h: int = 64, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 32 * 8], -1) + rng.normal(0, 15, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


class FakeScorer:
    """Shift by rule instead of by model: `shift(call, index, data)` -> mean SSM; PSNR fixed
    for the plain JPEG (first of the first call) and `psnr` for every other encoding."""

    def __init__(self, shift, psnr: float = 40.0):
        self.shift, self.psnr, self.calls = shift, psnr, []

    def __call__(self, datas: Sequence[bytes]) -> list[Score]:
        call = len(self.calls)
        self.calls.append(list(datas))
        return [
            Score(np.full((64, 96), self.shift(call, i, d), np.float32), 40.0 if call == i == 0 else self.psnr)
            for i, d in enumerate(datas)
        ]


def _plain(rgb: np.ndarray, q: int = 70) -> PlainJpeg:
    return PlainJpeg(q, get_backend("turbo").encode(rgb, q))


def _left_priority() -> np.ndarray:
    w = np.zeros((8, 12), np.float32)
    w[:, :6] = 1
    return w


def test_candidates_fit_the_budget_and_the_least_shift_wins():
    rgb, plain = _image(), _plain(_image())
    target = len(plain.data)
    scorer = FakeScorer(lambda call, i, d: 0.0 if (call, i) == (0, 3) else 0.5)
    out = CandidateSearch(get_backend("turbo"), refine_steps=0).run(rgb, _left_priority(), target, plain, scorer)
    first = scorer.calls[0]
    assert first[0] == plain.data and len(first) == 1 + len(DEFAULT_FAMILIES)
    assert all(0.95 * target <= len(d) <= target for d in first[1:])  # equal bytes: only the model ranks
    assert out.best.data == first[3] and out.best.family == DEFAULT_FAMILIES[2]
    q = out.best.quality_map
    assert q[:, :6].mean() > q[:, 6:].mean()  # the priority map shaped the allocation
    assert out.plain.data == plain.data and out.plain_quality == 70


def test_plain_jpeg_wins_unless_a_candidate_is_predicted_better():
    rgb, plain = _image(), _plain(_image())
    scorer = FakeScorer(lambda call, i, d: 0.1 if i == 0 else 0.2)
    out = CandidateSearch(get_backend("turbo")).run(rgb, _left_priority(), len(plain.data), plain, scorer)
    assert out.best.family is None and out.best.data == plain.data
    assert len(scorer.calls) == 1  # nothing to refine
    np.testing.assert_array_equal(out.best.quality_map, 70.0)


def test_psnr_guard_keeps_candidates_that_lose_too_much_fidelity_out():
    rgb, plain = _image(), _plain(_image())
    better_but_blurry = lambda: FakeScorer(lambda call, i, d: 0.5 if i == 0 else 0.1, psnr=38.0)  # noqa: E731
    backend = get_backend("turbo")
    guarded = CandidateSearch(backend, max_psnr_drop=1.5).run(
        rgb, _left_priority(), len(plain.data), plain, better_but_blurry())
    assert guarded.best.family is None
    unguarded = CandidateSearch(backend, max_psnr_drop=None, refine_steps=0).run(
        rgb, _left_priority(), len(plain.data), plain, better_but_blurry())
    assert unguarded.best.family is not None


@pytest.mark.parametrize("refined_shift,accepted", [(0.05, True), (0.3, False)])
def test_refinement_is_kept_only_when_predicted_better(refined_shift, accepted):
    rgb, plain = _image(), _plain(_image())
    scorer = FakeScorer(lambda call, i, d: refined_shift if call == 1 else (0.5 if i == 0 else 0.2))
    out = CandidateSearch(get_backend("turbo"), refine_steps=1).run(
        rgb, _left_priority(), len(plain.data), plain, scorer)
    assert len(scorer.calls) == 2 and len(scorer.calls[1]) == 1
    assert (out.best.data == scorer.calls[1][0]) == accepted
    assert out.best.shift == pytest.approx(refined_shift if accepted else 0.2)
    assert len(out.best.data) <= len(plain.data)


def test_no_priority_means_the_plain_jpeg():
    rgb, plain = _image(), _plain(_image())
    scorer = FakeScorer(lambda call, i, d: 0.3)
    out = CandidateSearch(get_backend("turbo")).run(rgb, None, len(plain.data), plain, scorer)
    assert scorer.calls == [[plain.data]]
    assert out.best.data == plain.data and out.best.family is None
