"""The budget stage: how many bytes the image data may take, and the plain JPEG that sets them.

A quality budget is the size of the method's plain JPEG at that quality; a size budget
(`max_bytes`, `bpp`) is for the whole file, so the bytes of the metadata carried into it are
taken off first. A predicted-shift budget has no size: :func:`fewest_bytes` bisects over plain
qualities, running the method at each, for the fewest bytes whose predicted shift stays under it.
"""
from __future__ import annotations

import numpy as np

from .methods import Method, PlainJpeg, SearchResult
from .options import Budget, CompressError
from .scoring import ShiftScorer


def budget_bytes(budget: Budget, method: Method, pixels: np.ndarray, overhead: int = 0) -> tuple[int, PlainJpeg]:
    """Bytes of a size budget for the image data, and the plain JPEG that sets them (a quality
    budget) or fits them best (max_bytes, bpp). `overhead`: the carried metadata's bytes."""
    if budget.quality is not None:
        plain = PlainJpeg(budget.quality, method.plain(pixels, budget.quality))
        return len(plain.data), plain
    h, w = pixels.shape[:2]
    total = budget.max_bytes if budget.max_bytes is not None else int(budget.bpp * h * w / 8)
    if total < 1:
        raise CompressError(f"a budget of {budget.bpp:g} bpp is {budget.bpp * h * w / 8:.3g} bytes for this "
                            f"{w}x{h} image: too small for any JPEG")
    carried = f"the source's metadata takes {overhead} bytes of the {total} (strip=True or keep= drops it)"
    if overhead >= total:
        raise CompressError(f"a budget of {total} bytes is too small for this image: {carried}")
    try:
        return total - overhead, method.plain_at_bytes(pixels, total - overhead)
    except CompressError as exc:
        if not overhead:
            raise
        raise CompressError(f"{exc}, and {carried}") from None


def fewest_bytes(
    method: Method, pixels: np.ndarray, weights: np.ndarray | None, max_shift: float, scorer: ShiftScorer
) -> SearchResult:
    """Fewest bytes with predicted shift <= max_shift: bisection over plain-quality budgets, each
    encoded by the method in its quick form."""
    lo, hi = 5, 100
    found = None
    while lo <= hi:
        q = (lo + hi) // 2
        plain = PlainJpeg(q, method.plain(pixels, q))
        out = method.run(pixels, weights, len(plain.data), plain, scorer, quick=True)
        if out.best.shift <= max_shift:
            found, hi = out, q - 1
        else:
            lo = q + 1
    if found is None:
        raise CompressError(f"no encoding reaches a predicted shift <= {max_shift:g}, even near-lossless")
    return found


__all__ = ["budget_bytes", "fewest_bytes"]
