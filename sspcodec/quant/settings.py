"""The RD pruning's knobs: defaults chosen on validation images, how one strength in [0, 1] sets
them (:func:`strength_schedule`), and :class:`PruneSettings`, their one checked home, so the
encoder's method and the benchmark codec cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

#: the pruned base's mean luma step / the plain fit's at strength 1. Chosen with floor and
#: chroma_gain on 12 validation images (never the benchmark's test images) at the jpegli q70 and
#: q85 budgets, among 0.75 / 0.70 / 0.65: 0.65 exceeded 5 SSIMULACRA2 points of global cost.
DEFAULT_STEP_RATIO = 0.70
#: the weight of blocks nobody looks at; 0.03 since the fifth model revision (distilled, smoother
#: maps): on the same validation grid it costs what 0.05 cost with the fourth revision's maps
#: (4.45 / 3.83 SSIMULACRA2 points at q70 / q85) for +0.05 dB more where people look.
DEFAULT_FLOOR = 0.03
#: the weight floor as strength approaches 0, and the strength from which the floor is ``floor``
#: and the refinement grows instead (:func:`strength_schedule`). Chosen on the same validation
#: images from a ratio x floor grid at the q70 and q85 budgets, driven by the model and by a
#: centre Gaussian (docs/BENCHMARKS.md, "The strength knob").
DEFAULT_LOW_FLOOR = 0.30
STRENGTH_KNEE = 0.5
#: below the knee, frequencies with row + col < this are never pruned either (one more
#: anti-diagonal than ``min_freq`` 3): on validation it kept +0.36 dB where people look at 1.22
#: SSIMULACRA2 points (q85, floor 0.3) where min_freq 3 cost 1.55 points for +0.54, and the centre
#: Gaussian gained nothing with it, so the model's lead held while the knob reached lower losses.
DEFAULT_LOW_MIN_FREQ = 4
#: a chroma coefficient's weight per luma block its block covers (4 with 4:2:0): its error is
#: spread over that many pixels, shrunk by the RGB conversion and the decoder's smooth upsampling.
#: 0.55 (x4 = 2.2) chosen on validation among x4 = 1 (the first version), 2.2, 4.4 and never pruning
#: chroma: +0.13-0.15 dB human-weighted PSNR at the same SSIMULACRA2 as 1.
DEFAULT_CHROMA_GAIN = 0.55
DEFAULT_MIN_FREQ = 3
#: how the RD rule measures the error of dropping a coefficient (:func:`~sspcodec.quant.rdprune.rd_scores`):
#: 0 in pixels (squared error, the rule until 2026-12-07), 2 in the quantisation table's
#: own steps. Chosen under the judges on validation images: see docs/BENCHMARKS.md.
DEFAULT_STEP_POWER = 2.0


def check_refinement(ratio: float, strength: float) -> None:
    """ValueError unless *ratio* is in (0, 1] and *strength* in [0, 1]."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")


class Schedule(NamedTuple):
    """Where a strength puts the pruning: base steps ``ratio ** exponent`` times the plain fit's,
    weight floor, and the lowest frequency (row + col) that may be pruned."""

    exponent: float
    floor: float
    min_freq: int


def strength_schedule(
    strength: float,
    floor: float = DEFAULT_FLOOR,
    low_floor: float = DEFAULT_LOW_FLOOR,
    min_freq: int = DEFAULT_MIN_FREQ,
    low_min_freq: int = DEFAULT_LOW_MIN_FREQ,
) -> Schedule:
    """The :class:`Schedule` at *strength*. Strength 0: exponent 0, nothing pruned. Below
    ``STRENGTH_KNEE`` the exponent is the knee's, the floor falls linearly from
    ``max(low_floor, floor)`` to *floor*, and frequencies below ``max(low_min_freq, min_freq)``
    are kept; from the knee on, the exponent is *strength* itself at *floor* and *min_freq*."""
    check_refinement(1.0, strength)
    for name, v in (("floor", floor), ("low_floor", low_floor)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    if strength == 0.0 or strength >= STRENGTH_KNEE:
        return Schedule(float(strength), floor, int(min_freq))
    start = max(low_floor, floor)
    return Schedule(STRENGTH_KNEE, start + (floor - start) * strength / STRENGTH_KNEE,
                    max(int(low_min_freq), int(min_freq)))


@dataclass(frozen=True)
class PruneSettings:
    """The pruning's knobs besides the image, its map and the budget, validated once: the keyword
    arguments of :func:`prune_to_budget` (:meth:`options`). One place for their defaults, so the
    encoder's method (:class:`sspcodec.methods.search.RdPruning`) and the benchmark codec
    (:class:`sspcodec.bench.encoders.PrunedCodec`) cannot drift apart."""

    strength: float = 1.0
    ratio: float = DEFAULT_STEP_RATIO
    floor: float = DEFAULT_FLOOR
    low_floor: float = DEFAULT_LOW_FLOOR
    min_freq: int = DEFAULT_MIN_FREQ
    low_min_freq: int = DEFAULT_LOW_MIN_FREQ
    chroma_gain: float = DEFAULT_CHROMA_GAIN
    step_power: float = DEFAULT_STEP_POWER

    def __post_init__(self) -> None:
        check_refinement(self.ratio, self.strength)
        strength_schedule(self.strength, self.floor, self.low_floor, self.min_freq, self.low_min_freq)
        if not 0.0 <= self.step_power <= 4.0:
            raise ValueError(f"step_power must be in [0, 4], got {self.step_power}")

    def options(self) -> dict[str, Any]:
        """These settings as keyword arguments of :func:`prune_to_budget`."""
        return asdict(self)


__all__ = [
    "DEFAULT_CHROMA_GAIN",
    "DEFAULT_FLOOR",
    "DEFAULT_LOW_FLOOR",
    "DEFAULT_LOW_MIN_FREQ",
    "DEFAULT_MIN_FREQ",
    "DEFAULT_STEP_POWER",
    "DEFAULT_STEP_RATIO",
    "STRENGTH_KNEE",
    "PruneSettings",
    "Schedule",
    "check_refinement",
    "strength_schedule",
]
