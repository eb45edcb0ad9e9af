"""Rate control by predicted shift against rate control by quality (sspcodec.bench.ratecontrol), on
hand-made curves."""
from __future__ import annotations

import math

import pytest

from sspcodec.bench.ratecontrol import Point, compare_controls, control_table, pick_by_jod, pick_by_shift, tracking


def _curve(offset: float, shift_gain: float = 1.0) -> list[Point]:
    """An image whose JOD rises with quality (harder images: lower `offset`) and whose predicted
    shift falls `shift_gain` times as fast as the JOD's distance to 10."""
    out = []
    for q in (30, 50, 70, 90):
        jod = 6.0 + offset + q / 25
        out.append(Point(q, q / 40, shift_gain * (10.0 - jod) / 100, jod))
    return out


def test_tracking_is_minus_one_when_shift_falls_as_jod_rises():
    assert tracking(_curve(0.0)) == pytest.approx(-1.0)
    assert tracking([p._replace(shift=-p.shift) for p in _curve(0.0)]) == pytest.approx(1.0)
    assert math.isnan(tracking([p._replace(shift=0.0) for p in _curve(0.0)]))


def test_picks_take_the_fewest_bytes_that_meet_the_bound():
    c = _curve(0.0)  # shifts 0.028, 0.020, 0.012, 0.004; JODs 7.2, 8.0, 8.8, 9.6
    assert pick_by_shift(c, 0.015).quality == 70
    assert pick_by_shift(c, 0.0).quality == 90  # none meets it: the largest
    assert pick_by_jod(c, 7.9).quality == 50
    assert pick_by_jod(c, 11.0).quality == 90


def test_a_shift_that_tracks_jod_evens_out_visible_quality_across_images():
    curves = [_curve(-0.8), _curve(0.0), _curve(0.8)]  # one quality gives three different JODs
    by_quality, by_shift, oracle = compare_controls(curves, [50, 70])[0]
    assert by_quality.jod_std > 0.6
    assert by_shift.jod_std < by_quality.jod_std and oracle.jod_std < by_quality.jod_std
    blind = [[p._replace(shift=0.01 * p.quality) for p in c] for c in curves]  # shift ignores the image
    assert compare_controls(blind, [50])[0][1].jod_std == pytest.approx(by_quality.jod_std)
    assert "by predicted shift" in control_table(compare_controls(curves, [50]))
