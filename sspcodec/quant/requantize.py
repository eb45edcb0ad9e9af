"""Per-block requantisation: lower quality in chosen blocks of a JPEG that has one table.

Baseline JPEG has a single quantisation table per component for the whole frame, so per-block
quality cannot be expressed by the tables. The frame keeps the finest table (``q_max``); a block
meant to be of quality ``q_b`` is changed in the DCT domain, against the coarser ``q_b`` table
``Qb`` (``Qt`` is the file's table, ``c`` a stored coefficient, ``v = c * Qt`` its value):

- "zero" mode (the default): an AC coefficient with ``|v| < (0.5 + deadzone) * Qb`` (one the
  ``q_b`` table would zero, plus a small dead zone) becomes 0; every other coefficient, and the
  DC always, is kept exactly. Zeros are what save bits: a kept coefficient costs its bits at the
  fine step either way.
- "round" mode: survivors are also rounded onto the ``Qb`` grid, ``c' = round(round(v / Qb) * Qb
  / Qt)`` with the magnitude never rising, DC included (as a real ``q_b`` encode would).

Any decoder reads the result: only coefficient values change.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..backends.dct import Component
from .tables import base_table, target_tables

#: Default dead zone: a requantised AC coefficient is zeroed when
#: |v| < (0.5 + DEFAULT_DEADZONE) * Qb. Zero runs are what make the low-quality
#: blocks cheap; measured on Kodak (kodim01/05/23) the dead zone trades PSNR
#: for bytes at about the same slope as lowering the block quality, so a mild
#: value is kept and the map stays the main control.
DEFAULT_DEADZONE = 0.15

#: How a coarser block is made cheaper. "zero" (default) zeroes the AC coefficients a coarser
#: table would zero and keeps the survivors at full precision; "round" also rounds survivors
#: onto the coarser grid. In one-table JPEG the survivors cost bits at the fine step either
#: way, so rounding buys few bytes for much distortion: on 6 held-out OSIE images at equal
#: bytes, "zero" gave +2 to +3 dB saliency-weighted PSNR where "round" gave +0.6 (docs/METHOD.md).
RequantMode = Literal["zero", "round"]
DEFAULT_MODE: RequantMode = "zero"

#: Baseline JPEG coefficient ranges (8-bit samples).
AC_LIMIT = 1023
DC_LIMIT = 2047

#: Block rows processed per numpy chunk: bounds temporary memory on huge images.
_CHUNK_ROWS = 64

_IS_AC = np.ones((8, 8), dtype=bool)
_IS_AC[0, 0] = False


def requantize(
    coeffs: np.ndarray,
    qt_base: np.ndarray,
    block_quality: np.ndarray,
    component: Component = "luma",
    deadzone: float = DEFAULT_DEADZONE,
    *,
    q_base: float | None = None,
    mode: RequantMode = DEFAULT_MODE,
    keep_dc: bool = True,
) -> np.ndarray:
    """Requantise (bh, bw, 8, 8) coefficients block by block (vectorised).

    *coeffs* are quantised with *qt_base*; block (i, j) is made to look quantised with the
    table for ``block_quality[i, j]`` (see :func:`sspcodec.quant.tables.target_tables`: IJG
    tables, or *qt_base* rescaled when *q_base* is given) and stays expressed in *qt_base*.

    Guarantees, because the decoder can only lose information here: coefficients whose target
    step is not coarser than the base step are left as they are; |coefficient| never increases
    and never changes sign; the result stays inside the baseline ranges (DC +-2047, AC +-1023).
    The dead zone applies to AC coefficients only. In "zero" mode the DC is kept exactly: a
    block's mean is DPCM-coded and costs about the same at any value, while zeroing it would
    snap a near-neutral block to flat grey next to exact neighbours. ``keep_dc=False`` restores
    the old behaviour (DC zeroed when ``|v| < Qb / 2``) and exists only to reproduce old outputs.
    """
    c = np.asarray(coeffs)
    if c.ndim != 4 or c.shape[2:] != (8, 8):
        raise ValueError(f"coeffs must have shape (bh, bw, 8, 8), got {c.shape}")
    qt = np.asarray(qt_base, dtype=np.float64)
    if qt.shape != (8, 8) or np.any(qt < 1):
        raise ValueError("qt_base must be an (8, 8) table of positive steps")
    bq = np.asarray(block_quality, dtype=np.float64)
    if bq.shape != c.shape[:2]:
        raise ValueError(f"block_quality shape {bq.shape} != block grid {c.shape[:2]}")
    if not np.all(np.isfinite(bq)):
        raise ValueError("block_quality contains NaN or infinite values")
    if not 0.0 <= deadzone < 0.5:
        raise ValueError(f"deadzone must be in [0, 0.5), got {deadzone}")
    if mode not in ("zero", "round"):
        raise ValueError(f"mode must be 'zero' or 'round', got {mode!r}")
    base_table(component)  # validates the name early

    out = np.empty(c.shape, dtype=np.int16)
    limit = np.where(_IS_AC, AC_LIMIT, DC_LIMIT)
    always_kept = ~_IS_AC if keep_dc else np.zeros((8, 8), dtype=bool)
    qt32 = qt.astype(np.float32)
    for r0 in range(0, c.shape[0], _CHUNK_ROWS):
        rows = slice(r0, r0 + _CHUNK_ROWS)
        cc = c[rows].astype(np.int32)
        target = target_tables(bq[rows], component, qt, q_base, continuous=mode == "zero").astype(np.float32)
        step = np.maximum(target, qt32)
        coarser = target > qt32
        mag = np.abs(cc).astype(np.float32) * qt32  # |v|
        level = np.floor(mag / step + 0.5)
        level[(mag < (0.5 + deadzone) * step) & _IS_AC] = 0.0
        if mode == "zero":  # keep survivors at full precision: only zeros save bits
            new_mag = np.where((level > 0) | always_kept, np.abs(cc), 0)
        else:
            new_mag = np.floor(level * step / qt32 + 0.5).astype(np.int32)
            new_mag = np.minimum(new_mag, np.abs(cc))
        new = np.where(coarser, np.sign(cc) * new_mag, cc)
        out[rows] = np.clip(new, -limit, limit)
    return out
