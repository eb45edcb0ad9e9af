"""IJG quantisation tables and libjpeg's quality -> scale rule: the one copy every module uses."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..backends.dct import Component

# ITU-T T.81 Annex K tables K.1 / K.2 in natural (row-major) order, the same
# orientation jpeglib uses for ``qt`` and for every 8x8 coefficient block.
STD_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
)
STD_CHROMA = np.full((8, 8), 99.0)
STD_CHROMA[:4, :4] = [
    [17, 18, 24, 47],
    [18, 21, 26, 66],
    [24, 26, 56, 99],
    [47, 66, 99, 99],
]


def base_table(component: Component) -> np.ndarray:
    """The Annex K table of *component* (float64, 8x8); refuses any other name."""
    if component == "luma":
        return STD_LUMA
    if component == "chroma":
        return STD_CHROMA
    raise ValueError(f"component must be 'luma' or 'chroma', got {component!r}")


def quality_scale(
    quality: float | np.ndarray, *, continuous: bool = False, dtype: type[np.floating] = np.float64
) -> np.ndarray:
    """libjpeg's ``jpeg_quality_scaling`` (percent), extended to float qualities.

    Integer qualities give exactly libjpeg's values (``5000 // q`` below 50, ``200 - 2q``
    above); fractional ones fall between them monotonically. `continuous` drops the integer
    division, so the scale (and a size that depends on it) varies smoothly with quality.
    Computed in `dtype` (the size estimate works in float32).
    """
    q = np.clip(np.asarray(quality, dtype=dtype), 1.0, 100.0)
    low = 5000.0 / q if continuous else np.floor(5000.0 / q)
    return np.where(q < 50.0, low, 200.0 - 2.0 * q)


def scaled_tables(scale: np.ndarray, base: np.ndarray, *, continuous: bool = False) -> np.ndarray:
    """Tables ``base`` scaled by *scale* percent, one per element of *scale* (broadcast over
    its leading axes), clipped to baseline's 1..255. libjpeg's ``(base * scale + 50) // 100``,
    or with `continuous` the unrounded ``base * scale / 100`` (thresholds only, never written)."""
    s = np.asarray(scale)[(..., *([None] * base.ndim))]
    if continuous:
        return np.clip(base * s / 100.0, 1.0, 255.0)
    return np.clip(np.floor((base * s + 50.0) / 100.0), 1.0, 255.0)


def quality_table(quality: int, component: Component = "luma") -> np.ndarray:
    """IJG standard table at *quality*, exactly as ``jpeg_set_quality(q, TRUE)``.

    Returns an (8, 8) uint16 array in natural order (row = vertical frequency).
    """
    q = int(quality)
    if q != quality or not 1 <= q <= 100:
        raise ValueError(f"quality must be an integer in 1..100, got {quality!r}")
    return scaled_tables(quality_scale(q), base_table(component)).astype(np.uint16)


def target_tables(
    block_quality: np.ndarray,
    component: Component,
    qt_base: np.ndarray,
    q_base: float | None,
    *,
    continuous: bool = False,
) -> np.ndarray:
    """Per-block (bh, bw, 8, 8) tables the blocks should look quantised with.

    IJG tables at each block's quality when `q_base` is None; otherwise the file's own table
    `qt_base` (from an encoder with its own tables, made at quality `q_base`) rescaled by
    libjpeg's scale ratio ``s(q_b) / s(q_base)``, so that ``q_b == q_base`` means "unchanged".
    `continuous` uses the unrounded scale: see :func:`quality_scale`.
    """
    scale = quality_scale(block_quality, continuous=continuous)
    if q_base is None:
        return scaled_tables(scale, base_table(component), continuous=continuous)
    s_base = float(quality_scale(q_base))
    if s_base < 1.0:
        raise ValueError("q_base=100 has no scale to rescale from; use IJG tables (q_base=None)")
    ratio = (scale / s_base)[..., None, None]
    return np.clip(np.floor(qt_base * ratio + 0.5), 1.0, 255.0)


def uses_ijg_tables(tables: Iterable[tuple[np.ndarray, Component]], quality: int) -> bool:
    """Whether every (table, component) given is libjpeg's standard table at *quality*."""
    return all(np.array_equal(t, quality_table(quality, comp)) for t, comp in tables)
