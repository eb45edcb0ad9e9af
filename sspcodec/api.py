"""Python API: `compress(image, ...)` and `Encoder` (keeps the model loaded across images).

Wiring only: read -> the model's SM_r of the pristine image, once (it is all a shift prediction
needs from the pristine side) -> the budget (:class:`Budget`) -> a block priority map (an
:class:`~sspcodec.search.Allocation`) -> the candidate search (:class:`~sspcodec.search.
CandidateSearch`) at the budget's bytes, candidates scored by predicted shift -> one JPEG.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sspnet import SSPNet, load_model

from .backends import get_backend
from .io import decode_jpeg, parse_size, read_image
from .quality import psnr
from .quant import luma_block_shape
from .search import (
    DEFAULT_FAMILIES,
    Allocation,
    CandidateFamily,
    CandidateSearch,
    GivenMapAllocation,
    PlainJpeg,
    SaliencyAllocation,
    Score,
    SearchResult,
)

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image
DEFAULT_QUALITY = 85


class CompressError(ValueError):
    """The request cannot be met (bad options, budget too small, ...); the message says why."""


@dataclass(frozen=True)
class Budget:
    """The one target of a request, checked before any work: a byte size, bits per pixel, the
    bytes of a plain JPEG at a quality (the default, q85), or a predicted shift to stay under."""

    max_bytes: int | None = None
    bpp: float | None = None
    max_shift: float | None = None
    quality: int | None = None

    @classmethod
    def parse(
        cls,
        *,
        max_bytes: int | str | None = None,
        bpp: float | None = None,
        max_shift: float | None = None,
        quality: int | None = None,
    ) -> Budget:
        """At most one target (none: plain quality 85); sizes like "150KB" are parsed here."""
        options = (("max_bytes", max_bytes), ("bpp", bpp), ("max_shift", max_shift), ("quality", quality))
        given = [k for k, v in options if v is not None]
        if len(given) > 1:
            raise CompressError(f"give at most one target, got {', '.join(given)}")
        if max_bytes is not None:
            try:
                return cls(max_bytes=parse_size(max_bytes))
            except (TypeError, ValueError) as exc:
                raise CompressError(str(exc)) from exc
        if bpp is not None:
            if bpp <= 0:
                raise CompressError("--bpp must be positive")
            return cls(bpp=bpp)
        if max_shift is not None:
            if max_shift < 0:
                raise CompressError("--max-shift must be >= 0")
            return cls(max_shift=max_shift)
        q = DEFAULT_QUALITY if quality is None else int(quality)
        if not 1 <= q <= 100:
            raise CompressError(f"quality must be in 1..100, got {q}")
        return cls(quality=q)

    def describe(self) -> str:
        """The target in words (`CompressResult.target`)."""
        if self.max_bytes is not None:
            return f"at most {self.max_bytes} bytes"
        if self.bpp is not None:
            return f"at most {self.bpp:g} bpp"
        if self.max_shift is not None:
            return f"predicted shift at most {self.max_shift:g}"
        return f"the bytes of a plain quality-{self.quality} JPEG"


@dataclass
class Figures:
    """Size and predicted shift of one encoding; `quality` is set for plain JPEGs."""

    bytes: int
    bpp: float
    predicted_shift: float
    quality: float | None = None


@dataclass(kw_only=True)
class CompressResult:
    data: bytes = field(repr=False)
    width: int
    height: int
    bytes: int
    bpp: float
    predicted_shift: float
    quality_map: np.ndarray = field(repr=False)  # per 8x8 luma block, libjpeg quality
    baseline: Figures  # a plain JPEG of (nearly) equal bytes, same back-end
    target: str  # what was asked, in words
    model_evaluations: int
    seconds: float
    saliency: np.ndarray = field(repr=False)  # predicted SM_r, HxW in [0, 1]
    ssm: np.ndarray = field(repr=False)  # predicted SSM of the output
    baseline_ssm: np.ndarray = field(repr=False)

    @property
    def shift_reduction(self) -> float:
        """1 - shift / plain-JPEG shift (0.3 = 30% less predicted attention shift)."""
        b = self.baseline.predicted_shift
        return 1.0 - self.predicted_shift / b if b > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (no arrays)."""
        return {
            "width": self.width, "height": self.height, "bytes": self.bytes, "bpp": round(self.bpp, 4),
            "predicted_shift": self.predicted_shift, "quality_min": float(self.quality_map.min()),
            "quality_max": float(self.quality_map.max()), "target": self.target,
            "baseline": asdict(self.baseline), "shift_reduction": round(self.shift_reduction, 4),
            "model_evaluations": self.model_evaluations, "seconds": round(self.seconds, 3),
        }

    def save(self, path: str | os.PathLike) -> Path:
        from .io import write_bytes_atomic

        return write_bytes_atomic(path, self.data)


class _ShiftScorer:
    """Predicted SSM and PSNR of encodings of one image, counting model evaluations. SM_r is
    computed once here; each encoding then costs one pass of the distorted side."""

    def __init__(self, model: SSPNet, rgb: np.ndarray, batch_size: int):
        self.model, self.rgb, self.batch_size = model, rgb, batch_size
        self.cache = model.prepare(rgb)
        self.saliency = model.cached_saliency(self.cache)
        self.evaluations = 1

    def __call__(self, datas: Sequence[bytes]) -> list[Score]:
        self.evaluations += len(datas)
        decoded = [decode_jpeg(d) for d in datas]
        preds = self.model.predict_shift_cached(self.cache, decoded, self.batch_size)
        return [Score(p.ssm, psnr(self.rgb, d)) for p, d in zip(preds, decoded)]


class Encoder:
    """Keeps the SSPNet model loaded; one `compress` call per image.

    `allocation` decides which blocks deserve the bytes (default: the model's saliency);
    `search` (built from `families`, `refine_steps`, `max_psnr_drop`, `keep_dc`; an attribute
    that may be replaced) picks among the candidate encodings. `max_psnr_drop` (dB) guards
    global fidelity: a candidate whose PSNR falls more than this below the plain JPEG's is not
    chosen. `keep_dc=False` reproduces the outputs of the encoder before the DC fix.
    """

    def __init__(
        self,
        model: str | SSPNet = "default",
        device: str = "auto",
        backend: str = "turbo",
        families: Sequence[CandidateFamily] = DEFAULT_FAMILIES,
        refine_steps: int = 1,
        batch_size: int = 4,
        max_psnr_drop: float | None = 1.5,
        *,
        allocation: Allocation | None = None,
        keep_dc: bool = True,
    ):
        self.model = load_model(model, device) if isinstance(model, str) else model.eval()
        self.backend = get_backend(backend)
        if not self.backend.supports_dct:
            raise CompressError(f"back-end '{self.backend.name}' cannot rewrite DCT blocks; use turbo or mozjpeg")
        self.allocation: Allocation = allocation if allocation is not None else SaliencyAllocation()
        self.search = CandidateSearch(
            self.backend, families, refine_steps=refine_steps, max_psnr_drop=max_psnr_drop, keep_dc=keep_dc
        )
        self.batch_size = batch_size

    # -- plain JPEG, the reference every figure is compared with --
    def plain(self, rgb: np.ndarray, quality: int) -> bytes:
        return self.backend.encode(rgb, int(quality), optimize=True)

    def plain_at_bytes(self, rgb: np.ndarray, target: int) -> PlainJpeg:
        """Highest integer quality whose plain JPEG fits `target` bytes: bisection (~7 encodes),
        then a look at the next qualities, since size is not strictly monotonic in quality."""
        lo, hi, best = 1, 100, None
        while lo <= hi:
            q = (lo + hi) // 2
            data = self.plain(rgb, q)
            if len(data) <= target:
                best, lo = PlainJpeg(q, data), q + 1
            else:
                hi = q - 1
        if best is None:
            need = len(self.plain(rgb, 1))
            raise CompressError(
                f"a budget of {target} bytes is too small for this image: "
                f"even a plain quality-1 JPEG needs {need} bytes"
            )
        for q in range(best.quality + 1, min(best.quality + 4, 101)):
            data = self.plain(rgb, q)
            if len(data) <= target:
                best = PlainJpeg(q, data)
        return best

    def compress(
        self,
        image: ImageInput,
        *,
        max_bytes: int | str | None = None,
        bpp: float | None = None,
        max_shift: float | None = None,
        quality: int | None = None,
        priority: np.ndarray | None = None,
    ) -> CompressResult:
        """One JPEG at the byte budget with the least predicted shift (or, with `max_shift`, the
        fewest bytes whose predicted shift stays at or below it).

        Budget, at most one of: `max_bytes` (int or "150KB"), `bpp` (bits per pixel), `quality`
        (the bytes of a plain JPEG at that quality); default: plain quality 85. `priority` replaces
        the encoder's allocation with this map for one call (benchmarks drive it with other maps).
        """
        t0 = time.perf_counter()
        budget = Budget.parse(max_bytes=max_bytes, bpp=bpp, max_shift=max_shift, quality=quality)
        rgb = read_image(image)
        scorer = _ShiftScorer(self.model, rgb, self.batch_size)
        allocation = self.allocation if priority is None else GivenMapAllocation(priority)
        prio = allocation.priority(rgb, scorer.saliency, luma_block_shape(*rgb.shape[:2]))
        if budget.max_shift is not None:
            found = self._min_bytes(rgb, prio, budget.max_shift, scorer)
        else:
            target, plain = self._budget_bytes(budget, rgb)
            found = self.search.run(rgb, prio, target, plain, scorer)
        return _result(found, rgb, budget.describe(), scorer, time.perf_counter() - t0)

    def _budget_bytes(self, budget: Budget, rgb: np.ndarray) -> tuple[int, PlainJpeg]:
        """Bytes of a size budget, and the plain JPEG that sets them (a quality budget) or fits
        them best (max_bytes, bpp)."""
        if budget.quality is not None:
            plain = PlainJpeg(budget.quality, self.plain(rgb, budget.quality))
            return len(plain.data), plain
        h, w = rgb.shape[:2]
        target = budget.max_bytes if budget.max_bytes is not None else int(budget.bpp * h * w / 8)
        return target, self.plain_at_bytes(rgb, target)

    def _min_bytes(
        self, rgb: np.ndarray, prio: np.ndarray | None, max_shift: float, scorer: _ShiftScorer
    ) -> SearchResult:
        """Fewest bytes with predicted shift <= max_shift: bisection over plain-quality budgets,
        each searched quickly (the first three families, no refinement)."""
        lo, hi = 5, 100
        found = None
        quick = self.search.families[:3]
        while lo <= hi:
            q = (lo + hi) // 2
            plain = PlainJpeg(q, self.plain(rgb, q))
            out = self.search.run(rgb, prio, len(plain.data), plain, scorer, families=quick, refine_steps=0)
            if out.best.shift <= max_shift:
                found, hi = out, q - 1
            else:
                lo = q + 1
        if found is None:
            raise CompressError(f"no encoding reaches a predicted shift <= {max_shift:g}, even near-lossless")
        return found


def _result(found: SearchResult, rgb: np.ndarray, target: str, scorer: _ShiftScorer, seconds: float) -> CompressResult:
    h, w = rgb.shape[:2]
    best, plain = found.best, found.plain
    baseline = Figures(
        bytes=len(plain.data), bpp=len(plain.data) * 8 / (h * w), predicted_shift=plain.shift,
        quality=found.plain_quality,
    )
    return CompressResult(
        data=best.data, width=w, height=h, bytes=len(best.data), bpp=len(best.data) * 8 / (h * w),
        predicted_shift=best.shift, quality_map=best.quality_map, baseline=baseline, target=target,
        model_evaluations=scorer.evaluations, seconds=seconds, saliency=scorer.saliency, ssm=best.ssm,
        baseline_ssm=plain.ssm,
    )


_ENCODERS: dict[tuple, Encoder] = {}


def compress(
    image: ImageInput, *, model: str = "default", device: str = "auto", backend: str = "turbo", **options
) -> CompressResult:
    """One-call API; the model stays loaded for later calls with the same model/device/back-end."""
    key = (model, device, backend)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(model, device, backend)
    return _ENCODERS[key].compress(image, **options)
