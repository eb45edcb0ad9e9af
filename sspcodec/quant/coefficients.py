"""One JPEG's coefficients, requantised by a block-quality map many times: size estimates and
real writes. Also the one-call helper that encodes pixels with a quality map.

Input shapes for :func:`encode_with_quality_map`: HxWx3 RGB, HxW / HxWx1 greyscale (written as
a 1-component JPEG), HxWx4 RGBA (alpha dropped; composite with :func:`sspnet.files.images.read_image`
first if it matters). Any width/height works: partial edge blocks are ordinary blocks and MCU
padding blocks are untouched. Chroma blocks take the highest quality of the luma blocks they
cover.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..backends import Backend, as_encoder_input, get_backend
from ..backends.dct import Component, DctPlane, read_dct
from .qmaps import Reduce, luma_to_chroma_grid, map_to_luma_grid, prefilter_image
from .requantize import DEFAULT_DEADZONE, DEFAULT_MODE, RequantMode, requantize
from .tables import base_table, quality_scale, scaled_tables, uses_ijg_tables

#: Blocks the size estimate samples in all (every k-th block row of each plane).
_SAMPLE_BLOCKS = 4000


class PlaneSample(NamedTuple):
    """What the fast size estimate keeps of one plane: every k-th block row, flattened to 64."""

    rows: slice  # the sampled block rows
    magnitude: np.ndarray  # |v| = |c| * Qt per coefficient, float32 (rows, bw, 64); DC set to 0
    bits: np.ndarray  # bits a kept coefficient costs: 4 (run/size code) + log2(|c| + 1); 0 if c == 0
    qt: np.ndarray  # the file's table, float32 (64,)
    base: np.ndarray  # the component's Annex K table, float32 (64,)
    component: Component


class CoefficientImage:
    """The quantised DCT of one JPEG, read once, then requantised and written many times.

    The encoder loop fits a background quality to a byte budget by trying many quality maps
    on the same base encoding; reading the file once and ranking tries with a cheap size
    estimate (`estimate_bytes`) keeps real Huffman writes to a handful per candidate.
    If the file carries the IJG tables for *q_max* the targets are IJG tables; otherwise
    (mozjpeg, jpegli) the file's own tables are rescaled by the libjpeg scale ratio, so
    ``q_b == q_max`` always means "unchanged".
    """

    def __init__(
        self,
        data: bytes,
        q_max: int,
        *,
        deadzone: float = DEFAULT_DEADZONE,
        mode: RequantMode = DEFAULT_MODE,
        keep_dc: bool = True,
    ) -> None:
        self._dct = read_dct(data)
        self.deadzone = deadzone
        self.mode = mode
        self.keep_dc = keep_dc
        tables = [(p.qt, p.component) for p in self._dct.planes]
        self.q_base = None if (q_max >= 100 or uses_ijg_tables(tables, q_max)) else float(q_max)
        self.grid = self._dct.luma_grid
        self._factor = self._dct.chroma_factor

    @property
    def _planes(self) -> tuple[DctPlane, ...]:
        return self._dct.planes

    def _check(self, block_quality: np.ndarray) -> np.ndarray:
        bq = np.asarray(block_quality, dtype=np.float64)
        if bq.shape != self.grid:
            raise ValueError(f"block quality map {bq.shape} != luma block grid {self.grid}")
        return bq

    def _chroma_quality(self, bq: np.ndarray, plane: DctPlane) -> np.ndarray:
        return luma_to_chroma_grid(bq, plane.coeffs.shape[:2], self._factor)

    def requantized(self, block_quality: np.ndarray, rows: slice = slice(None)) -> list[np.ndarray]:
        """New coefficient planes (Y[, Cb, Cr]); `rows` restricts to a band of luma block rows."""
        bq = self._check(block_quality)
        out = []
        for plane in self._planes:
            coeffs = plane.coeffs
            if plane.component == "luma":
                q, c = bq[rows], coeffs[rows]
            else:
                fv = self._factor[0]
                crow = rows if rows == slice(None) else slice(rows.start // fv, -(-rows.stop // fv), rows.step or 1)
                q, c = self._chroma_quality(bq, plane)[crow], coeffs[crow]
            out.append(
                requantize(c, plane.qt, q, plane.component, self.deadzone,
                           q_base=self.q_base, mode=self.mode, keep_dc=self.keep_dc)
            )
        return out

    @cached_property
    def _sample(self) -> tuple[list[PlaneSample], int]:
        """Per plane, every k-th block row (about 4,000 blocks in all), and k."""
        total = sum(p.coeffs.shape[0] * p.coeffs.shape[1] for p in self._planes)
        step = max(1, total // _SAMPLE_BLOCKS)
        rows = slice(0, None, step)
        samples = []
        for plane in self._planes:
            sampled = plane.coeffs[rows]
            c = np.abs(sampled.astype(np.int32)).reshape(*sampled.shape[:2], 64)
            c[..., 0] = 0  # DC differences cost about the same in every candidate
            qt = np.asarray(plane.qt, np.float32).reshape(64)
            bits = np.where(c > 0, 4.0 + np.log2(c + 1.0), 0.0).astype(np.float32)
            base = base_table(plane.component).reshape(64).astype(np.float32)
            samples.append(PlaneSample(rows, c.astype(np.float32) * qt, bits, qt, base, plane.component))
        return samples, step

    def estimate_bytes(self, block_quality: np.ndarray) -> float:
        """A size proxy that ranks quality maps like the real encoder does, on a sample of block
        rows: per surviving coefficient its magnitude category plus ~4 bits of Huffman run/size
        code, plus an end-of-block code per block. Callers calibrate it with one real write (the
        ratio drifts little between nearby maps). In "zero" mode on IJG tables it is computed
        from cached magnitudes without requantising (a few ms for a 1920x1080 image)."""
        bq = self._check(block_quality)
        if self.mode != "zero" or self.q_base is not None:
            return self._estimate_slow(bq)
        samples, step = self._sample
        bits = 0.0
        for s, plane in zip(samples, self._planes):
            q = bq if s.component == "luma" else self._chroma_quality(bq, plane)
            scale = quality_scale(q[s.rows], continuous=True, dtype=np.float32)
            target = scaled_tables(scale, s.base, continuous=True)
            keep = (target <= s.qt) | (s.magnitude >= (0.5 + self.deadzone) * target)
            bits += float((s.bits * keep).sum()) + 2.0 * scale.size
        return bits / 8.0 * step

    def _estimate_slow(self, bq: np.ndarray, sample: int = 4) -> float:
        """The same proxy counted on really requantised bands of 8 block rows (every 4th band):
        for round mode and foreign tables, where the cached shortcut does not apply."""
        bits = 0.0
        n_rows = self.grid[0]
        band = 8
        starts = list(range(0, n_rows, band * sample)) or [0]
        for r0 in starts:
            for plane in self.requantized(bq, slice(r0, min(n_rows, r0 + band))):
                a = np.abs(plane.astype(np.int32))
                a[..., 0, 0] = 0
                nz = a > 0
                blocks = a.shape[0] * a.shape[1]
                bits += float(np.count_nonzero(nz)) * 4.0 + float(np.log2(a[nz] + 1.0).sum()) + 2.0 * blocks
        covered = sum(min(band, n_rows - r0) for r0 in starts)
        return bits / 8.0 * n_rows / max(covered, 1)

    def encode(self, block_quality: np.ndarray, *, optimize: bool = True) -> bytes:
        """Write the requantised coefficients as one baseline JPEG (optimised Huffman tables)."""
        return self._dct.write(self.requantized(block_quality), optimize=optimize)


def requantize_jpeg(
    data: bytes,
    block_quality: np.ndarray,
    q_max: int,
    *,
    deadzone: float = DEFAULT_DEADZONE,
    optimize: bool = True,
    mode: RequantMode = DEFAULT_MODE,
    keep_dc: bool = True,
) -> bytes:
    """Apply a luma block-quality map to an existing JPEG encoded at *q_max* (see
    :class:`CoefficientImage` for the tables the blocks are requantised against)."""
    image = CoefficientImage(data, q_max, deadzone=deadzone, mode=mode, keep_dc=keep_dc)
    return image.encode(block_quality, optimize=optimize)


def encode_with_quality_map(
    rgb: np.ndarray,
    quality_map: np.ndarray,
    *,
    backend: str | Backend = "turbo",
    q_max: int | None = None,
    prefilter: float = 0.0,
    prefilter_sigma: float = 1.5,
    deadzone: float = DEFAULT_DEADZONE,
    subsampling: str = "4:2:0",
    reduce: Reduce = "max",
    mode: RequantMode = DEFAULT_MODE,
    keep_dc: bool = True,
) -> bytes:
    """Encode one baseline JPEG whose quality follows *quality_map* per block.

    *quality_map* holds libjpeg qualities (1..100, clipped) at any resolution
    (see :func:`sspcodec.quant.qmaps.map_to_luma_grid`). The image is encoded once at *q_max*
    (default: the map's maximum, rounded up; map values above an explicit
    *q_max* are capped), then every block is requantised to its own quality.
    ``prefilter`` in [0, 1] blurs low-quality regions first
    (:func:`sspcodec.quant.qmaps.prefilter_image`).
    """
    pixels = as_encoder_input(rgb)
    h, w = pixels.shape[:2]
    bq = map_to_luma_grid(quality_map, (h, w), reduce=reduce)
    if q_max is None:
        qmax = math.ceil(float(bq.max()) - 1e-9)
    else:
        qmax = int(q_max)
        if qmax != q_max or not 1 <= qmax <= 100:
            raise ValueError(f"q_max must be an integer in 1..100, got {q_max!r}")
    bq = np.minimum(bq, qmax)
    be = get_backend(backend)
    if not be.supports_dct:
        raise ValueError(f"backend {be.name!r} does not support DCT-domain requantisation")
    if prefilter:
        pixels = prefilter_image(pixels, bq, qmax, prefilter, prefilter_sigma)
    image = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    base = be.encode(image, qmax, subsampling=subsampling, optimize=False, progressive=False)
    return requantize_jpeg(base, bq, qmax, deadzone=deadzone, optimize=True, mode=mode, keep_dc=keep_dc)
