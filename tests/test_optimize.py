"""The pure core of the encoder loop: byte fitting, priority maps, refinement."""
import numpy as np
import pytest

from sspcodec.optimize import block_priority, fit_to_bytes, quality_map, refine_priority


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
