"""The pictures the codec benchmarks run on, with the human maps that score them.

Held-out OSIE + EyeCrowd images (the hash split ``sspnet train`` uses: never trained or tuned
on), Lanczos-downscaled by 2 because the stimuli are JPEGs (re-encoding a JPEG near its own grid
spikes PSNR), with their fixations scaled by the same factor; and Kodak PNGs (no fixations).
One place, so that every benchmark scores the same images the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


@dataclass
class BenchImage:
    """One test picture and the human maps that score it (None for Kodak)."""

    name: str
    rgb: np.ndarray
    human: np.ndarray | None = None  # all observers
    human_a: np.ndarray | None = None  # half A: drives rd-human-A
    human_b: np.ndarray | None = None  # half B: scores everything as wPSNR-B
    ref_png: Path | None = field(default=None, repr=False)  # for butteraugli
    # half B's fixations (x, y), in pixels: where the foveated judge puts the eye
    fixations_b: np.ndarray | None = field(default=None, repr=False)


def half_size(rgb: np.ndarray) -> np.ndarray:
    """Lanczos downscale by 2 (integer output size)."""
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((w // 2, h // 2), Image.LANCZOS))


def scale_fixations(xy: np.ndarray, full_hw: tuple[int, int], hw: tuple[int, int]) -> np.ndarray:
    """Fixations (0-based pixel centres) of a full-size image in the pixels of a resized copy."""
    sy, sx = hw[0] / full_hw[0], hw[1] / full_hw[1]
    return np.stack([(xy[:, 0] + 0.5) * sx - 0.5, (xy[:, 1] + 0.5) * sy - 0.5], axis=1)


def observer_halves(observer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the fixations of half A (observers at even positions of the sorted list) and B."""
    ids = np.unique(observer)
    a = np.isin(observer, ids[0::2])
    return a, ~a


def spread(items: list, n: int) -> list:
    """*n* items evenly spaced over the list (both data sets, not the first set only)."""
    return items[:: max(1, len(items) // max(n, 1))][:n]


def held_out_images(roots: Sequence[Path], limit: int, part: str = "test") -> tuple[list[BenchImage], Any]:
    """The held-out images (half size, with human maps) and a centre bias
    (:class:`sspnet.baselines.CenterBias`) fitted on the train split. *part*: "test" (the
    benchmark's images) or "val" (the split's validation images, for choosing settings without
    looking at the test images)."""
    from sspnet.baselines import CenterBias
    from sspnet.maps import saliency_map
    from sspnet.training.experiments import read_saliency_items, split_holdout

    items = read_saliency_items(list(roots))
    train, val, test = split_holdout(items, 0.2, 0.1, 0)
    out = []
    for i in spread({"test": test, "val": val}[part], limit):
        item = items[i]
        rgb = half_size(np.asarray(Image.open(item.image_path).convert("RGB")))
        xy = scale_fixations(item.fixations.xy, item.shape, rgb.shape[:2])
        a, b = observer_halves(item.fixations.observer)
        out.append(BenchImage(
            f"{item.dataset}/{item.stem}", rgb, saliency_map(xy, rgb.shape[:2]),
            saliency_map(xy[a], rgb.shape[:2]), saliency_map(xy[b], rgb.shape[:2]), fixations_b=xy[b],
        ))
    small = []  # training maps at 1/8 size: the centre bias lives in normalised coordinates
    for i in train:
        item = items[i]
        hw = (max(item.height // 8, 8), max(item.width // 8, 8))
        small.append(saliency_map(scale_fixations(item.fixations.xy, item.shape, hw), hw))
    return out, CenterBias.fit(small)


def kodak_images(folder: Path, limit: int) -> list[BenchImage]:
    """The first *limit* Kodak PNGs of *folder* (kodim*.png, in name order), without maps."""
    files = sorted(folder.glob("kodim*.png"))[:limit]
    return [BenchImage(f.stem, np.asarray(Image.open(f).convert("RGB"))) for f in files]


__all__ = [
    "BenchImage",
    "half_size",
    "held_out_images",
    "kodak_images",
    "observer_halves",
    "scale_fixations",
    "spread",
]
