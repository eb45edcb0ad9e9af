"""Choosing the output blur of SSPNet's maps on collected validation maps, the way the shipped
model's blur was chosen; the prior and test-time-view studies both need the same choice."""

from __future__ import annotations

from sspnet.training import priorfit

#: The candidate Gaussian blurs of the output map (sigma in pixels of the fit resolution; 0: none).
BLURS = (0.0, 2.0, 4.0, 6.0, 8.0, 12.0)


def best_blur(c: priorfit.Collected, flip: bool) -> float:
    """The output blur of :data:`BLURS` maximising mean CC on `c` (*flip*: with flip averaging)."""
    return max(BLURS, key=lambda s: priorfit.score(c, priorfit.predict(c, s, None, flip))["cc"])


__all__ = ["BLURS", "best_blur"]
