"""The search method: candidate quality maps at equal bytes, the one with the least predicted shift kept.

The allocation's map becomes a priority per 8x8 luma block, w in [0, 1]
(:func:`~sspcodec.allocation.block_priority`, dilated by one block). The search turns it into
JPEGs of equal bytes and keeps the one with the least predicted shift:

- a candidate family (q_boost, gamma) makes quality maps q = q_lo + (q_hi - q_lo) * w^gamma
  (+ a fixed ±0.5 dither), q_hi = plain quality + q_boost; q_lo is fitted to the byte budget
  (:func:`fit_to_bytes`), so the model only has to rank candidates of the same size;
- the plain JPEG that set the budget is a candidate too, so nothing predicted worse is returned,
  and a candidate losing more than `max_psnr_drop` dB of global PSNR against it is not chosen;
- refinement steps then raise priority where the chosen encoding still shifts attention.

The search space is small on purpose; :class:`CandidateSearch` is the class to read or replace.
Its plain reference is the back-end's JPEG with optimised Huffman tables (libjpeg-turbo by
default); it has no guard of its own (the plain JPEG is one of its candidates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..allocation import block_priority
from ..backends import Backend
from ..quant import CoefficientImage, luma_block_shape, prefilter_image
from ..scoring import Scorer, ShiftScorer, shift_score
from .base import Candidate, PlainJpeg, SearchResult, fit_plain

#: Lowest background quality a candidate may fall to (or the plain quality, if that is lower).
MIN_QUALITY = 20


# --------------------------------------------------------------------------
# candidate families and byte fitting
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateFamily:
    """Quality maps q_lo + (q_hi - q_lo) * w^gamma with q_hi = plain quality + q_boost, for any
    q_lo; `prefilter` > 0 blurs low-priority regions before the one real encode."""

    q_boost: float
    gamma: float
    prefilter: float = 0.0

    def top_quality(self, q_plain: int) -> int:
        """q_hi: the quality of the frame's table and of the top-priority blocks."""
        return int(min(100, round(q_plain + self.q_boost)))


# Mild boosts only: above about +4 the finer frame table makes every other block dearer and the
# background collapses (measured: +5 lost 3-5 dB saliency-weighted PSNR; docs/BENCHMARKS.md).
DEFAULT_FAMILIES: tuple[CandidateFamily, ...] = (
    CandidateFamily(1, 1.0),
    CandidateFamily(2, 0.7),
    CandidateFamily(2, 1.0),
    CandidateFamily(2, 2.0),
    CandidateFamily(3, 1.0),
    CandidateFamily(3, 2.0),
    CandidateFamily(4, 1.5),
)


def quality_map(w: np.ndarray, q_hi: float, q_lo: float, gamma: float) -> np.ndarray:
    """Block qualities q_lo + (q_hi - q_lo) * w^gamma (float32) from priorities w in [0, 1]."""
    return (q_lo + (q_hi - q_lo) * np.power(np.clip(w, 0, 1), gamma)).astype(np.float32)


def refine_priority(w: np.ndarray, ssm_blocks: np.ndarray, mix: float = 0.5) -> np.ndarray:
    """Raise priority in blocks where the chosen encoding still shifts attention.

    Only raises: the SSM counts attention *gained*, so a salient region made blurrier (which
    loses attention, not gains it) would look harmless to it; lowering priority there is never
    allowed.
    """
    top = float(ssm_blocks.max())
    if top <= 0:
        return w
    return np.maximum(w, mix * ssm_blocks / top)


class Fit(NamedTuple):
    """A byte fit: the quality found, its encoding, and the real/estimated size ratio."""

    quality: float
    data: bytes
    ratio: float


def fit_to_bytes(
    encode: Callable[[float], bytes],
    target: int,
    lo: float,
    hi: float,
    estimate: Callable[[float], float] | None = None,
    tol: float = 0.01,
    max_writes: int = 6,
    ratio: float | None = None,
) -> Fit | None:
    """Largest q in [lo, hi] whose encoding fits `target` bytes (bytes grow with q); None when
    even `lo` is too big.

    With a cheap `estimate` (bytes up to a slowly drifting factor), q is found by bisection on
    the estimate times `ratio` (real/estimated bytes; pass the one a previous fit on the same
    base returned to save a write), and only the proposals are really encoded, until one lands
    within `tol` below the target. Without an estimate: plain bisection on real encodes.
    """
    best: tuple[float, bytes] | None = None

    def consider(q: float) -> int:
        """Encode at q, keep it if it is the best fit so far; returns its size."""
        nonlocal best
        data = encode(q)
        if len(data) <= target and (best is None or q > best[0]):
            best = (q, data)
        return len(data)

    def done() -> bool:
        return best is not None and len(best[1]) >= target * (1 - tol)

    if estimate is not None:
        if ratio is None:
            size = consider(lo)
            if size > target:
                return None
            ratio = size / max(estimate(lo), 1.0)
        goal, a_lo, a_hi = target * (1 - tol / 2), lo, hi
        for _ in range(max_writes):
            if done() or a_hi - a_lo < 0.05:
                break
            a, b = a_lo, a_hi
            for _ in range(8):
                mid = (a + b) / 2
                a, b = (mid, b) if estimate(mid) * ratio <= goal else (a, mid)
            q = a if a > a_lo else (a_lo + a_hi) / 2
            size = consider(q)
            ratio = size / max(estimate(q), 1.0)
            a_lo, a_hi = (q, a_hi) if size <= target else (a_lo, q)
        lo, hi = (best[0] if best is not None else lo), a_hi
    if best is None and consider(lo) > target:
        return None
    for _ in range(9 if estimate is None else 4):  # real bisection: no estimate, or it missed
        if done() or hi - lo < 0.01:
            break
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if consider(mid) <= target else (lo, mid)
    assert best is not None
    return Fit(best[0], best[1], ratio if ratio is not None else 1.0)


class _BudgetFitter:
    """Fits candidate families to one byte budget of one image, sharing what it can between
    them: the base encoding (one per q_hi; one per map for prefiltered families) and the
    calibrated real/estimated size ratio of each base.

    Only the latest base is kept: one holds the whole image's coefficients (about 3 bytes per
    pixel), families come ordered by q_hi, and a base dropped and needed again (refinement) is
    re-encoded identically, so keeping more would cost memory, not change a byte.
    """

    def __init__(self, search: CandidateSearch, rgb: np.ndarray, target: int, q_plain: int, grid: tuple[int, int]):
        self.search, self.rgb, self.target, self.q_plain = search, rgb, target, q_plain
        self.base: tuple[tuple, CoefficientImage] | None = None
        self.ratios: dict[tuple, float] = {}
        self.last_ratio: float | None = None  # the latest calibration: where an unfitted base starts
        # A fixed +-0.5 quality dither: blocks sharing one quality would zero all their equal
        # coefficients at the same q, making size jump; spread out, it varies smoothly.
        self.dither = np.random.default_rng(0).uniform(-0.5, 0.5, grid).astype(np.float32)

    def fit(self, weights: np.ndarray, family: CandidateFamily) -> tuple[bytes, np.ndarray] | None:
        """(JPEG bytes, block quality map) of `family` at the budget, or None if it cannot fit."""
        q_hi = family.top_quality(self.q_plain)

        def qmap(q_lo: float) -> np.ndarray:
            return np.minimum(quality_map(weights, q_hi, q_lo, family.gamma) + self.dither, q_hi)

        # a plain base serves every map; a prefiltered one depends on the map that shaped it
        key = (q_hi, family.prefilter, family.gamma, weights.tobytes()) if family.prefilter else (q_hi,)
        if self.base is None or self.base[0] != key:
            self.base = None  # release the old base's coefficients before reading the new ones
            pixels = self.rgb
            if family.prefilter:  # blur where priority is low, before the one real encode
                pixels = prefilter_image(self.rgb, qmap(self.search.min_quality), q_hi, family.prefilter)
            base_jpeg = self.search.backend.encode(pixels, q_hi, optimize=False)
            self.base = (key, CoefficientImage(base_jpeg, q_hi, keep_dc=self.search.keep_dc))
        base = self.base[1]
        fitted = fit_to_bytes(
            lambda q_lo: base.encode(qmap(q_lo)),
            self.target,
            float(min(self.search.min_quality, self.q_plain)),
            float(q_hi),
            lambda q_lo: base.estimate_bytes(qmap(q_lo)),
            ratio=self.ratios.get(key, self.last_ratio),
        )
        if fitted is None:
            return None
        self.ratios[key] = self.last_ratio = fitted.ratio  # later fits start from a calibrated estimate
        return fitted.data, qmap(fitted.quality)


# --------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------
class CandidateSearch:
    """Best of the candidate families at a byte budget, refined towards where shift appears.

    `max_psnr_drop` (dB) guards global fidelity: a candidate whose PSNR falls more than this
    below the plain JPEG's is not chosen, however little shift it is predicted to cause (None:
    no guard). `refine_steps`: how many times to raise priority where the chosen encoding still
    shifts attention and refit its family. `keep_dc=False` reproduces outputs of the encoder
    before the DC fix (see :func:`sspcodec.quant.requantize`).
    """

    def __init__(
        self,
        backend: Backend,
        families: Sequence[CandidateFamily] = DEFAULT_FAMILIES,
        *,
        refine_steps: int = 1,
        max_psnr_drop: float | None = 1.5,
        min_quality: float = MIN_QUALITY,
        keep_dc: bool = True,
    ):
        self.name = "search"
        self.backend = backend
        self.families = tuple(families)
        self.refine_steps = refine_steps
        self.max_psnr_drop = max_psnr_drop
        self.min_quality = min_quality
        self.keep_dc = keep_dc

    def plain(self, pixels: np.ndarray, quality: int, progressive: bool = True) -> bytes:
        """The back-end's plain JPEG with optimised Huffman tables (as written: `progressive` is
        the rd method's concern)."""
        return self.backend.encode(pixels, int(quality), optimize=True)

    def plain_at_bytes(self, pixels: np.ndarray, target: int) -> PlainJpeg:
        return PlainJpeg(*fit_plain(lambda q: self.plain(pixels, q, progressive=False), target))

    def weights(self, where: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
        """Per-block priorities on the luma block grid, dilated by one block."""
        return None if where is None else block_priority(where, luma_block_shape(*shape))

    def guard(self, found: SearchResult, scorer: ShiftScorer) -> SearchResult:
        """No guard beyond the search's own: the plain JPEG was a candidate."""
        return found

    def run(
        self,
        rgb: np.ndarray,
        priority: np.ndarray | None,
        target: int,
        plain: PlainJpeg,
        score: Scorer,
        *,
        quick: bool = False,
        families: Sequence[CandidateFamily] | None = None,
        refine_steps: int | None = None,
    ) -> SearchResult:
        """Search at `target` bytes; `plain` is the plain JPEG that fits it (the reference),
        `priority` the block priorities of :meth:`weights` (None: only the plain JPEG is
        considered). `quick`: the first three families, no refinement (unless `families` or
        `refine_steps` say otherwise)."""
        grid = luma_block_shape(*rgb.shape[:2])
        fitter = _BudgetFitter(self, rgb, target, plain.quality, grid)
        if families is None:
            families = self.families[:3] if quick else self.families
        if refine_steps is None and quick:
            refine_steps = 0
        fitted: list[tuple[bytes, np.ndarray, CandidateFamily]] = []
        for family in families if priority is not None else ():
            enc = fitter.fit(priority, family)
            if enc is not None:
                fitted.append((*enc, family))
        scores = score([plain.data] + [data for data, _, _ in fitted])
        plain_c = Candidate(plain.data, np.full(grid, float(plain.quality), np.float32), *scores[0], None)
        floor = -np.inf if self.max_psnr_drop is None else plain_c.psnr - self.max_psnr_drop
        pool = [plain_c] + [Candidate(d, qm, *s, fam) for (d, qm, fam), s in zip(fitted, scores[1:]) if s.psnr >= floor]
        best = min(pool, key=lambda c: c.shift)
        weights = priority
        for _ in range(self.refine_steps if refine_steps is None else refine_steps):
            if best.family is None or weights is None:  # the plain JPEG won: nothing to refine
                break
            weights = refine_priority(weights, block_priority(best.ssm, grid, spread=0))
            enc = fitter.fit(weights, best.family)
            if enc is None:
                break
            s = score([enc[0]])[0]
            if shift_score(s.ssm) < best.shift and s.psnr >= floor:
                best = Candidate(*enc, *s, best.family)
        return SearchResult(best, plain_c, plain.quality)
