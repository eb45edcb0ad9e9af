"""Every codec on an image at equal bytes: the line-up, the budget, sweep and strength runs.

A budget is the bytes of plain jpegli at a quality; every codec writes its largest file within
it (quality bisection for the plain peers, lambda bisection for RD pruning, the candidate search
for sspcodec), so the figures compare quality at the same size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sspcodec.bench.encoders import PEERS, Codec, JpegliCodec, PrunedCodec, SspcodecCodec, fixed_priority, get_codec
from sspcodec.bench.judges import Judges
from sspcodec.bench.measures import Row, measure
from sspcodec.bench.testsets import BenchImage
from sspcodec.quant.settings import PruneSettings


def codecs_for(image: BenchImage, encoder: Any, centre: Any, saliency: np.ndarray, sspcodec: bool) -> list[Codec]:
    """The codecs compared on *image*: peers, sspcodec today (*encoder*, when *sspcodec*), and RD
    pruning driven by the model's *saliency*, the *centre* bias, half A of the observers (when
    the image has fixations) and uniform weights (the control)."""
    h, w = image.rgb.shape[:2]
    codecs: list[Codec] = [get_codec(n) for n in PEERS]
    if sspcodec:
        codecs.append(SspcodecCodec(encoder, "sspcodec"))
    codecs.append(PrunedCodec("rd-model", fixed_priority(saliency)))
    codecs.append(PrunedCodec("rd-centre", fixed_priority(centre.predict((h, w)))))
    if image.human_a is not None:
        codecs.append(PrunedCodec("rd-human-A", fixed_priority(image.human_a)))
    codecs.append(PrunedCodec("rd-uniform", fixed_priority(np.ones((h, w), np.float32))))
    return codecs


def jpegli_budget(rgb: np.ndarray, quality: int) -> int:
    """The bytes of plain jpegli at *quality*: the budget every codec is held to."""
    return len(JpegliCodec().encode(rgb, quality))


def run_budget(
    image: BenchImage, codecs: Sequence[Codec], quality: int, tmp: Path | None, judges: Judges | None = None
) -> dict[str, Row]:
    """Every codec at the bytes of jpegli at *quality*: metrics, bytes/budget, seconds."""
    budget = jpegli_budget(image.rgb, quality)
    rows = {}
    for codec in codecs:
        t0 = time.perf_counter()
        data = codec.encode_to_bytes(image.rgb, budget).data
        seconds = time.perf_counter() - t0
        rows[codec.name] = {**measure(image, data, codec, tmp, judges), "ratio": len(data) / budget,
                            "seconds": seconds}
    return rows


def sweep_qualities(step: int) -> tuple[int, ...]:
    """30, 30 + step, ... up to 95, always ending at 95."""
    return tuple(sorted(set(range(30, 95, step)) | {95}))


def run_sweep(
    image: BenchImage, codecs: Sequence[Codec], qualities: Sequence[int], tmp: Path | None,
    judges: Judges | None = None,
) -> dict:
    """Every codec at every quality: {codec: [row per quality]} (a failed point is None)."""
    out: dict[str, list[Row | None]] = {}
    for codec in codecs:
        out[codec.name] = []
        for q in qualities:
            try:
                out[codec.name].append(measure(image, codec.encode(image.rgb, q), codec, tmp, judges))
            except ValueError as exc:  # e.g. a budget the search cannot meet
                print(f"  {image.name} {codec.name} q{q}: skipped ({exc})")
                out[codec.name].append(None)
    return out


def run_strengths(
    image: BenchImage, drivers: dict[str, np.ndarray], strengths: Sequence[float], quality: int
) -> dict[str, dict[float, Row]]:
    """rd-pruning driven by each map at each strength, at the bytes of jpegli at *quality*:
    {driver: {strength: differences to that plain jpegli}} (no butteraugli: speed)."""
    jpegli = JpegliCodec()
    plain = jpegli.encode(image.rgb, quality)
    ref = measure(image, plain, jpegli, None)
    out: dict[str, dict[float, Row]] = {}
    for name, prio in drivers.items():
        out[name] = {}
        for st in strengths:
            codec = PrunedCodec(name, fixed_priority(prio), settings=PruneSettings(st))
            row = measure(image, codec.encode_to_bytes(image.rgb, len(plain)).data, codec, None)
            out[name][st] = {m: row[m] - ref[m] for m in ("psnr", "wpsnr_b", "ssim2")}
    return out


def evaluate(
    images: list[BenchImage], make_codecs: Callable[[BenchImage], list[Codec]], qualities: Sequence[int],
    sweep: Sequence[int], tmp: Path | None, judges: Judges | None = None,
) -> tuple[dict[int, list], list[dict]]:
    """Budget rows per quality and sweep curves per image, printing a progress line per image
    (*tmp*: a folder for butteraugli's PNGs, None to skip butteraugli)."""
    budgets: dict[int, list] = {q: [] for q in qualities}
    sweeps: list[dict] = []
    for k, image in enumerate(images):
        t0 = time.perf_counter()
        if tmp is not None:
            image.ref_png = tmp / f"ref{k}.png"
            Image.fromarray(image.rgb).save(image.ref_png)
        codecs = make_codecs(image)
        for q in qualities:
            budgets[q].append(run_budget(image, codecs, q, tmp, judges))
        if sweep:
            sweeps.append(run_sweep(image, codecs, sweep, tmp, judges))
        print(f"[{k + 1}/{len(images)}] {image.name} {image.rgb.shape[1]}x{image.rgb.shape[0]} "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return budgets, sweeps


__all__ = [
    "codecs_for",
    "evaluate",
    "jpegli_budget",
    "run_budget",
    "run_strengths",
    "run_sweep",
    "sweep_qualities",
]
