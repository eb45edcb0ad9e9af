"""The rd method's shift guard (issue 24, item 3): where the output's predicted SSM rises above the
plain JPEG's, those blocks get their quality back at the same budget; if the shift stays above,
the plain JPEG is written. Driven by a fake scorer (no model), so every branch is reachable."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from sspcodec.methods import PlainJpeg, RdPruning
from sspcodec.methods.base import GuardNote
from sspcodec.methods.rd import PSNR_FALLBACK, SHIFT_FALLBACK
from sspcodec.quant.settings import PruneSettings
from sspcodec.result import guard_words
from sspcodec.scoring import Score

H, W = 96, 128


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([xx * 2.0, yy * 2.5, (xx + yy) % 40 * 6.0], -1) + rng.normal(0, 20, (H, W, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _hot_left(level: float) -> np.ndarray:
    """An SSM at a model-like resolution, raised on the left third only."""
    m = np.zeros((48, 64), np.float32)
    m[:, :20] = level
    return m


class Scorer:
    """`ssm(call)` gives the SSM map of each output scored after the plain JPEG (call 0)."""

    def __init__(self, ssm: Callable[[int], np.ndarray], wpsnr: Callable[[bytes], float] = lambda d: 40.0):
        self.ssm, self.wpsnr, self.calls = ssm, wpsnr, []

    def __call__(self, datas: Sequence[bytes]) -> list[Score]:
        call = len(self.calls)
        self.calls.append(list(datas))
        plain = np.full((48, 64), 0.01, np.float32)
        return [Score(plain if call == 0 else self.ssm(call), 35.0) for _ in datas]

    def weighted_psnr(self, data: bytes) -> float:
        return self.wpsnr(data)


def _run(method: RdPruning, scorer: Scorer):
    rgb = _photo()
    weights = np.zeros((H, W), np.float32)
    weights[:, W // 2 :] = 1.0  # quality matters on the right; the fake SSM rises on the left
    plain = PlainJpeg(70, method.plain(rgb, 70))
    found = method.run(rgb, weights, len(plain.data), plain, scorer)
    return found, method.guard(found, scorer), plain


def test_guard_gives_quality_back_where_the_shift_rose_then_keeps_the_output():
    scorer = Scorer(lambda call: _hot_left(0.5) if call == 1 else np.zeros((48, 64), np.float32))
    found, out, plain = _run(RdPruning(), scorer)
    assert found.best.shift > found.plain.shift  # the first pruning pulled the eye (fake)
    assert out.guard == GuardNote(1, "") and out.guard.acted
    assert out.best.data not in (found.best.data, plain.data) and len(out.best.data) <= len(plain.data)
    left = W // 8 // 3  # luma blocks under the fake SSM's hot third
    raised = out.block_weights[:, :left] - found.block_weights[:, :left]
    assert raised.min() > 0.5 and np.allclose(out.block_weights[:, -4:], found.block_weights[:, -4:])
    assert len(scorer.calls) == 3  # plain, first output, the one retry


def test_guard_falls_back_to_the_plain_jpeg_when_the_shift_stays_above():
    scorer = Scorer(lambda call: _hot_left(0.5))
    _, out, plain = _run(RdPruning(guard_rounds=2), scorer)
    assert out.best.data == plain.data == out.plain.data
    assert out.guard == GuardNote(2, SHIFT_FALLBACK)
    assert "2 rounds" in guard_words(out.guard) and "wrote the plain JPEG" in guard_words(out.guard)


def test_guard_leaves_an_output_whose_shift_is_not_above_the_plain_ones():
    scorer = Scorer(lambda call: np.zeros((48, 64), np.float32))
    found, out, _ = _run(RdPruning(), scorer)
    assert out.best.data == found.best.data and not out.guard.acted and len(scorer.calls) == 2


def test_guard_off_keeps_the_first_output():
    scorer = Scorer(lambda call: _hot_left(0.5))
    found, out, _ = _run(RdPruning(shift_guard=False), scorer)
    assert out.best.data == found.best.data and out.guard == GuardNote()


def test_psnr_guard_still_falls_back_after_the_shift_guard():
    plain_bytes = {}
    scorer = Scorer(lambda call: np.zeros((48, 64), np.float32),
                    wpsnr=lambda d: 40.0 if d == plain_bytes["d"] else 39.0)
    rgb = _photo()
    method = RdPruning(settings=PruneSettings(1.0))
    plain = PlainJpeg(70, method.plain(rgb, 70))
    plain_bytes["d"] = plain.data
    out = method.guard(method.run(rgb, np.ones((H, W), np.float32), len(plain.data), plain, scorer), scorer)
    assert out.best.data == plain.data and out.guard == GuardNote(0, PSNR_FALLBACK)


@pytest.mark.parametrize("note,words", [
    (GuardNote(), ""),
    (GuardNote(1), "gave quality back where the output's predicted SSM rose above the plain JPEG's (1 round)"),
    (GuardNote(0, PSNR_FALLBACK), f"wrote the plain JPEG: {PSNR_FALLBACK}"),
])
def test_guard_words(note, words):
    assert guard_words(note) == words
    assert note.acted == bool(words)


def test_summary_reports_the_guard():
    from sspcodec.result import CompressResult, Figures

    z = np.zeros((4, 4), np.float32)
    r = CompressResult(data=b"", width=4, height=4, bytes=0, bpp=0.0, predicted_shift=0.0, predicted_wpsnr=40.0,
                       quality_map=z, baseline=Figures(0, 0.0, 0.0, 85), target="t", model_evaluations=1,
                       seconds=0.0, saliency_lowres=z, ssm_lowres=z, baseline_ssm_lowres=z,
                       guard=GuardNote(2, SHIFT_FALLBACK))
    assert json.loads(json.dumps(r.summary()))["guard"] == {"acted": True, "rounds": 2, "fallback": SHIFT_FALLBACK}
