"""Python API: `compress(image, ...)` and `Encoder` (keeps the model loaded across images).

Data path: read -> SM_r and pristine features once -> plain-JPEG budget -> candidate quality maps
fitted to the budget -> decode -> predicted SSMs in batches -> pick -> refine -> one JPEG.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sspnet import SSPNet, load_model

from .backends import get_backend
from .blocks import CoefficientImage, luma_block_shape, prefilter_image
from .io import decode_jpeg, parse_size, read_image
from .optimize import DEFAULT_SHAPES, Shape, block_priority, fit_to_bytes, quality_map, refine_priority, shift_score
from .quality import psnr

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image
DEFAULT_QUALITY = 85
MIN_QUALITY = 20


class CompressError(ValueError):
    """The request cannot be met (bad options, budget too small, ...); the message says why."""


@dataclass
class Figures:
    """Size and predicted shift of one encoding; `quality` is set for plain JPEGs."""

    bytes: int
    bpp: float
    predicted_shift: float
    quality: float | None = None


@dataclass
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



class Encoder:
    """Keeps the SSPNet model loaded; one `compress` call per image."""

    def __init__(self, model: str | SSPNet = "default", device: str = "auto", backend: str = "turbo",
                 shapes: tuple[Shape, ...] = DEFAULT_SHAPES, refine_steps: int = 1, batch_size: int = 4,
                 max_psnr_drop: float | None = 1.5):
        """`max_psnr_drop` (dB) guards global fidelity: a candidate whose PSNR falls more than
        this below the plain JPEG's is not chosen, however little shift it is predicted to cause."""
        self.model = load_model(model, device) if isinstance(model, str) else model.eval()
        self.backend = get_backend(backend)
        if not self.backend.supports_dct:
            raise CompressError(f"back-end '{self.backend.name}' cannot rewrite DCT blocks; use turbo or mozjpeg")
        self.shapes = shapes
        self.refine_steps = refine_steps
        self.batch_size = batch_size
        self.max_psnr_drop = max_psnr_drop

    # -- plain JPEG, the reference every figure is compared with --
    def plain(self, rgb: np.ndarray, quality: int) -> bytes:
        return self.backend.encode(rgb, int(quality), optimize=True)

    def plain_at_bytes(self, rgb: np.ndarray, target: int) -> tuple[int, bytes]:
        """Highest integer quality whose plain JPEG fits `target` bytes: bisection (~7 encodes),
        then a look at the next qualities, since size is not strictly monotonic in quality."""
        lo, hi, best = 1, 100, None
        while lo <= hi:
            q = (lo + hi) // 2
            data = self.plain(rgb, q)
            if len(data) <= target:
                best, lo = (q, data), q + 1
            else:
                hi = q - 1
        if best is None:
            need = len(self.plain(rgb, 1))
            raise CompressError(f"a budget of {target} bytes is too small for this image: even a plain quality-1 JPEG needs {need} bytes")
        for q in range(best[0] + 1, min(best[0] + 4, 101)):
            data = self.plain(rgb, q)
            if len(data) <= target:
                best = (q, data)
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
        the predicted saliency as the allocation map (benchmarks drive it with other maps).
        """
        t0 = time.perf_counter()
        given = [k for k, v in (("max_bytes", max_bytes), ("bpp", bpp), ("max_shift", max_shift), ("quality", quality)) if v is not None]
        if len(given) > 1:
            raise CompressError(f"give at most one target, got {', '.join(given)}")
        rgb = read_image(image)
        h, w = rgb.shape[:2]
        cache = self.model.prepare(rgb)
        sm_r = self.model.cached_saliency(cache)
        evals = 1
        grid = luma_block_shape(h, w)
        prio = block_priority(sm_r if priority is None else priority, grid)

        def predict(datas: list[bytes]) -> list[tuple[np.ndarray, float]]:
            """(predicted SSM, PSNR in dB) of each encoding."""
            nonlocal evals
            evals += len(datas)
            decoded = [decode_jpeg(d) for d in datas]
            preds = self.model.predict_shift_cached(cache, decoded, self.batch_size)
            return [(p.ssm, psnr(rgb, d)) for p, d in zip(preds, decoded)]

        known = None  # (quality, bytes) of a plain JPEG already made for the budget
        if max_shift is not None:
            return self._min_bytes(rgb, prio, max_shift, predict, sm_r, t0, lambda: evals)
        if max_bytes is not None:
            target = parse_size(max_bytes) if isinstance(max_bytes, str) else int(max_bytes)
            words = f"at most {target} bytes"
        elif bpp is not None:
            if bpp <= 0:
                raise CompressError("--bpp must be positive")
            target, words = int(bpp * h * w / 8), f"at most {bpp:g} bpp"
        else:
            q = DEFAULT_QUALITY if quality is None else int(quality)
            if not 1 <= q <= 100:
                raise CompressError(f"quality must be in 1..100, got {q}")
            known = (q, self.plain(rgb, q))
            target, words = len(known[1]), f"the bytes of a plain quality-{q} JPEG"
        out = self._at_bytes(rgb, prio, target, predict, plain=known)
        if out is None:
            raise CompressError(f"{target} bytes is too small for this {w}x{h} image even at quality 1")
        data, qmap, ssm, base = out
        return CompressResult(
            data, w, h, len(data), len(data) * 8 / (h * w), shift_score(ssm), qmap, base[0], words,
            evals, time.perf_counter() - t0, sm_r, ssm, base[1],
        )

    def _at_bytes(self, rgb, prio, target, predict, shapes=None, refine_steps=None, plain=None):
        """Best of the candidate shapes at `target` bytes, refined towards where shift appears.
        `plain`: the (quality, bytes) plain JPEG that set the budget, when there is one."""
        h, w = rgb.shape[:2]
        q_plain, plain_data = plain if plain is not None else self.plain_at_bytes(rgb, target)
        candidates: list[tuple[bytes, np.ndarray, Shape]] = []
        bases: dict[tuple, CoefficientImage] = {}
        ratios: dict = {}
        # A fixed +-0.5 quality dither: blocks sharing one quality would zero all their equal
        # coefficients at the same q, making size jump; spread out, it varies smoothly.
        dither = np.random.default_rng(0).uniform(-0.5, 0.5, prio.shape).astype(np.float32)

        def family(weights: np.ndarray, shape: Shape) -> tuple[bytes, np.ndarray] | None:
            q_hi = int(min(100, round(q_plain + shape.q_boost)))
            qmap = lambda q_lo: np.minimum(quality_map(weights, q_hi, q_lo, shape.gamma) + dither, q_hi)  # noqa: E731
            # a plain base serves every map; a prefiltered one depends on the map that shaped it
            key = (q_hi, shape.prefilter, shape.gamma, weights.tobytes()) if shape.prefilter else (q_hi,)
            if key not in bases:
                pixels = rgb
                if shape.prefilter:  # blur where priority is low, before the one real encode
                    pixels = prefilter_image(rgb, qmap(MIN_QUALITY), q_hi, shape.prefilter)
                bases[key] = CoefficientImage(self.backend.encode(pixels, q_hi, optimize=False), q_hi)
            enc = lambda q_lo: bases[key].encode(qmap(q_lo))  # noqa: E731
            est = lambda q_lo: bases[key].estimate_bytes(qmap(q_lo))  # noqa: E731
            fitted = fit_to_bytes(enc, target, float(min(MIN_QUALITY, q_plain)), float(q_hi), est, ratio=ratios.get(key, ratios.get("any")))
            if fitted is None:
                return None
            ratios[key] = ratios["any"] = fitted[2]  # later fits start from a calibrated estimate
            return fitted[1], qmap(fitted[0])

        for shape in shapes or self.shapes:
            c = family(prio, shape)
            if c is not None:
                candidates.append((*c, shape))
        scored = predict([plain_data] + [c[0] for c in candidates])
        (base_ssm, base_psnr), cand_scored = scored[0], scored[1:]
        n = h * w
        baseline = (Figures(len(plain_data), len(plain_data) * 8 / n, shift_score(base_ssm), q_plain), base_ssm)
        floor = -np.inf if self.max_psnr_drop is None else base_psnr - self.max_psnr_drop
        # The plain JPEG itself is a candidate: sspcodec never returns something predicted worse.
        pool = [(plain_data, np.full(prio.shape, float(q_plain), np.float32), base_ssm, None)]
        pool += [(d, qm, s, shape) for (d, qm, shape), (s, p) in zip(candidates, cand_scored) if p >= floor]
        best = min(pool, key=lambda c: shift_score(c[2]))
        weights = prio
        for _ in range(self.refine_steps if refine_steps is None else refine_steps):
            if best[3] is None:
                break
            weights = refine_priority(weights, block_priority(best[2], prio.shape, spread=0))
            c = family(weights, best[3])
            if c is None:
                break
            s, p = predict([c[0]])[0]
            if shift_score(s) < shift_score(best[2]) and p >= floor:
                best = (c[0], c[1], s, best[3])
        return best[0], best[1], best[2], baseline

    def _min_bytes(self, rgb, prio, max_shift, predict, sm_r, t0, evals):
        """Fewest bytes with predicted shift <= max_shift: bisection over plain-quality budgets."""
        if max_shift < 0:
            raise CompressError("--max-shift must be >= 0")
        h, w = rgb.shape[:2]
        lo, hi = 5, 100
        found = None
        quick = self.shapes[:3]
        while lo <= hi:
            q = (lo + hi) // 2
            data = self.plain(rgb, q)
            out = self._at_bytes(rgb, prio, len(data), predict, shapes=quick, refine_steps=0, plain=(q, data))
            if out is not None and shift_score(out[2]) <= max_shift:
                found, hi = out, q - 1
            else:
                lo = q + 1
        if found is None:
            raise CompressError(f"no encoding reaches a predicted shift <= {max_shift:g}, even near-lossless")
        data, qmap, ssm, base = found
        return CompressResult(
            data, w, h, len(data), len(data) * 8 / (h * w), shift_score(ssm), qmap, base[0],
            f"predicted shift at most {max_shift:g}", evals(), time.perf_counter() - t0, sm_r, ssm, base[1],
        )


_ENCODERS: dict[tuple, Encoder] = {}


def compress(image: ImageInput, *, model: str = "default", device: str = "auto", backend: str = "turbo", **options) -> CompressResult:
    """One-call API; the model stays loaded for later calls with the same model/device/back-end."""
    key = (model, device, backend)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(model, device, backend)
    return _ENCODERS[key].compress(image, **options)
