"""Saliency-weighted rate-distortion pruning of a finer base JPEG, fitted to a byte budget.

Where the block-quality search (:mod:`sspcodec.methods.search`) lets fixed IJG threshold tables decide
which coefficients die, this module lets a rate-distortion rule decide, weighted by where people
look. Encode the image with the base encoder (jpegli by default) at a finer quality than the
plain encoding that fits the budget (its mean luma quantiser step ``ratio`` times the plain one's);
read its quantised DCT; in every 8x8 block b give the block a weight
``w_b = floor + (1 - floor) * s_b`` (s_b: the block mean of the priority map scaled to max 1;
chroma blocks average the luma blocks they cover, times ``chroma_gain`` per luma block they
cover: see :func:`plane_weights`), and zero an AC coefficient c of step Q iff

    w_b * (c * Q)**2  <  lambda * (4 + bitlen(|c|))      and      row + col >= min_freq,

i.e. when the weighted squared error of dropping it is below lambda times a rough count of the
bits it costs (4 for its run/size code, bitlen for its amplitude). The DC coefficient and the
lowest frequencies are never touched, which keeps the global structure (and SSIMULACRA2) of
the base. lambda is log-bisected so that the real file, written with optimised Huffman tables,
lands within ``tol`` below the budget (equal scores get a fixed 2% pseudo-random tie-break, so
the size does not jump when lambda crosses many identical scores). The output is one standard
JPEG: baseline, or its lossless progressive re-coding where that is smaller
(:mod:`sspcodec.backends.progressive`; then lambda is refitted once to spend the bytes it freed).
The plain reference is made the same way, so the two compare like for like.

``strength`` in [0, 1] moves along the most efficient path found on validation images (gain where
people look per SSIMULACRA2 point of global loss; :func:`strength_schedule`): strength 0 is exactly
the plain base encoding that fits the budget; up to ``STRENGTH_KNEE`` (0.5) the base is refined by
``ratio ** 0.5``, frequencies with row + col < ``low_min_freq`` (4) are kept, and the weight floor
falls from ``low_floor`` (0.30: detail kept a little everywhere) to ``floor`` (0.03: kept where
people look); above it the floor stays, ``min_freq`` is 3, and the base's steps shrink to
``ratio ** strength`` times the plain fit's (the first quality at or below that).
Any pruning costs at least about 1.2 SSIMULACRA2 points (validation), so a small refinement with a
low floor (the first schedule, ``ratio ** strength`` at floor 0.05) bought less where people look
at low strengths than a larger refinement protected by a higher floor and more low frequencies.
A ratio of steps, not a number of qualities, because one quality point is a much smaller step
change at q70 than at q85 (jpegli: q70 -> q74 is 0.88x, q85 -> q89 0.76x): a fixed +4
reallocated half as much at q70.

A second map may raise the weights (``raise_with``: s_b = max(s_b, mix * r_b)); the encoder passes
the predicted SSM of the plain JPEG, so blocks where plain coding would pull attention are kept
too. Grey pixels give a 1-component JPEG whatever the base writes (:func:`base_dct`).
Everything but :func:`encode_pruned` / :func:`prune_to_budget` is a pure function
on arrays or callables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..backends import as_encoder_input, get_backend
from ..backends.dct import DctJpeg, read_dct
from ..backends.progressive import smallest_form
from .settings import (
    DEFAULT_CHROMA_GAIN,
    DEFAULT_FLOOR,
    DEFAULT_LOW_FLOOR,
    DEFAULT_LOW_MIN_FREQ,
    DEFAULT_MIN_FREQ,
    DEFAULT_STEP_POWER,
    DEFAULT_STEP_RATIO,
    check_refinement,
    strength_schedule,
)
from .weights import block_weights, plane_weights

DEFAULT_BASE = "jpegli"
DEFAULT_TOLERANCE = 0.01
#: lambda's bisection range (weighted squared error per bit); below LAMBDA_LO nothing with a
#: weight >= 0.05 is zeroed, above LAMBDA_HI everything eligible of amplitude < ~4000 is.
LAMBDA_LO, LAMBDA_HI = 1e-3, 1e7
MAX_WRITES = 40
#: relative spread of the tie-breaking factor on RD scores (:func:`break_ties`).
TIE_SPREAD = 0.02


@dataclass(frozen=True)
class LambdaFit:
    """The largest write found that fits the budget: bytes, its lambda, real writes spent."""

    data: bytes
    lam: float
    writes: int


@dataclass(frozen=True)
class PrunedJpeg:
    """What :func:`prune_to_budget` made: the JPEG and how (for reports and tests).

    ``plain_quality`` is the quality of the plain base JPEG that fits the budget,
    ``base_quality`` the finer quality that was pruned (equal at strength 0, where ``lam`` is 0
    and ``data`` is that plain JPEG).
    """

    data: bytes
    plain_quality: int
    base_quality: int
    lam: float
    writes: int
    weights: np.ndarray | None = field(default=None, repr=False, compare=False)  # luma block weights, if pruned


@lru_cache(maxsize=1024)
def quant_step(base: str, quality: int) -> float:
    """Mean luma quantiser step of the *base* encoder's table at *quality*. The tables of
    jpegli, libjpeg-turbo and mozjpeg depend on the quality alone, so a tiny grey image reads it."""
    return float(base_dct(np.full((8, 8, 3), 128, np.uint8), int(quality), base).planes[0].qt.mean())


def finer_quality(
    step_of: Callable[[int], float], plain_quality: int, ratio: float, exponent: float, top: int = 100
) -> int:
    """The lowest quality above *plain_quality* whose mean step is at most ``ratio ** exponent``
    times the plain one's (*top* if none is); *plain_quality* itself at exponent 0 or ratio 1
    (the exponent at a strength: :func:`strength_schedule`)."""
    check_refinement(ratio, exponent)
    if exponent == 0.0 or ratio == 1.0:
        return int(plain_quality)
    target = step_of(plain_quality) * ratio**exponent
    for q in range(int(plain_quality) + 1, top + 1):
        if step_of(q) <= target * (1.0 + 1e-6):
            return q
    return max(int(plain_quality), top)


def frequency_mask(min_freq: int) -> np.ndarray:
    """(8, 8) bool: the AC positions eligible for pruning (row + col >= min_freq; never DC)."""
    rc = np.add.outer(np.arange(8), np.arange(8))
    mask = rc >= max(int(min_freq), 1)
    mask[0, 0] = False
    return mask


def rd_scores(
    coeffs: np.ndarray, qt: np.ndarray, weights: np.ndarray, min_freq: int, step_power: float = 0.0
) -> np.ndarray:
    """Per coefficient, the lambda below which it survives:
    ``w_b * (c*Q)**2 * (Q_min / Q)**step_power / (4 + bitlen|c|)``.

    ``step_power`` 0 measures the error of dropping c in pixels (squared error); 2 measures it in
    the table's own steps (``c**2``, times the finest step so lambda keeps its scale). A
    quantisation table is its encoder's model of visibility (steps grow where the eye is less
    sensitive), so in steps the error is closer to what a viewer sees: at equal bytes and equal
    gain where people look, it cost a third less ColorVideoVDP than 0 on validation images
    (:data:`~sspcodec.quant.settings.DEFAULT_STEP_POWER`). A coefficient is zeroed at lambda iff
    its score is < lambda. Zero, DC and low-frequency coefficients score +inf (never zeroed).
    *coeffs* is (bh, bw, 8, 8), *qt* (8, 8), *weights* (bh, bw). float32 (bh, bw, 8, 8).
    """
    c = np.abs(np.asarray(coeffs).astype(np.float32))
    q = np.asarray(qt, np.float32)
    bits = 4.0 + np.ceil(np.log2(c + 1.0))  # bitlen(|c|) = JPEG's amplitude category
    dist = (c * q) ** 2
    if step_power:
        dist = dist * (q.min() / q) ** np.float32(step_power)
    score = np.asarray(weights, np.float32)[:, :, None, None] * dist / bits
    eligible = frequency_mask(min_freq)[None, None] & (c > 0)
    return np.where(eligible, score, np.float32(np.inf)).astype(np.float32)


def prune(coeffs: np.ndarray, scores: np.ndarray, lam: float) -> np.ndarray:
    """The coefficients with every one whose score is below *lam* set to zero (int16)."""
    return np.where(scores < lam, 0, coeffs).astype(np.int16)


def fit_lambda(
    write: Callable[[float], bytes],
    target_bytes: int,
    *,
    tol: float = DEFAULT_TOLERANCE,
    lo: float = LAMBDA_LO,
    hi: float = LAMBDA_HI,
    max_writes: int = MAX_WRITES,
    try_zero: bool = True,
) -> LambdaFit | None:
    """Log-bisect lambda until ``write(lambda)`` is within *tol* below *target_bytes*.

    Size falls (nearly) monotonically with lambda. Returns the largest fitting write seen: at
    once if ``write(0)`` (nothing pruned; not tried with ``try_zero=False``) fits, else after the
    bisection stops at the tolerance
    after *max_writes* writes or when the bracket has collapsed onto a jump in size; None if no
    lambda up to *hi* fits.
    """
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    writes = 0
    if try_zero:
        data = write(0.0)
        writes = 1
        if len(data) <= target_bytes:
            return LambdaFit(data, 0.0, writes)
    best: LambdaFit | None = None
    while writes < max_writes and hi / lo > 1.0001:
        mid = math.sqrt(lo * hi)
        data = write(mid)
        writes += 1
        if len(data) <= target_bytes:
            if best is None or len(data) > len(best.data):
                best = LambdaFit(data, mid, writes)
            if len(data) >= (1.0 - tol) * target_bytes:
                break
            hi = mid
        else:
            lo = mid
    return None if best is None else LambdaFit(best.data, best.lam, writes)


def fit_quality(
    encode_at: Callable[[int], bytes], max_bytes: int, *, lo: int = 1, hi: int = 100, look_ahead: int = 3,
    largest_file: bool = True,
) -> tuple[int, bytes] | None:
    """Highest integer quality in [lo, hi] whose encoding fits *max_bytes*, and that encoding.

    Bisection (~7 encodes), then *look_ahead* qualities above the result are tried too, because
    file size is not strictly monotonic in quality. Integer qualities give discrete sizes, so the
    result is the largest file <= the budget among those tried (with ``largest_file=False``: the
    highest quality that fits among them), not the budget itself. None if even quality *lo* does
    not fit.
    """
    best: tuple[int, bytes] | None = None
    a, b = lo, hi
    while a <= b:
        q = (a + b) // 2
        data = encode_at(q)
        if len(data) <= max_bytes:
            best, a = (q, data), q + 1
        else:
            b = q - 1
    if best is None:
        return None
    for q in range(best[0] + 1, min(best[0] + look_ahead, hi) + 1):
        data = encode_at(q)
        if len(data) <= max_bytes and (len(data) > len(best[1]) or not largest_file):
            best = (q, data)
    return best


def break_ties(scores: np.ndarray, seed: int, spread: float = TIE_SPREAD) -> np.ndarray:
    """*scores* times a fixed pseudo-random factor in [1, 1 + spread).

    Many coefficients score exactly alike (the same amplitude at the same position in blocks of
    equal weight, e.g. all of a uniform background), so without this the file size jumps as
    lambda crosses their common score and the budget cannot be approached closely. The factor
    is seeded, so the output stays deterministic."""
    rng = np.random.default_rng(seed)
    return scores * (1.0 + spread * rng.random(scores.shape, dtype=np.float32))


def prune_planes(
    dct: DctJpeg, weights: Sequence[np.ndarray], min_freq: int, step_power: float = 0.0
) -> Callable[[float], list[np.ndarray]]:
    """A function lambda -> pruned coefficient planes of *dct* (scores computed once, ties
    broken by :func:`break_ties`)."""
    scores = [
        break_ties(rd_scores(p.coeffs, p.qt, w, min_freq, step_power), seed=k)
        for k, (p, w) in enumerate(zip(dct.planes, weights))
    ]
    planes = [p.coeffs for p in dct.planes]
    return lambda lam: [prune(c, s, lam) for c, s in zip(planes, scores)]


def base_dct(pixels: np.ndarray, quality: int, base: str = DEFAULT_BASE) -> DctJpeg:
    """The quantised DCT of the *base* encoder's JPEG of *pixels* at *quality*. Grey pixels
    (HxW or HxWx1) give a 1-component JPEG's DCT even from an encoder that writes three
    (pyjpegli): its chroma is all zero, dropping it is lossless (:meth:`DctJpeg.luma_only`)."""
    px = as_encoder_input(pixels)
    dct = read_dct(get_backend(base).encode(px, int(quality)))
    return dct.luma_only() if px.shape[2] == 1 else dct


def plain_encoder(rgb: np.ndarray, base: str = DEFAULT_BASE, progressive: bool = True) -> Callable[[int], bytes]:
    """quality -> the base encoder's JPEG, rewritten losslessly with optimised Huffman tables,
    as baseline or (*progressive*, where smaller) progressive scans: what the pruned output is
    written as, so the two compare fairly."""
    pixels = as_encoder_input(rgb)
    finish = smallest_form if progressive else bytes
    return lambda q: finish(base_dct(pixels, q, base).write(optimize=True))


def prune_to_budget(
    rgb: np.ndarray,
    priority: np.ndarray,
    target_bytes: int,
    *,
    base: str = DEFAULT_BASE,
    ratio: float = DEFAULT_STEP_RATIO,
    floor: float = DEFAULT_FLOOR,
    min_freq: int = DEFAULT_MIN_FREQ,
    chroma_gain: float = DEFAULT_CHROMA_GAIN,
    strength: float = 1.0,
    low_floor: float = DEFAULT_LOW_FLOOR,
    low_min_freq: int = DEFAULT_LOW_MIN_FREQ,
    step_power: float = DEFAULT_STEP_POWER,
    tol: float = DEFAULT_TOLERANCE,
    progressive: bool = True,
    plain: tuple[int, bytes] | None = None,
    raise_with: np.ndarray | None = None,
    raise_mix: float = 1.0,
) -> PrunedJpeg:
    """:func:`encode_pruned` with the details of how it got there (:class:`PrunedJpeg`).

    *plain*: (quality, bytes) of the plain base JPEG that fits the budget, when the caller has
    already found it (:func:`plain_encoder` + :func:`fit_quality`); saves the fit. *raise_with*,
    *raise_mix*: a map that raises block weights where it is high (:func:`block_weights`).
    Raises ValueError when even a plain quality-1 base JPEG exceeds *target_bytes*. If no
    lambda brings the finer base under the budget, the plain base JPEG is returned.
    """
    pixels = as_encoder_input(rgb)
    check_refinement(ratio, strength)
    exponent, floor, min_freq = strength_schedule(strength, floor, low_floor, min_freq, low_min_freq)
    fit = plain if plain is not None else fit_quality(plain_encoder(pixels, base, progressive), int(target_bytes))
    if fit is None:
        raise ValueError(f"a budget of {target_bytes} bytes is too small: a plain {base} q1 JPEG does not fit")
    q_plain, plain_data = fit
    q_base = finer_quality(lambda q: quant_step(base, q), q_plain, ratio, exponent)
    if q_base == q_plain:  # strength 0 (or q100): nothing finer to prune
        return PrunedJpeg(plain_data, q_plain, q_plain, 0.0, 0)
    dct = base_dct(pixels, q_base, base)
    luma = block_weights(priority, pixels.shape[:2], dct.luma_grid, floor, raise_with, raise_mix)
    pruned = prune_planes(dct, plane_weights(dct, luma, chroma_gain), min_freq, step_power)
    writes = 0

    def write(lam: float) -> bytes:
        nonlocal writes
        writes += 1
        return dct.write(pruned(lam), optimize=True)

    found = fit_lambda(write, int(target_bytes), tol=tol)
    if found is None:
        return PrunedJpeg(plain_data, q_plain, q_plain, 0.0, writes)
    data, lam = found.data, found.lam
    if progressive:
        data, lam = _progressive_refit(write, found, int(target_bytes), tol)
    return PrunedJpeg(data, q_plain, q_base, lam, writes, weights=luma)


def _progressive_refit(
    write: Callable[[float], bytes], found: LambdaFit, target: int, tol: float
) -> tuple[bytes, float]:
    """The smaller form of the fitted write; when progressive coding saved bytes, lambda is
    bisected again (between found.lam / 4 and found.lam, at most 10 writes) on the size of the
    smaller form, to spend the bytes it freed. Its saving varies with lambda, so the fit is on
    the real re-coded size, not a scaled target."""
    small = smallest_form(found.data)
    if len(small) >= len(found.data) or found.lam <= 0:
        return small, found.lam
    again = fit_lambda(lambda lam: smallest_form(write(lam)), target, tol=tol, lo=found.lam / 4, hi=found.lam,
                       max_writes=10, try_zero=False)
    if again is None or len(again.data) <= len(small):
        return small, found.lam
    return again.data, again.lam


def encode_pruned(rgb: np.ndarray, priority: np.ndarray, target_bytes: int, **options: Any) -> bytes:
    """One baseline JPEG of at most *target_bytes*: the *base* encoder finer than its plain fit
    (steps ``ratio`` times as large), with AC coefficients pruned by the saliency-weighted RD rule (module
    docstring), lambda fitted to within *tol* below the budget.

    *priority*: HxW (any resolution) non-negative map of where quality matters, e.g. predicted
    saliency. *options*: those of :func:`prune_to_budget` (base="jpegli", ratio=0.70, floor=0.03,
    min_freq=3, chroma_gain=0.55, strength=1.0, low_floor=0.30, low_min_freq=4, tol=0.01); *strength* 0 returns
    the plain base JPEG that fits.
    """
    return prune_to_budget(rgb, priority, target_bytes, **options).data


__all__ = [
    "DEFAULT_BASE",
    "LambdaFit",
    "PrunedJpeg",
    "base_dct",
    "break_ties",
    "encode_pruned",
    "finer_quality",
    "fit_lambda",
    "fit_quality",
    "frequency_mask",
    "plain_encoder",
    "prune",
    "prune_planes",
    "prune_to_budget",
    "quant_step",
    "rd_scores",
]
