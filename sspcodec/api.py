"""Python API: `compress(image, ...)` and `Encoder` (keeps the model loaded across images).

Wiring only: read -> the model's SM_r of the pristine image, once (it is all a shift prediction
needs from the pristine side) -> the budget (:class:`Budget`) -> a priority map (an
:class:`~sspcodec.allocation.Allocation`) -> the method at the budget's bytes -> one JPEG, with the
source's ICC profile and EXIF (orientation 1) unless `strip`, greyscale if the source is.

Methods: ``"rd"`` (the default; :class:`~sspcodec.search.RdPruning`): saliency-weighted RD pruning
of a finer jpegli JPEG by the predicted saliency (optionally raised where the plain JPEG is
predicted to shift attention), guarded by the model's saliency-weighted PSNR against the plain
JPEG: one encoding; model evaluations: SM_r, the plain JPEG's and the output's SSM, plus one per
other test-time view of the model's saliency (the shipped one has three: six in all).
``"search"`` (:class:`~sspcodec.search.CandidateSearch`, libjpeg-turbo by default): candidate
quality maps scored by predicted shift. On held-out images the rd method wins where people look
at equal bytes (docs/BENCHMARKS.md).

Memory is bounded by design: candidates are scored one decode at a time and every map is kept
at the model's input resolution (about 384x288), so beyond the image itself only a few
full-size arrays are ever alive (README "Memory" gives the measured peaks).
"""
from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from sspcodec.metadata import ImageMeta, read_meta
from sspnet import SSPNet, load_model
from sspnet.files.images import DEFAULT_MAX_PIXELS, LoadedImage, load_image

from .allocation import Allocation, GivenMapAllocation, SaliencyAllocation
from .backends import get_backend
from .backends.markers import insert_metadata, metadata_segments
from .backends.progressive import smallest_form
from .options import (
    Budget,
    CompressError,
    check_dimensions,
    check_max_pixels,
    check_priority,
    check_reading,
    check_request,
    check_strength,
)
from .quant import luma_block_shape
from .quant.rdprune import fit_quality, plain_encoder
from .quant.settings import PruneSettings
from .result import CompressResult, Figures, to_image_size
from .scoring import ShiftScorer
from .search import DEFAULT_FAMILIES, CandidateFamily, CandidateSearch, PlainJpeg, RdPruning, SearchResult

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image

#: The encoding methods, and the back-end each uses unless one is named.
METHOD_BACKENDS = {"rd": "jpegli", "search": "turbo"}
DEFAULT_METHOD = "rd"


def check_method(method: Any) -> str:
    """"rd" or "search", else CompressError naming the valid ones."""
    if method not in METHOD_BACKENDS:
        raise CompressError(f"method must be one of {', '.join(METHOD_BACKENDS)}, got {method!r}")
    return method


class ContentChangeWarning(UserWarning):
    """Reading the source changed what a viewer would see (transparency flattened onto a
    background, one frame of several, a 16-bit array of 8-bit values); also in
    `CompressResult.notices`. The CLI prints these as ``notice:`` lines."""


class Encoder:
    """Keeps the SSPNet model loaded; one `compress` call per image.

    `method` "rd" (default) prunes a finer base JPEG by a saliency-weighted RD rule at the
    budget, `strength` in [0, 1] setting how much quality moves to where people look (0: the
    plain base JPEG); "search" picks among candidate quality maps by predicted shift. `backend`:
    the base encoder (None: jpegli for rd, libjpeg-turbo for search).

    `allocation` decides which blocks deserve the bytes (default: the model's saliency);
    `search` (an attribute that may be replaced: :class:`~sspcodec.search.RdPruning`, or for
    "search" a :class:`~sspcodec.search.CandidateSearch` built from `families`, `refine_steps`,
    `max_psnr_drop`, `keep_dc`) makes the encoding. `max_psnr_drop` (dB) guards global fidelity
    in the search: a candidate whose PSNR falls more than this below the plain JPEG's is not
    chosen. `keep_dc=False` reproduces the search outputs of the encoder before the DC fix.
    `guard` (rd): return the plain JPEG when the pruned one is worse where people are predicted
    to look (its saliency-weighted PSNR is lower).
    """

    def __init__(
        self,
        model: str | SSPNet = "default",
        device: str = "auto",
        backend: str | None = None,
        families: Sequence[CandidateFamily] = DEFAULT_FAMILIES,
        refine_steps: int = 1,
        batch_size: int = 4,
        max_psnr_drop: float | None = 1.5,
        *,
        allocation: Allocation | None = None,
        keep_dc: bool = True,
        method: str = DEFAULT_METHOD,
        strength: float = 1.0,
        guard: bool = True,
    ):
        self.method = check_method(method)
        self.guard = guard
        strength = check_strength(strength)
        self.backend = get_backend(METHOD_BACKENDS[self.method] if backend is None else backend)
        if not self.backend.supports_dct:
            raise CompressError(f"back-end '{self.backend.name}' cannot rewrite DCT blocks; use turbo or mozjpeg")
        self.model = load_model(model, device) if isinstance(model, str) else model.eval()
        self.allocation: Allocation = allocation if allocation is not None else SaliencyAllocation()
        self.search: CandidateSearch | RdPruning
        if self.method == "rd":
            self.search = RdPruning(self.backend.name, PruneSettings(strength))
        else:
            self.search = CandidateSearch(
                self.backend, families, refine_steps=refine_steps, max_psnr_drop=max_psnr_drop, keep_dc=keep_dc
            )
        self.batch_size = batch_size

    # -- plain JPEG, the reference every figure is compared with --
    def plain(self, rgb: np.ndarray, quality: int, progressive: bool = True) -> bytes:
        """The back-end's plain JPEG with optimised Huffman tables; for rd, its DCT rewritten as
        the pruned output is (1 component for grey pixels; progressive where that is smaller,
        as cjpegli writes), so both compare fairly."""
        if self.method == "rd":
            return plain_encoder(rgb, self.backend.name, progressive)(int(quality))
        return self.backend.encode(rgb, int(quality), optimize=True)

    def plain_at_bytes(self, rgb: np.ndarray, target: int) -> PlainJpeg:
        """Highest integer quality whose plain JPEG fits `target` bytes: bisection (~7 encodes),
        then a look at the next qualities, since size is not strictly monotonic in quality. The
        fit uses baseline sizes (no re-coding per try); then the winner is re-coded where smaller
        and up to two finer qualities are tried in that form (re-coding saves about 1.5%)."""
        best = fit_quality(lambda q: self.plain(rgb, q, progressive=False), target, largest_file=False)
        if best is not None and self.method == "rd":  # re-coding may make room for finer qualities
            best = (best[0], smallest_form(best[1]))
            for q in range(best[0] + 1, min(best[0] + 2, 100) + 1):
                data = self.plain(rgb, q)
                if len(data) > target:
                    break
                best = (q, data)
        if best is None:
            need = len(self.plain(rgb, 1))
            raise CompressError(
                f"a budget of {target} bytes is too small for this image: "
                f"even a plain quality-1 JPEG needs {need} bytes"
            )
        return PlainJpeg(*best)

    def compress(
        self,
        image: ImageInput,
        *,
        max_bytes: int | str | None = None,
        bpp: float | None = None,
        max_shift: float | None = None,
        quality: int | None = None,
        priority: np.ndarray | None = None,
        strip: bool = False,
        max_pixels: int | None = None,
        alpha: str | None = None,
        background: str | tuple[int, int, int] | None = None,
        frame: int | None = None,
        name: str | None = None,
    ) -> CompressResult:
        """One JPEG at the byte budget with the least predicted shift (or, with `max_shift`, the
        fewest bytes whose predicted shift stays at or below it).

        Budget, at most one of: `max_bytes` (int or "150KB"), `bpp` (bits per pixel), `quality`
        (the bytes of a plain JPEG at that quality); default: plain quality 85. `priority` replaces
        the encoder's allocation with this map for one call (benchmarks drive it with other maps).

        The source's ICC profile and EXIF block (orientation reset to 1: the pixels are read
        upright) are carried into the output, and count against `max_bytes`/`bpp`; `strip=True`
        drops them. A greyscale source gives a 1-component JPEG. Images above `max_pixels`
        (default :data:`~sspnet.files.images.DEFAULT_MAX_PIXELS`) are refused before decoding.

        Reading never changes the picture silently: transparency is flattened onto `background`
        (default white; `alpha="error"` refuses transparent images instead), `frame` picks one
        frame of an animation or multi-page file (default 0), and each such change is issued as a
        :class:`ContentChangeWarning` and listed in `CompressResult.notices`. `name` is how
        errors and notices name the image (e.g. its path when `image` is bytes).
        """
        t0 = time.perf_counter()
        budget = check_request(image, max_bytes=max_bytes, bpp=bpp, max_shift=max_shift, quality=quality, name=name)
        limit = check_max_pixels(max_pixels)
        reading = check_reading(alpha, background, frame)
        priority = check_priority(priority)
        loaded = load_image(image, max_pixels=DEFAULT_MAX_PIXELS if limit is None else limit, name=name, **reading)
        rgb = loaded.pixels
        check_dimensions(rgb.shape[1], rgb.shape[0])  # another frame than the first may be larger
        for text in loaded.notices:
            warnings.warn(text, ContentChangeWarning, stacklevel=2)
        try:
            return self._compress(image, loaded, reading["background"], budget, priority, strip, t0)
        except MemoryError:
            h, w = rgb.shape[:2]
            raise CompressError(
                f"out of memory encoding this {w}x{h} image; downscale it or lower max_pixels"
            ) from None

    def _compress(
        self, image: ImageInput, loaded: LoadedImage, background: tuple[int, int, int], budget: Budget,
        priority: np.ndarray | None, strip: bool, t0: float,
    ) -> CompressResult:
        rgb = loaded.pixels
        meta = read_meta(image)
        if loaded.composited and len(set(background)) > 1:  # grey + alpha on a coloured background is colour
            meta = ImageMeta(meta.icc_profile, meta.exif, greyscale=False)
        # the model sees RGB; a greyscale source is encoded from one channel, as one component
        pixels = np.ascontiguousarray(rgb[:, :, 0]) if meta.greyscale else rgb
        carried = meta.stripped() if strip else meta
        overhead = sum(map(len, metadata_segments(carried.icc_profile, carried.exif, 1 if meta.greyscale else 3)))
        scorer = ShiftScorer(self.model, rgb, self.batch_size)
        allocation = self.allocation if priority is None else GivenMapAllocation(priority)
        # the search wants block priorities; RD pruning takes block means of a pixel map itself
        grid = rgb.shape[:2] if self.method == "rd" else luma_block_shape(*rgb.shape[:2])
        prio = allocation.priority(rgb, to_image_size(scorer.saliency, rgb.shape[:2]), grid)
        if budget.max_shift is not None:
            found = self._min_bytes(pixels, prio, budget.max_shift, scorer)
        else:
            target, plain = self._budget_bytes(budget, pixels, overhead)
            found = self.search.run(pixels, prio, target, plain, scorer)
            found = self._guard(found, scorer)
        return _result(found, carried, budget.describe(), scorer, time.perf_counter() - t0, loaded.notices)

    def _guard(self, found: SearchResult, scorer: ShiftScorer) -> SearchResult:
        """rd: the plain JPEG instead of a pruned output that is worse where people are predicted
        to look (saliency-weighted PSNR below the plain one's, which has at least as many bytes).
        Happens on very smooth images (e.g. upscaled ones), where the finer base buys little."""
        if not self.guard or self.method != "rd" or found.best.data == found.plain.data:
            return found
        if scorer.weighted_psnr(found.best.data) >= scorer.weighted_psnr(found.plain.data):
            return found
        return SearchResult(found.plain, found.plain, found.plain_quality)

    def _budget_bytes(self, budget: Budget, pixels: np.ndarray, overhead: int = 0) -> tuple[int, PlainJpeg]:
        """Bytes of a size budget for the image data, and the plain JPEG that sets them (a quality
        budget) or fits them best (max_bytes, bpp). A size budget is for the whole file, so the
        `overhead` bytes of the carried metadata are taken off it."""
        if budget.quality is not None:
            plain = PlainJpeg(budget.quality, self.plain(pixels, budget.quality))
            return len(plain.data), plain
        h, w = pixels.shape[:2]
        total = budget.max_bytes if budget.max_bytes is not None else int(budget.bpp * h * w / 8)
        if total < 1:
            raise CompressError(f"a budget of {budget.bpp:g} bpp is {budget.bpp * h * w / 8:.3g} bytes for this "
                                f"{w}x{h} image: too small for any JPEG")
        carried = f"the source's ICC profile and EXIF take {overhead} bytes of the {total} (strip=True drops them)"
        if overhead >= total:
            raise CompressError(f"a budget of {total} bytes is too small for this image: {carried}")
        try:
            return total - overhead, self.plain_at_bytes(pixels, total - overhead)
        except CompressError as exc:
            if not overhead:
                raise
            raise CompressError(f"{exc}, and {carried}") from None

    def _min_bytes(
        self, pixels: np.ndarray, prio: np.ndarray | None, max_shift: float, scorer: ShiftScorer
    ) -> SearchResult:
        """Fewest bytes with predicted shift <= max_shift: bisection over plain-quality budgets,
        each encoded by the method (the search quickly: the first three families, no refinement)."""
        lo, hi = 5, 100
        found = None
        quick = {"families": self.search.families[:3], "refine_steps": 0} if self.method == "search" else {}
        while lo <= hi:
            q = (lo + hi) // 2
            plain = PlainJpeg(q, self.plain(pixels, q))
            out = self.search.run(pixels, prio, len(plain.data), plain, scorer, **quick)
            if out.best.shift <= max_shift:
                found, hi = out, q - 1
            else:
                lo = q + 1
        if found is None:
            raise CompressError(f"no encoding reaches a predicted shift <= {max_shift:g}, even near-lossless")
        return found


def _result(
    found: SearchResult, meta: ImageMeta, target: str, scorer: ShiftScorer, seconds: float, notices: tuple[str, ...]
) -> CompressResult:
    """The chosen encoding with `meta`'s ICC profile and EXIF inserted (what fits its component
    count: pyjpegli writes even grey as three); the baseline's bytes count the same metadata,
    so both sizes compare like for like."""
    h, w = scorer.rgb.shape[:2]
    best, plain = found.best, found.plain
    data = insert_metadata(best.data, meta.icc_profile, meta.exif)
    plain_bytes = len(plain.data) + len(data) - len(best.data)
    baseline = Figures(
        bytes=plain_bytes, bpp=plain_bytes * 8 / (h * w), predicted_shift=plain.shift, quality=found.plain_quality,
        predicted_wpsnr=scorer.weighted_psnr(plain.data),
    )
    return CompressResult(
        data=data, width=w, height=h, bytes=len(data), bpp=len(data) * 8 / (h * w),
        predicted_shift=best.shift, predicted_wpsnr=scorer.weighted_psnr(best.data),
        quality_map=best.quality_map, baseline=baseline, target=target,
        model_evaluations=scorer.evaluations, seconds=seconds, saliency_lowres=scorer.saliency,
        ssm_lowres=best.ssm, baseline_ssm_lowres=plain.ssm, block_weights=found.block_weights, notices=notices,
    )


_ENCODERS: dict[tuple, Encoder] = {}


def compress(
    image: ImageInput,
    *,
    model: str = "default",
    device: str = "auto",
    backend: str | None = None,
    method: str = DEFAULT_METHOD,
    strength: float = 1.0,
    **options,
) -> CompressResult:
    """One-call API; the model stays loaded for later calls with the same model, device,
    back-end, method and strength."""
    key = (model, device, backend, check_method(method), check_strength(strength))
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(model, device, backend, method=method, strength=strength)
    return _ENCODERS[key].compress(image, **options)
