"""How an encoding of one image is scored while the encoder searches: the model's predicted shift
(SSM) and the PSNR, plain or weighted by the predicted saliency, streamed so that one full-size
decode is alive at a time.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from sspcodec.decoding import decode_jpeg
from sspnet import SSPNet

from .options import CompressError


class Score(NamedTuple):
    """What the model and a fidelity check say of one encoding."""

    ssm: np.ndarray  # predicted SSM over the image, at any resolution (sspcodec: the model's)
    psnr: float  # global PSNR against the original, dB


#: Scores a batch of encodings (the caller owns the model and counts its evaluations).
Scorer = Callable[[Sequence[bytes]], list[Score]]


def shift_score(ssm: np.ndarray) -> float:
    """The predicted shift of an encoding: mean of its SSM over the image (0 = no shift, 1 = max)."""
    return float(np.mean(ssm))


def psnr_streamed(
    reference: np.ndarray, decoded: np.ndarray, weights: np.ndarray | None = None, band: int = 1 << 20
) -> float:
    """`sspcodec.quality.weighted_psnr` over bands of about `band` values, so no full-size float
    copy of a large image is ever made. `weights` is a low-resolution map covering the image
    (e.g. the model's SM_r): each pixel takes the weight of the cell it falls in. Without
    weights it is `sspcodec.quality.psnr`, summed exactly in integers."""
    if reference.shape != decoded.shape:
        raise CompressError(f"a candidate decoded to {decoded.shape}, not the image's {reference.shape}")
    h, w = reference.shape[:2]
    rows = max(1, band // max(1, reference[0].size))
    # a generator: one band's difference alive at a time
    bands = ((r, reference[r : r + rows].astype(np.int64) - decoded[r : r + rows]) for r in range(0, h, rows))
    if weights is None:
        mse = sum(int(np.dot(d.ravel(), d.ravel())) for _, d in bands) / reference.size
    else:
        wmap = np.asarray(weights, np.float64)
        row_of = np.arange(h) * wmap.shape[0] // h  # the weight cell of each pixel row / column
        cols = wmap[:, np.arange(w) * wmap.shape[1] // w]
        sse = total = 0.0
        for r, d in bands:
            wb = cols[row_of[r : r + d.shape[0]]]
            sse += float((wb * (d * d).reshape(d.shape[0], w, -1).mean(axis=2)).sum())
            total += float(wb.sum())
        mse = sse / max(total, 1e-300)
    return float("inf") if mse <= 0 else float(10 * np.log10(255.0**2 / mse))


def _finite(m: np.ndarray, what: str) -> np.ndarray:
    """`m`, or CompressError when the model predicted NaN or infinity (broken weights)."""
    if not np.isfinite(m).all():
        raise CompressError(
            f"the model predicted a non-finite {what} (NaN or infinity): its weights are broken; "
            "use the packaged model or a checkpoint that `sspnet` verifies on load"
        )
    return m


class ShiftScorer:
    """Predicted SSM (at the model's resolution) and PSNR of encodings of one image, counting
    model evaluations. SM_r is computed once here; each encoding then costs one pass of the
    distorted side. Encodings are a stream: each is decoded, measured and shrunk to the model's
    canvas before the next is decoded, so one full-size decode is alive at a time."""

    def __init__(self, model: SSPNet, rgb: np.ndarray, batch_size: int):
        self.model, self.rgb, self.batch_size = model, rgb, batch_size
        self.cache = model.prepare(rgb)
        self.saliency = _finite(self.cache.saliency_crop(), "saliency")  # SM_r, model resolution
        self.evaluations = self.cache.passes  # SM_r and its other test-time views
        self._wpsnr: dict[bytes, float] = {}

    def __call__(self, datas: Sequence[bytes]) -> list[Score]:
        self.evaluations += len(datas)
        scores: list[Score] = []
        for i in range(0, len(datas), self.batch_size):
            canvases, psnrs = [], []
            for data in datas[i : i + self.batch_size]:
                pixels = decode_jpeg(data)
                psnrs.append(psnr_streamed(self.rgb, pixels))
                canvases.append(self.model.to_canvas(pixels))
                del pixels  # before the next decode
            ssms = self.model.shift_on_canvases(self.cache, canvases)
            scores += [Score(_finite(m, "shift map"), p) for m, p in zip(ssms, psnrs)]
        return scores

    def weighted_psnr(self, data: bytes) -> float:
        """PSNR of one encoding weighted by the predicted SM_r (no model evaluation: one decode,
        remembered per encoding, so the guard and the result share it)."""
        if data not in self._wpsnr:
            self._wpsnr[data] = psnr_streamed(self.rgb, decode_jpeg(data), self.saliency)
        return self._wpsnr[data]


__all__ = ["Score", "Scorer", "ShiftScorer", "psnr_streamed", "shift_score"]
