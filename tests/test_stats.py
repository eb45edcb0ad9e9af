"""Significance protocol: t-test for normal samples, Mann-Whitney U otherwise."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from sspnet.evaluate.stats import compare, is_normal, summary


def rng(seed=0):
    return np.random.default_rng(seed)


def test_normal_samples_use_welch_t_test():
    a = rng(1).normal(0.70, 0.05, 200)
    b = rng(2).normal(0.60, 0.10, 200)
    c = compare(a, b)
    assert c.normal_a and c.normal_b and c.test == "t-test"
    ref = st.ttest_ind(a, b, equal_var=False)
    assert c.p_value == pytest.approx(ref.pvalue) and c.statistic == pytest.approx(ref.statistic)
    assert c.significant and c.n_a == c.n_b == 200
    student = compare(a, b, equal_var=True)
    assert student.statistic == pytest.approx(st.ttest_ind(a, b).statistic)


@pytest.mark.parametrize("draw", [lambda r: r.exponential(1.0, 300), lambda r: r.standard_t(1, 300)])
def test_skewed_or_heavy_tailed_sample_uses_mann_whitney(draw):
    a = draw(rng(3))
    b = rng(4).normal(0.0, 1.0, 300)
    c = compare(a, b)
    assert not c.normal_a and c.normal_b
    assert c.test == "mann-whitney"
    ref = st.mannwhitneyu(a, b, alternative="two-sided")
    assert c.p_value == pytest.approx(ref.pvalue)


def test_identical_samples_not_significant():
    a = rng(5).normal(0.5, 0.1, 100)
    assert not compare(a, a.copy()).significant
    const = np.full(50, 0.3)
    c = compare(const, const)
    assert c.test == "mann-whitney" and not c.significant and math.isfinite(c.p_value)


def test_clearly_shifted_samples_significant():
    for draw in (lambda r, m: r.normal(m, 0.1, 100), lambda r, m: m + r.exponential(0.1, 100)):
        c = compare(draw(rng(6), 0.8), draw(rng(7), 0.5))
        assert c.significant and c.p_value < 1e-6


def test_small_or_bad_samples():
    assert not is_normal([1.0, 2.0])  # Shapiro-Wilk needs 3 values: rank test
    assert compare([1.0, 2.0], [3.0, 4.0]).test == "mann-whitney"
    with pytest.raises(ValueError):
        compare([1.0, float("nan"), 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        compare([], [1.0])


def test_summary():
    assert summary([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert summary([4.0]) == (4.0, 0.0)
    assert all(math.isnan(v) for v in summary([]))
