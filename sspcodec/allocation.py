"""Where the bytes go: an *allocation* turns an image into a map of where quality matters, at any
resolution: the model's predicted saliency (the default), a centre bias, a map the caller gives,
or none at all (the plain JPEG). Each method turns the map into its own block weights, with the
functions here: :func:`block_priority` on the 8x8 luma block grid (the search) or
:func:`pixel_priority` at pixel resolution, whose block means the RD pruning takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
from scipy.ndimage import maximum_filter

from sspnet.baselines import CenterBias


def _priority(m: np.ndarray, size: tuple[int, int], spread: int) -> np.ndarray:
    """`m` resized to `size` (rows, cols) by area, dilated by `spread` cells, scaled to [0, 1]."""
    rows, cols = size
    small = cv2.resize(m.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA)
    if spread:
        small = maximum_filter(small, size=2 * spread + 1, mode="nearest")
    small = np.clip(small - small.min(), 0, None)
    top = float(small.max())
    return small / top if top > 0 else np.zeros_like(small)


def block_priority(m: np.ndarray, blocks: tuple[int, int], spread: int = 1) -> np.ndarray:
    """A map -> per-block priority in [0, 1] on the luma block grid `blocks` (rows, cols): block
    means, dilated by `spread` blocks (a salient object's border blocks are where ringing
    shows), scaled to max 1."""
    return _priority(m, blocks, spread)


def pixel_priority(m: np.ndarray, shape: tuple[int, int], spread: int = 1) -> np.ndarray:
    """A map -> priority in [0, 1] at the image's pixel `shape` (h, w), dilated by `spread`
    *pixels*, scaled to max 1: the RD pruning's input (it takes block means itself)."""
    return _priority(m, shape, spread)


class Allocation(Protocol):
    """Decides where quality matters."""

    def where(self, rgb: np.ndarray, saliency: np.ndarray) -> np.ndarray | None:
        """A map of where quality matters (higher: more), any resolution covering the image, or
        None for no reallocation. `saliency` is the model's SM_r of `rgb` (HxW), computed anyway
        for the shift."""
        ...


@dataclass(frozen=True)
class SaliencyAllocation:
    """Priority where the model predicts people look (SM_r): the default."""

    def where(self, rgb: np.ndarray, saliency: np.ndarray) -> np.ndarray:
        return saliency


@dataclass(frozen=True)
class CentreBiasAllocation:
    """Priority from a centre-bias map (the trivial competitor of a saliency model)."""

    bias: CenterBias = field(default_factory=CenterBias)

    def where(self, rgb: np.ndarray, saliency: np.ndarray) -> np.ndarray:
        return self.bias.predict(rgb.shape[:2])


@dataclass(frozen=True, eq=False)
class GivenMapAllocation:
    """Priority from a map the caller gives, any resolution (human maps in benchmarks)."""

    map: np.ndarray

    def where(self, rgb: np.ndarray, saliency: np.ndarray) -> np.ndarray:
        return np.asarray(self.map)


@dataclass(frozen=True)
class PlainAllocation:
    """No reallocation: the plain JPEG at the budget is the only candidate."""

    def where(self, rgb: np.ndarray, saliency: np.ndarray) -> None:
        return None


__all__ = ["Allocation", "CentreBiasAllocation", "GivenMapAllocation", "PlainAllocation", "SaliencyAllocation",
           "block_priority", "pixel_priority"]
