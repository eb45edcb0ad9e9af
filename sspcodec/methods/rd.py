"""The default method: saliency-weighted rate-distortion pruning of a finer base JPEG at the budget.

The plain reference is the base encoder's JPEG (jpegli by default) rewritten with optimised
Huffman tables, progressive where that is smaller (as cjpegli writes), so the output and its
reference are written alike. The output is one pruned encoding of a finer base
(:func:`sspcodec.quant.rdprune.prune_to_budget`). The guard is the shift model: where the
output's predicted SSM rises above the plain JPEG's (an artifact that would pull the eye), those
blocks get their quality back and the budget is refitted; the plain JPEG is returned when that
does not bring the output's predicted shift down to the plain one's, or when the output is worse
where people are predicted to look.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property, partial

import numpy as np

from ..allocation import pixel_priority
from ..backends import Backend, get_backend
from ..backends.progressive import smallest_form
from ..quant import luma_block_shape
from ..quant.rdprune import plain_encoder, prune_to_budget
from ..quant.settings import PruneSettings
from ..scoring import Scorer, ShiftScorer
from .base import Candidate, GuardNote, PlainJpeg, SearchResult, fit_plain

#: How much the plain JPEG's predicted SSM raises block weights in :class:`RdPruning`
#: (w_b = max(s_b, mix * ssm_b / max ssm)); 0 = saliency alone. Off: on 12 validation images
#: (jpegli q70 / q85 budgets) mix 1 cost 0.5 / 0.6 SSIMULACRA2 points and 0.07 / 0.08 dB PSNR
#: more than 0 for -0.03 / +0.03 dB human-weighted PSNR (the spread SSM raises broad areas).
DEFAULT_SHIFT_MIX = 0.0
#: How many times the shift guard gives quality back before it falls back to the plain JPEG.
DEFAULT_GUARD_ROUNDS = 2
#: The guard's fallback, in words (CompressResult.guard).
SHIFT_FALLBACK = "the output's predicted shift stayed above the plain JPEG's"
PSNR_FALLBACK = "the output was worse than the plain JPEG where people are predicted to look"


@dataclass
class RdPruning:
    """Saliency-weighted RD pruning of a *base* JPEG finer than the plain fit, at the budget
    (:func:`sspcodec.quant.rdprune.prune_to_budget` with *settings*; how strength sets the
    refinement, the weight floor and the protected low frequencies:
    :func:`~sspcodec.quant.settings.strength_schedule`).

    Block weights are the block means of the allocation's map at pixel resolution, dilated by
    one pixel (:func:`~sspcodec.allocation.pixel_priority`), raised by the predicted SSM of the
    plain JPEG where that encoding would pull attention (``shift_mix`` > 0; that SSM is scored
    anyway, as the baseline's figures). The output is scored once more for its own predicted
    shift; it is not chosen by that score (a mean SSM differs between encodings of equal bytes
    by about noise). strength 0 returns the plain JPEG itself.

    ``shift_guard``: where the output's predicted SSM exceeds the plain JPEG's, raise those
    blocks' weights (by the excess, scaled to max 1) and prune again at the same budget, up to
    ``guard_rounds`` times; if the output's predicted shift is still above the plain one's, return
    the plain JPEG. ``guard_output``: also return the plain JPEG when the pruned one has a lower
    saliency-weighted PSNR.
    """

    base: str = "jpegli"
    settings: PruneSettings = field(default_factory=PruneSettings)
    shift_mix: float = DEFAULT_SHIFT_MIX
    guard_output: bool = True
    shift_guard: bool = True
    guard_rounds: int = DEFAULT_GUARD_ROUNDS
    name: str = field(default="rd", init=False)

    @cached_property
    def backend(self) -> Backend:
        """The base encoder, made once."""
        return get_backend(self.base)

    def plain(self, pixels: np.ndarray, quality: int, progressive: bool = True) -> bytes:
        """The base's plain JPEG, its DCT rewritten as the pruned output is (1 component for
        grey pixels; optimised Huffman tables; progressive where smaller), so both compare fairly."""
        return plain_encoder(pixels, self.base, progressive)(int(quality))

    def plain_at_bytes(self, pixels: np.ndarray, target: int) -> PlainJpeg:
        """The fit uses baseline sizes (no re-coding per try); then the winner is re-coded where
        smaller and up to two finer qualities are tried in that form (re-coding saves about 1.5%)."""
        quality, data = fit_plain(lambda q: self.plain(pixels, q, progressive=False), target,
                                  lambda q: self.plain(pixels, q))
        best = (quality, smallest_form(data))
        for q in range(quality + 1, min(quality + 2, 100) + 1):
            data = self.plain(pixels, q)
            if len(data) > target:
                break
            best = (q, data)
        return PlainJpeg(*best)

    def weights(self, where: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
        """A pixel-resolution map; :func:`prune_to_budget` takes its block means."""
        return None if where is None else pixel_priority(where, shape)

    def run(
        self, pixels: np.ndarray, weights: np.ndarray | None, target: int, plain: PlainJpeg, score: Scorer,
        *, quick: bool = False,
    ) -> SearchResult:
        """The pruned JPEG of at most `target` bytes; `plain` is the plain base JPEG that fits it
        (the reference), `weights` a map of where quality matters at any resolution (None: no
        reallocation, the plain JPEG is returned). One encoding: `quick` changes nothing."""
        grid = luma_block_shape(*pixels.shape[:2])
        first = score([plain.data])[0]
        plain_c = Candidate(plain.data, np.full(grid, float(plain.quality), np.float32), *first, None)
        if weights is None:
            return SearchResult(plain_c, plain_c, plain.quality)
        return self._pruned(pixels, weights, target, plain, score, plain_c, None)

    def _pruned(
        self, pixels: np.ndarray, weights: np.ndarray, target: int, plain: PlainJpeg, score: Scorer,
        plain_c: Candidate, extra: np.ndarray | None,
    ) -> SearchResult:
        """One pruning at `target` bytes, block weights raised by the plain JPEG's SSM (``shift_mix``)
        and by `extra` (a map in [0, 1], the guard's), scored; with a `retry` for the guard."""
        raise_with, mix = (plain_c.ssm, self.shift_mix) if self.shift_mix > 0 else (None, 1.0)
        if extra is not None:  # extra peaks at 1, so the combined map keeps shift_mix's scale
            raise_with = extra if raise_with is None else np.maximum(
                mix * raise_with / max(float(raise_with.max()), 1e-12), extra)
            mix = 1.0
        out = prune_to_budget(pixels, weights, target, base=self.base, plain=(plain.quality, plain.data),
                              raise_with=raise_with, raise_mix=mix, **self.settings.options())
        if out.data == plain.data:  # nothing finer fitted: the plain JPEG, already scored
            return SearchResult(plain_c, plain_c, plain.quality)
        qmap = np.full(luma_block_shape(*pixels.shape[:2]), float(out.base_quality), np.float32)  # one table
        best = Candidate(out.data, qmap, *score([out.data])[0], None)
        retry = partial(self._pruned, pixels, weights, target, plain, score, plain_c)
        return SearchResult(best, plain_c, plain.quality, block_weights=out.weights, retry=retry)

    def guard(self, found: SearchResult, scorer: ShiftScorer) -> SearchResult:
        """The shift guard (see the class), then the plain JPEG instead of a pruned output that is
        worse where people are predicted to look (saliency-weighted PSNR below the plain one's,
        which has at least as many bytes: happens on very smooth, e.g. upscaled, images)."""
        if found.best.data == found.plain.data:
            return found
        rounds, extra = 0, None
        while (self.shift_guard and rounds < self.guard_rounds and found.retry is not None
               and found.best.shift > found.plain.shift):
            excess = np.clip(found.best.ssm - found.plain.ssm, 0.0, None)
            level = excess / max(float(excess.max()), 1e-12)
            extra = level if extra is None else np.maximum(extra, level)
            found, rounds = found.retry(extra), rounds + 1
        if self.shift_guard and found.best.shift > found.plain.shift:
            return _plain_result(found, GuardNote(rounds, SHIFT_FALLBACK))
        if (self.guard_output and found.best.data != found.plain.data
                and scorer.weighted_psnr(found.best.data) < scorer.weighted_psnr(found.plain.data)):
            return _plain_result(found, GuardNote(rounds, PSNR_FALLBACK))
        return replace(found, guard=GuardNote(rounds), retry=None)  # the retry holds the pixels


def _plain_result(found: SearchResult, note: GuardNote) -> SearchResult:
    """The plain JPEG of `found` as the output, with what the guard did."""
    return SearchResult(found.plain, found.plain, found.plain_quality, guard=note)


__all__ = ["DEFAULT_GUARD_ROUNDS", "DEFAULT_SHIFT_MIX", "PSNR_FALLBACK", "SHIFT_FALLBACK", "RdPruning"]
