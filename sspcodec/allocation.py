"""Which blocks deserve the bytes: an *allocation* turns an image into a priority per 8x8 luma
block, w in [0, 1]: the model's predicted saliency (the default), a centre bias, a map the
caller gives, or none at all (the plain JPEG). Every method takes its priority from one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
from scipy.ndimage import maximum_filter

from sspnet.baselines import CenterBias


def block_priority(m: np.ndarray, grid: tuple[int, int], spread: int = 1) -> np.ndarray:
    """A pixel map -> per-block priority in [0, 1]: block means, dilated by `spread` blocks
    (a salient object's border blocks are where ringing shows), scaled to max 1."""
    bh, bw = grid
    small = cv2.resize(m.astype(np.float32), (bw, bh), interpolation=cv2.INTER_AREA)
    if spread:
        small = maximum_filter(small, size=2 * spread + 1, mode="nearest")
    small = np.clip(small - small.min(), 0, None)
    top = float(small.max())
    return small / top if top > 0 else np.zeros_like(small)


@runtime_checkable
class Allocation(Protocol):
    """Decides which blocks deserve the bytes."""

    def priority(self, rgb: np.ndarray, saliency: np.ndarray, grid: tuple[int, int]) -> np.ndarray | None:
        """Per-block priority in [0, 1] on the luma block `grid`, or None for no reallocation.
        `saliency` is the model's SM_r of `rgb` (HxW), computed anyway for the shift."""
        ...


@dataclass(frozen=True)
class SaliencyAllocation:
    """Priority where the model predicts people look (SM_r): the default."""

    def priority(self, rgb: np.ndarray, saliency: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
        return block_priority(saliency, grid)


@dataclass(frozen=True)
class CentreBiasAllocation:
    """Priority from a centre-bias map (the trivial competitor of a saliency model)."""

    bias: CenterBias = field(default_factory=CenterBias)

    def priority(self, rgb: np.ndarray, saliency: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
        return block_priority(self.bias.predict(rgb.shape[:2]), grid)


@dataclass(frozen=True, eq=False)
class GivenMapAllocation:
    """Priority from a map the caller gives, any resolution (human maps in benchmarks)."""

    map: np.ndarray

    def priority(self, rgb: np.ndarray, saliency: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
        return block_priority(np.asarray(self.map), grid)


@dataclass(frozen=True)
class PlainAllocation:
    """No reallocation: the plain JPEG at the budget is the only candidate."""

    def priority(self, rgb: np.ndarray, saliency: np.ndarray, grid: tuple[int, int]) -> None:
        return None


__all__ = ["Allocation", "CentreBiasAllocation", "GivenMapAllocation", "PlainAllocation", "SaliencyAllocation",
           "block_priority"]
