"""Significance of a difference between two models' per-image scores (paper V-E, Table VII).

The paper's protocol: test each sample for normality; if both are normal use an independent
samples t-test, otherwise the Mann-Whitney U test (its non-parametric analogue). Here:

- normality: Shapiro-Wilk at the same `alpha` (normal iff p >= alpha). Fewer than 3 values or a
  constant sample cannot be tested and count as not normal, which routes to the rank test, the
  one that makes no distributional assumption.
- t-test: Welch's (unequal variances) by default. The paper only says "independent samples
  t-test"; Welch equals Student's when variances agree and stays valid when they do not (two
  models rarely have equal score spreads). `equal_var=True` gives Student's.
- Mann-Whitney U: two-sided, scipy's default method (exact for small samples without ties,
  asymptotic with tie correction otherwise).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _st

__all__ = ["Comparison", "compare", "is_normal", "summary"]

MIN_SHAPIRO_N: int = 3


@dataclass(frozen=True)
class Comparison:
    """Outcome of `compare`; `test` is "t-test" or "mann-whitney"."""

    test: str
    statistic: float
    p_value: float
    normal_a: bool
    normal_b: bool
    significant: bool
    alpha: float = 0.05
    n_a: int = 0
    n_b: int = 0
    mean_a: float = math.nan
    mean_b: float = math.nan

    def to_dict(self) -> dict:
        return asdict(self)


def _sample(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(a).all():
        # Metrics in sspnet.metrics are always finite; a NaN means a bug upstream, and dropping
        # it silently would bias the comparison.
        raise ValueError(f"{name} contains non-finite values")
    return a


def is_normal(values: Sequence[float] | np.ndarray, alpha: float = 0.05) -> bool:
    """Shapiro-Wilk: True when normality is not rejected at `alpha` (see module docstring)."""
    a = _sample(values, "values")
    if a.size < MIN_SHAPIRO_N or float(a.max()) == float(a.min()):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about p-value accuracy for N > 5000
        p = float(_st.shapiro(a).pvalue)
    return bool(np.isfinite(p) and p >= alpha)


def compare(
    scores_a: Sequence[float] | np.ndarray,
    scores_b: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    equal_var: bool = False,
) -> Comparison:
    """Two-sided test of a difference between two independent samples (the paper's protocol).

    A non-finite p-value (degenerate input, e.g. no spread at all) is reported as p = 1, so a
    comparison that cannot be decided is never called significant.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    a, b = _sample(scores_a, "scores_a"), _sample(scores_b, "scores_b")
    normal_a, normal_b = is_normal(a, alpha), is_normal(b, alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if normal_a and normal_b:
            name = "t-test"
            res = _st.ttest_ind(a, b, equal_var=equal_var)
        else:
            name = "mann-whitney"
            res = _st.mannwhitneyu(a, b, alternative="two-sided")
    stat, p = float(res.statistic), float(res.pvalue)
    if not np.isfinite(p):
        p = 1.0
    return Comparison(
        test=name,
        statistic=stat,
        p_value=p,
        normal_a=normal_a,
        normal_b=normal_b,
        significant=bool(p < alpha),
        alpha=alpha,
        n_a=int(a.size),
        n_b=int(b.size),
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
    )


def summary(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mean, sample std with ddof=1) as tables report; std 0 for one value, NaNs for none."""
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        return math.nan, math.nan
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return float(a.mean()), std
