"""The patch test's pieces (sspnet.evaluate.localisation), on hand-made maps."""
from __future__ import annotations

import math

import numpy as np

from sspnet.evaluate.localisation import (
    Cell,
    area_share,
    composite,
    grid_cells,
    grown,
    inside_share,
    least_salient_cell,
    middle_cell,
    strictly_falling,
)


def test_grid_cells_tile_the_image():
    cells = grid_cells((10, 14))
    cover = np.zeros((10, 14), int)
    for c in cells:
        cover[c.top : c.bottom, c.left : c.right] += 1
    assert len(cells) == 9 and np.all(cover == 1)
    assert middle_cell((9, 9)) == Cell(3, 6, 3, 6)


def test_least_salient_cell_and_composite():
    sal = np.ones((9, 12))
    sal[6:, 8:] = 0.1  # the bottom-right ninth is the least salient
    cell = least_salient_cell(sal)
    assert cell == Cell(6, 9, 8, 12)
    a, b = np.zeros((9, 12, 3), np.uint8), np.full((9, 12, 3), 7, np.uint8)
    out = composite(a, b, cell)
    assert out[7, 9, 0] == 7 and out[0, 0, 0] == 0 and a.max() == 0  # the inputs untouched


def test_inside_share_counts_the_mass_in_the_grown_cell():
    shift = np.zeros((30, 30))
    shift[0, 0], shift[12, 12] = 1.0, 3.0
    cell = Cell(10, 20, 10, 20)
    assert inside_share(shift, cell) == 0.75
    assert grown(cell, 2.4, (30, 30)) == Cell(8, 22, 8, 22)
    assert grown(cell, 15, (30, 30)) == Cell(0, 30, 0, 30) and inside_share(shift, grown(cell, 15, (30, 30))) == 1.0
    assert area_share(cell, (30, 30)) == 100 / 900
    assert math.isnan(inside_share(np.zeros((3, 3)), cell))


def test_strictly_falling():
    assert strictly_falling([3.0, 2.0, 1.0]) and not strictly_falling([3.0, 3.0, 1.0])
    assert not strictly_falling([1.0, 2.0])
