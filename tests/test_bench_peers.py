"""The strength curves' comparison of benchmarks/bench_peers.py (sspcodec.bench.tables.curve_gaps: the
figure issue 9's curve target is judged on)."""
from __future__ import annotations

import pytest

from sspcodec.bench.tables import curve_gaps


def _point(loss: float, gain: float) -> dict:
    return {"ssim2": -loss, "wpsnr_b": gain, "psnr": 0.0}


def test_curve_gap_interpolates_the_other_curve_at_the_same_loss():
    # two images; model mean points (1, 0.6) and (3, 1.2); centre mean points (2, 0.4) and (6, 0.8)
    curves = [
        {"model": {0: _point(0, 0), 0.5: _point(1.0, 0.5), 1: _point(2.0, 1.0)},
         "centre": {0: _point(0, 0), 0.5: _point(1.0, 0.3), 1: _point(5.0, 0.6)}},
        {"model": {0: _point(0, 0), 0.5: _point(1.0, 0.7), 1: _point(4.0, 1.4)},
         "centre": {0: _point(0, 0), 0.5: _point(3.0, 0.5), 1: _point(7.0, 1.0)}},
    ]
    rows = [line.split("|")[1:-1] for line in curve_gaps(curves, [0, 0.5, 1]).splitlines()[2:]]
    got = {float(r[0]): [float(x) for x in r[1:]] for r in rows}
    assert set(got) == {0.5, 1.0}  # strength 0 is the origin of both curves, not a point to compare
    assert got[0.5] == pytest.approx([1.0, 0.6, 0.2, 0.4])  # centre on the line from (0, 0) to (2, 0.4)
    assert got[1.0] == pytest.approx([3.0, 1.2, 0.5, 0.7], abs=1e-6)  # between (2, 0.4) and (6, 0.8)


def test_curve_gap_holds_the_other_curve_flat_beyond_its_last_point():
    curves = [{"model": {0: _point(0, 0), 1: _point(5.0, 1.0)}, "centre": {0: _point(0, 0), 1: _point(2.0, 0.3)}}]
    row = curve_gaps(curves, [0, 1]).splitlines()[2].split("|")[1:-1]
    assert [float(x) for x in row] == pytest.approx([1.0, 5.0, 1.0, 0.3, 0.7])
