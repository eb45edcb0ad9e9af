"""What `Encoder.compress` returns: the JPEG bytes, its figures and the plain JPEG's beside
them, the model's maps (kept at its resolution, full size on first use) and what reading changed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sspnet.preprocess import Box, unletterbox

from .backends.markers import insert_metadata
from .methods.base import GuardNote

if TYPE_CHECKING:
    from .metadata import ImageMeta
    from .methods import SearchResult
    from .scoring import ShiftScorer


def to_image_size(lowres: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map at the model's resolution (cropped to the image) resized to the image's (h, w):
    what `sspnet` returns for full-size maps (:func:`sspnet.preprocess.unletterbox`)."""
    return unletterbox(lowres, Box(0, 0, *lowres.shape), shape, lowres.shape).clip(0, 1)


@dataclass
class Figures:
    """Size and predicted shift of one encoding; `quality` is set for plain JPEGs.
    `predicted_wpsnr`: PSNR (dB) with each pixel's squared error weighted by the model's
    predicted saliency of the source, i.e. quality where people are predicted to look."""

    bytes: int
    bpp: float
    predicted_shift: float
    quality: float | None = None
    predicted_wpsnr: float | None = None


@dataclass(kw_only=True)
class CompressResult:
    data: bytes = field(repr=False)
    width: int
    height: int
    bytes: int
    bpp: float
    predicted_shift: float
    # dB: PSNR weighted by the model's predicted saliency of the source (as Figures.predicted_wpsnr)
    predicted_wpsnr: float
    # per 8x8 luma block, libjpeg quality (rd: the pruned base's, the same in every block)
    quality_map: np.ndarray = field(repr=False)
    baseline: Figures  # a plain JPEG of (nearly) equal bytes, same back-end, same metadata
    target: str  # what was asked, in words
    model_evaluations: int
    seconds: float
    # The model's maps at its input resolution, cropped to the image; `saliency`, `ssm` and
    # `baseline_ssm` are the same maps at the image's size, made on first use.
    saliency_lowres: np.ndarray = field(repr=False)  # predicted SM_r in [0, 1]
    ssm_lowres: np.ndarray = field(repr=False)  # predicted SSM of the output
    baseline_ssm_lowres: np.ndarray = field(repr=False)
    # rd: per 8x8 luma block, the weight in [0, 1] that decided which coefficients survive
    block_weights: np.ndarray | None = field(default=None, repr=False)
    # what reading changed in the picture, in words (transparency flattened, a frame chosen, ...);
    # each was also issued as a ContentChangeWarning
    notices: tuple[str, ...] = ()
    # the metadata blocks carried into the output (icc, exif, xmp, iptc, comment)
    metadata: tuple[str, ...] = ()
    # what the method's guard did (rd: rounds of quality given back where the output's predicted
    # SSM rose above the plain JPEG's; why the plain JPEG was written instead, if it was)
    guard: GuardNote = field(default_factory=GuardNote)

    @cached_property
    def saliency(self) -> np.ndarray:
        """Predicted SM_r of the source, HxW in [0, 1]."""
        return to_image_size(self.saliency_lowres, (self.height, self.width))

    @cached_property
    def ssm(self) -> np.ndarray:
        """Predicted SSM of the output, HxW in [0, 1]."""
        return to_image_size(self.ssm_lowres, (self.height, self.width))

    @cached_property
    def baseline_ssm(self) -> np.ndarray:
        """Predicted SSM of the plain JPEG, HxW in [0, 1]."""
        return to_image_size(self.baseline_ssm_lowres, (self.height, self.width))

    @property
    def shift_reduction(self) -> float:
        """1 - shift / plain-JPEG shift (0.3 = 30% less predicted attention shift)."""
        b = self.baseline.predicted_shift
        return 1.0 - self.predicted_shift / b if b > 0 else 0.0

    @property
    def predicted_gain_db(self) -> float:
        """predicted_wpsnr minus the plain JPEG's: the dB gained where people are predicted to look.
        Unlike the mean predicted shift (noise-level between encodings of equal bytes), this ranks
        encodings as real fixations do (docs/BENCHMARKS.md, benchmarks/shift_rank.py)."""
        b = self.baseline.predicted_wpsnr
        if b is None:
            return float("nan")
        return 0.0 if b == self.predicted_wpsnr else self.predicted_wpsnr - b  # inf - inf: identical

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (no arrays): strict JSON (no NaN or Infinity: null), and one name per
        quantity at every level (the baseline's figures are named as the output's)."""
        b = self.baseline
        baseline = {"bytes": b.bytes, "bpp": round(b.bpp, 4), "predicted_shift": b.predicted_shift,
                    "quality": b.quality, "predicted_wpsnr_db": _json_db(b.predicted_wpsnr)}
        return _strict({
            "width": self.width, "height": self.height, "bytes": self.bytes, "bpp": round(self.bpp, 4),
            "predicted_shift": self.predicted_shift, "predicted_wpsnr_db": _json_db(self.predicted_wpsnr),
            "predicted_gain_db": _json_db(self.predicted_gain_db), "quality_min": float(self.quality_map.min()),
            "quality_max": float(self.quality_map.max()), "target": self.target,
            "baseline": baseline, "shift_reduction": round(self.shift_reduction, 4),
            "model_evaluations": self.model_evaluations, "seconds": round(self.seconds, 3),
            "metadata": list(self.metadata), "notices": list(self.notices),
            "guard": {"acted": self.guard.acted, "rounds": self.guard.rounds, "fallback": self.guard.fallback or None},
        })

    def save(self, path: str | os.PathLike) -> Path:
        from sspnet.files.outputs import write_bytes_atomic

        return write_bytes_atomic(path, self.data)


def guard_words(note: GuardNote) -> str:
    """What the guard did, in words (the CLI's ``guard:`` line)."""
    gave = (f"gave quality back where the output's predicted SSM rose above the plain JPEG's "
            f"({note.rounds} round{'s' if note.rounds != 1 else ''})") if note.rounds else ""
    if not note.fallback:
        return gave
    return f"{gave}; then wrote the plain JPEG: {note.fallback}" if gave else f"wrote the plain JPEG: {note.fallback}"


def _json_db(x: float | None) -> float | None:
    """dB for JSON: rounded, None where infinite (a lossless encoding) or undefined."""
    return round(float(x), 3) if x is not None and np.isfinite(x) else None


def _strict(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, so `json.dumps` writes strict JSON."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def build_result(
    found: SearchResult, meta: ImageMeta, target: str, scorer: ShiftScorer, seconds: float, notices: tuple[str, ...]
) -> CompressResult:
    """The chosen encoding with `meta`'s ICC profile and EXIF inserted (what fits its component
    count: pyjpegli writes even grey as three); the baseline's bytes count the same metadata,
    so both sizes compare like for like."""
    h, w = scorer.rgb.shape[:2]
    best, plain = found.best, found.plain
    data = insert_metadata(best.data, meta.icc_profile, meta.exif, meta.others())
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
        metadata=tuple(meta.names()), guard=found.guard,
    )


__all__ = ["CompressResult", "Figures", "build_result", "guard_words", "to_image_size"]
