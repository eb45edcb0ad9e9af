"""Does the predicted shift track visible quality across bytes? Rate control by a predicted-shift
bound (what ``--max-shift`` does) against rate control by quality, judged by ColorVideoVDP.

Each image is a curve of points (bytes, predicted shift, JOD) over a quality sweep. A rate
control picks, per image, the point it would write: a quality picks its own point; a shift bound
``t`` the fewest-bytes point whose shift is <= t; the judge itself (the oracle) the fewest-bytes
point whose JOD reaches a target. A control that tracks visible quality gives the same JOD on
every image: the spread (standard deviation) of JOD across images at a matched mean size says how
well it does. Pure functions on plain lists, so hand-made curves can test them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.stats import spearmanr


class Point(NamedTuple):
    """One encoding of one image: its quality setting, bpp, predicted shift and JOD."""

    quality: int
    bpp: float
    shift: float
    jod: float


def tracking(curve: Sequence[Point]) -> float:
    """Spearman rank correlation of predicted shift with JOD along one image's curve: -1 when the
    shift falls exactly as visible quality rises; nan for a constant curve."""
    shift = [p.shift for p in curve]
    jod = [p.jod for p in curve]
    if len(set(shift)) < 2 or len(set(jod)) < 2:
        return float("nan")
    return float(spearmanr(shift, jod).statistic)


def pick_by_shift(curve: Sequence[Point], bound: float) -> Point:
    """The fewest-bytes point whose predicted shift is at most *bound* (the largest one if none is)."""
    ok = [p for p in curve if p.shift <= bound]
    return min(ok, key=lambda p: p.bpp) if ok else max(curve, key=lambda p: p.bpp)


def pick_by_jod(curve: Sequence[Point], target: float) -> Point:
    """The fewest-bytes point whose JOD reaches *target* (the largest one if none does)."""
    ok = [p for p in curve if p.jod >= target]
    return min(ok, key=lambda p: p.bpp) if ok else max(curve, key=lambda p: p.bpp)


class Control(NamedTuple):
    """What one rate control setting gives over the images: mean bpp, mean and spread of JOD."""

    name: str
    bpp: float
    jod_mean: float
    jod_std: float


def summarise(name: str, picks: Sequence[Point]) -> Control:
    """Mean bpp, mean JOD and the JOD's standard deviation across images of *picks*."""
    jod = np.array([p.jod for p in picks])
    return Control(name, float(np.mean([p.bpp for p in picks])), float(jod.mean()), float(jod.std()))


def compare_controls(curves: Sequence[Sequence[Point]], qualities: Sequence[int]) -> list[tuple[Control, ...]]:
    """For each quality q in *qualities*: (quality control at q, shift control at the median over
    images of the shift at q, oracle control at the median JOD at q), so the three operate near
    the same sizes."""
    rows = []
    for q in qualities:
        at_q = [next(p for p in c if p.quality == q) for c in curves]
        bound = float(np.median([p.shift for p in at_q]))
        target = float(np.median([p.jod for p in at_q]))
        rows.append((summarise(f"quality {q}", at_q),
                     summarise(f"shift <= {bound:.5f}", [pick_by_shift(c, bound) for c in curves]),
                     summarise(f"JOD >= {target:.3f}", [pick_by_jod(c, target) for c in curves])))
    return rows


def control_table(rows: Sequence[tuple[Control, ...]]) -> str:
    """Markdown: per operating point, each control's mean bpp and JOD mean ± spread."""
    lines = ["| operating point | control | mean bpp | JOD mean | JOD spread (std) |", "|---|---|---:|---:|---:|"]
    for k, row in enumerate(rows):
        for label, c in zip(("by quality", "by predicted shift", "by ColorVideoVDP (oracle)"), row):
            lines.append(f"| {k + 1} ({row[0].name}) | {label}: {c.name} | {c.bpp:.3f} | {c.jod_mean:.3f} | "
                         f"{c.jod_std:.3f} |")
    return "\n".join(lines)


__all__ = [
    "Control",
    "Point",
    "compare_controls",
    "control_table",
    "pick_by_jod",
    "pick_by_shift",
    "summarise",
    "tracking",
]
