"""Image-agnostic saliency baselines: what a model must beat to show it looks at the image.

Human fixations cluster near the image centre whatever the content, so a map that ignores the
image already scores well on CC/SIM/NSS/AUC. Two such references, both fitted on training maps:

- `CenterBias`: an anisotropic Gaussian (full 2x2 covariance) in normalised image coordinates.
- `AverageMap`: the mean training map itself (captures asymmetries a Gaussian cannot, e.g. a
  bias towards the upper half, at the cost of 64x64 numbers instead of 5).

Both work in normalised coordinates [0, 1]^2 (x = column, y = row, pixel centres at
(j + 0.5) / W), so maps of any size and aspect are pooled together and a prediction stretches
with the image it is made for: the bias is assumed to scale with the picture, not with pixels.
Each training map is sum-normalised before averaging so every image weighs the same whatever its
number of fixations or its peak scaling. Pure numpy (+ OpenCV resizing, as in `sspnet.metrics`).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

__all__ = [
    "GRID",
    "AverageMap",
    "Baseline",
    "CenterBias",
    "baseline_from_dict",
    "load_baseline",
    "mean_grid_map",
    "resample_to_grid",
    "save_baseline",
]

GRID: int = 64  # side of the normalised grid maps are pooled on


class Baseline(Protocol):
    """A saliency predictor that does not look at the image: only its shape matters."""

    def predict(self, shape: tuple[int, int]) -> np.ndarray: ...

    def to_dict(self) -> dict: ...


def resample_to_grid(saliency: np.ndarray, grid: int = GRID) -> np.ndarray:
    """HxW map -> grid x grid float64 map covering the same [0,1]^2 area.

    INTER_AREA when shrinking keeps the mass of thin peaks (averages, does not sample);
    bilinear when enlarging small maps.
    """
    a = np.asarray(saliency, dtype=np.float32)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected a non-empty 2-D saliency map, got shape {a.shape}")
    shrink = a.shape[0] >= grid and a.shape[1] >= grid
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(a, (grid, grid), interpolation=interp).astype(np.float64)


def mean_grid_map(maps: Iterable[np.ndarray], grid: int = GRID) -> np.ndarray:
    """Average of the sum-normalised training maps on the grid: a distribution (sums to 1).

    All-zero / non-finite maps carry no location information and are skipped; ValueError
    when none is usable (a baseline fitted on nothing would be silently uniform).
    """
    total = np.zeros((grid, grid), dtype=np.float64)
    n = 0
    for m in maps:
        g = np.clip(resample_to_grid(m, grid), 0.0, None)
        s = g.sum()
        if not np.isfinite(s) or s <= 0:
            continue
        total += g / s
        n += 1
    if n == 0:
        raise ValueError("no usable (non-zero, finite) saliency map to fit a baseline on")
    return total / n


def grid_coordinates(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel-centre coordinates (x of columns, y of rows) of an HxW map."""
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"shape must be positive (H, W), got {shape}")
    return (np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h


@dataclass(frozen=True)
class CenterBias:
    """Anisotropic Gaussian centre bias N(mean, cov) in normalised (x, y) coordinates.

    Fitted by moments: the mean training map (`mean_grid_map`) is read as a distribution over
    the unit square and its mean and covariance are taken. Moments rather than a CC grid search
    over sigma_x, sigma_y: closed form, deterministic, and exact for Gaussian maps that the
    border does not truncate (a heavily truncated bias is underestimated in width).
    """

    mean: tuple[float, float] = (0.5, 0.5)
    cov: tuple[tuple[float, float], tuple[float, float]] = ((0.04, 0.0), (0.0, 0.04))

    def __post_init__(self) -> None:
        c = np.asarray(self.cov, dtype=np.float64)
        if c.shape != (2, 2) or np.asarray(self.mean).shape != (2,):
            raise ValueError("mean must be (x, y) and cov a 2x2 matrix")
        if not np.allclose(c, c.T) or np.linalg.det(c) <= 0 or c[0, 0] <= 0:
            raise ValueError(f"cov must be symmetric positive definite, got {self.cov}")

    @classmethod
    def fit(cls, maps: Iterable[np.ndarray], grid: int = GRID) -> CenterBias:
        """Mean and covariance of the average training map on a `grid` x `grid` lattice."""
        p = mean_grid_map(maps, grid)
        xs, ys = grid_coordinates((grid, grid))
        px, py = p.sum(axis=0), p.sum(axis=1)  # marginals over x (columns) and y (rows)
        mx, my = float(px @ xs), float(py @ ys)
        dx, dy = xs - mx, ys - my
        vxx = float(px @ dx**2)
        vyy = float(py @ dy**2)
        vxy = float(dy @ p @ dx)
        # A lattice cell's own extent is a floor on resolvable width; keeps cov invertible
        # when every map is a single peak.
        floor = (1.0 / grid) ** 2 / 12.0
        vxx, vyy = max(vxx, floor), max(vyy, floor)
        lim = 0.999 * np.sqrt(vxx * vyy)
        vxy = float(np.clip(vxy, -lim, lim))
        return cls((mx, my), ((vxx, vxy), (vxy, vyy)))

    @property
    def sigma(self) -> tuple[float, float]:
        """Standard deviations along x and y in normalised units."""
        return float(np.sqrt(self.cov[0][0])), float(np.sqrt(self.cov[1][1]))

    def predict(self, shape: tuple[int, int]) -> np.ndarray:
        """HxW float32 map in [0, 1], peak 1 at the mean when it lies inside the image."""
        xs, ys = grid_coordinates(shape)
        inv = np.linalg.inv(np.asarray(self.cov, dtype=np.float64))
        dx = (xs - self.mean[0])[None, :]
        dy = (ys - self.mean[1])[:, None]
        q = inv[0, 0] * dx**2 + 2.0 * inv[0, 1] * dx * dy + inv[1, 1] * dy**2
        g = np.exp(-0.5 * q)
        peak = g.max()
        if peak > 0:
            g = g / peak
        return g.astype(np.float32)

    def to_dict(self) -> dict:
        return {"type": "center_bias", "mean": list(self.mean), "cov": [list(r) for r in self.cov]}

    @classmethod
    def from_dict(cls, d: dict) -> CenterBias:
        mean = tuple(float(v) for v in d["mean"])
        cov = tuple(tuple(float(v) for v in row) for row in d["cov"])
        return cls(mean, cov)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class AverageMap:
    """The mean training map on a normalised grid (scaled to max 1), resized to any shape."""

    grid_map: np.ndarray

    def __post_init__(self) -> None:
        a = np.asarray(self.grid_map, dtype=np.float64)
        if a.ndim != 2 or a.size == 0 or not np.isfinite(a).all() or a.min() < 0:
            raise ValueError("grid_map must be a non-empty, finite, non-negative 2-D array")
        object.__setattr__(self, "grid_map", a)

    @classmethod
    def fit(cls, maps: Iterable[np.ndarray], grid: int = GRID) -> AverageMap:
        p = mean_grid_map(maps, grid)
        return cls(p / p.max())

    def predict(self, shape: tuple[int, int]) -> np.ndarray:
        """HxW float32 in [0, 1]: the grid map stretched bilinearly over the image."""
        h, w = int(shape[0]), int(shape[1])
        grid_coordinates((h, w))  # validates the shape
        out = cv2.resize(self.grid_map.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def to_dict(self) -> dict:
        return {"type": "average_map", "grid_map": np.round(self.grid_map, 7).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> AverageMap:
        return cls(np.asarray(d["grid_map"], dtype=np.float64))


_TYPES = {"center_bias": CenterBias, "average_map": AverageMap}


def baseline_from_dict(d: dict) -> Baseline:
    """Rebuild either baseline from its `to_dict()` (the "type" key says which)."""
    kind = d.get("type")
    if kind not in _TYPES:
        raise ValueError(f"unknown baseline type {kind!r}; expected one of {sorted(_TYPES)}")
    return _TYPES[kind].from_dict(d)


def save_baseline(baseline: Baseline, path: str | Path) -> None:
    Path(path).write_text(json.dumps(baseline.to_dict()))


def load_baseline(path: str | Path) -> Baseline:
    return baseline_from_dict(json.loads(Path(path).read_text()))
