"""Does a shift map point at the distortion that causes it? The patch test of issue 25.

Degrade one ninth of a picture (a cell of its 3x3 grid) and leave the rest nearly pristine; a
shift map that sees the artifact puts its mass on that cell. These pure functions pick the cell,
build the composite, and measure the share of the map's mass inside the cell grown by one
fixation sigma (the scale at which a human map could point at it); `benchmarks/shift_localisation.py`
runs them with the model.
"""
from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

import numpy as np


class Cell(NamedTuple):
    """A rectangle of pixels: rows [top, bottom), columns [left, right)."""

    top: int
    bottom: int
    left: int
    right: int


def grid_cells(shape: tuple[int, int], n: int = 3) -> list[Cell]:
    """The n x n cells of an image of *shape* (h, w), row by row; edges split as evenly as integers allow."""
    h, w = int(shape[0]), int(shape[1])
    rows = np.linspace(0, h, n + 1).round().astype(int)
    cols = np.linspace(0, w, n + 1).round().astype(int)
    return [Cell(rows[i], rows[i + 1], cols[j], cols[j + 1]) for i in range(n) for j in range(n)]


def least_salient_cell(saliency: np.ndarray, n: int = 3) -> Cell:
    """The cell of the n x n grid with the lowest mean *saliency* (an HxW map of the image)."""
    cells = grid_cells(saliency.shape[:2], n)
    return min(cells, key=lambda c: float(saliency[c.top : c.bottom, c.left : c.right].mean()))


def middle_cell(shape: tuple[int, int], n: int = 3) -> Cell:
    """The centre cell of the n x n grid (n odd)."""
    return grid_cells(shape, n)[(n * n) // 2]


def composite(background: np.ndarray, patch_source: np.ndarray, cell: Cell) -> np.ndarray:
    """*background* with *cell* taken from *patch_source* (same shape): one degraded region."""
    if background.shape != patch_source.shape:
        raise ValueError(f"images differ in shape: {background.shape} vs {patch_source.shape}")
    out = background.copy()
    out[cell.top : cell.bottom, cell.left : cell.right] = patch_source[cell.top : cell.bottom, cell.left : cell.right]
    return out


def grown(cell: Cell, margin: float, shape: tuple[int, int]) -> Cell:
    """*cell* grown by *margin* pixels on every side, clipped to an image of *shape*."""
    m = round(margin)
    return Cell(max(cell.top - m, 0), min(cell.bottom + m, int(shape[0])),
                max(cell.left - m, 0), min(cell.right + m, int(shape[1])))


def inside_share(shift: np.ndarray, cell: Cell) -> float:
    """Share of the map's mass inside *cell*: sum over the cell / sum over the image (nan for an
    all-zero map). *shift* is HxW at the image's size, non-negative."""
    total = float(shift.sum())
    if total <= 0:
        return float("nan")
    return float(shift[cell.top : cell.bottom, cell.left : cell.right].sum()) / total


def area_share(cell: Cell, shape: tuple[int, int]) -> float:
    """The fraction of the image *cell* covers (what a map blind to the patch would put inside it)."""
    return (cell.bottom - cell.top) * (cell.right - cell.left) / float(shape[0] * shape[1])


def strictly_falling(values: list[float]) -> bool:
    """Whether *values* fall strictly, one to the next (a stronger distortion first)."""
    return all(a > b for a, b in pairwise(values))


__all__ = [
    "Cell",
    "area_share",
    "composite",
    "grid_cells",
    "grown",
    "inside_share",
    "least_salient_cell",
    "middle_cell",
    "strictly_falling",
]
