"""What every encoding method is to the encoder: the :class:`Method` interface and the values that
pass through it (the plain JPEG, the encodings considered, the one chosen).

A method owns everything that differs between ways of spending the bytes: its plain reference
JPEG (the budget is that JPEG's size, and the baseline every figure is compared with), how it
fits a plain JPEG to a byte budget, how it turns the allocation's map into its own block
weights, the encoding itself, and the guard that may fall back to the plain JPEG. The encoder
(:class:`sspcodec.Encoder`) only wires the stages and never asks which method it holds.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..backends import Backend
from ..options import CompressError
from ..quant.rdprune import fit_quality
from ..scoring import Scorer, ShiftScorer, shift_score


class PlainJpeg(NamedTuple):
    """A plain JPEG of the back-end at one integer quality: the budget and the reference."""

    quality: int
    data: bytes


@dataclass(frozen=True, eq=False)
class Candidate:
    """One encoding a method considered."""

    data: bytes = field(repr=False)
    quality_map: np.ndarray = field(repr=False)  # per 8x8 luma block, libjpeg quality
    ssm: np.ndarray = field(repr=False)  # as scored (`Score.ssm`)
    psnr: float
    family: Any  # the search's CandidateFamily; None: not from a family (the plain JPEG, RD pruning's output)

    @property
    def shift(self) -> float:
        return shift_score(self.ssm)


@dataclass(frozen=True)
class GuardNote:
    """What a method's guard did to its output: `rounds` of giving quality back where the
    output's predicted SSM rose above the plain JPEG's, and `fallback`, why the plain JPEG was
    returned instead ("" when it was not)."""

    rounds: int = 0
    fallback: str = ""

    @property
    def acted(self) -> bool:
        """Whether the guard changed the output."""
        return self.rounds > 0 or bool(self.fallback)


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The chosen encoding and the plain JPEG it was measured against."""

    best: Candidate
    plain: Candidate  # the plain JPEG of the budget, scored like the others
    plain_quality: int
    block_weights: np.ndarray | None = None  # rd: the luma block weights that decided the pruning
    guard: GuardNote = GuardNote()
    # rd: the same encoding again with block weights raised by a map in [0, 1] (the shift guard)
    retry: Callable[[np.ndarray], SearchResult] | None = field(default=None, repr=False)


class Method(Protocol):
    """One way of spending the bytes. ``name`` is its registry key; ``backend`` its base encoder."""

    name: str

    @property
    def backend(self) -> Backend: ...

    def plain(self, pixels: np.ndarray, quality: int, progressive: bool = True) -> bytes:
        """The plain JPEG at `quality`: the reference, written as the method's output is."""
        ...

    def plain_at_bytes(self, pixels: np.ndarray, target: int) -> PlainJpeg:
        """The plain JPEG of the highest quality that fits `target` bytes (CompressError if none)."""
        ...

    def weights(self, where: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
        """The allocation's map of where quality matters (any resolution, or None: no
        reallocation) as the weights :meth:`run` takes, for an image of `shape` (h, w)."""
        ...

    def run(
        self, pixels: np.ndarray, weights: np.ndarray | None, target: int, plain: PlainJpeg, score: Scorer,
        *, quick: bool = False,
    ) -> SearchResult:
        """The encoding at `target` bytes; `plain` is the plain JPEG that fits them. `quick`:
        a cheaper run, for loops that call it many times (the fewest-bytes bisection)."""
        ...

    def guard(self, found: SearchResult, scorer: ShiftScorer) -> SearchResult:
        """`found`, or the plain JPEG where the method's own check says its output is worse."""
        ...


def fit_plain(
    plain: Callable[[int], bytes], target: int, written: Callable[[int], bytes] | None = None
) -> tuple[int, bytes]:
    """Highest integer quality whose `plain(q)` fits `target` bytes, and those bytes: bisection
    (~7 encodes), then a look at the next qualities, since size is not strictly monotonic in
    quality. CompressError naming the size of quality 1 as `written` (default `plain`) writes it
    when even that does not fit."""
    best = fit_quality(plain, target, largest_file=False)
    if best is None:
        raise CompressError(
            f"a budget of {target} bytes is too small for this image: even a plain quality-1 JPEG needs "
            f"{len((written or plain)(1))} bytes"
        )
    return best


__all__ = ["Candidate", "GuardNote", "Method", "PlainJpeg", "SearchResult", "fit_plain"]
