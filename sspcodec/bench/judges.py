"""Calibrated models of human vision as the codec benchmarks' judges, at a stated viewing geometry.

- ColorVideoVDP (PyPI ``cvvdp`` 0.5.7): global quality in JOD (10 = no visible difference),
  colour, the image shown 1:1 on the display of the geometry;
- FovVideoVDP (PyPI ``pyfvvdp`` 1.2.2) in foveated mode: JOD with the eye on one point; the
  benchmarks put it on each held-out human fixation of the image and report the mean and the
  worst.

Geometries (the metrics' own display models): ``fhd`` = ``standard_fhd`` (24-inch FullHD at
0.6 m, about 38 pixels per degree), ``4k`` = ``standard_4k`` (30-inch 4K at 0.75 m, about 75).
Both are parameter models: nothing is downloaded. Both packages import a sibling module by its
bare name (``interp``), each its own, so each is imported here with its folder first on the path
and the other's ``interp`` out of the way (:func:`_import_alone`). They are optional (the
``bench`` extra): :func:`missing` says why they cannot be used.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

#: Viewing geometry name -> the display model both metrics know it by.
GEOMETRIES = {"fhd": "standard_fhd", "4k": "standard_4k"}
PACKAGES = ("pycvvdp", "pyfvvdp")
#: The sibling modules both packages import by bare name.
_SIBLINGS = ("interp", "utils")
_LOADED: dict[str, ModuleType] = {}


def missing() -> str | None:
    """None when both judges can be imported, else what to install."""
    absent = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
    if absent:
        return f"{', '.join(absent)} not installed (pip install \"sspcodec[bench]\": cvvdp==0.5.7 pyfvvdp==1.2.2)"
    return None


@contextlib.contextmanager
def _own_siblings(folder: str) -> Iterator[None]:
    """`folder` first on sys.path and no other package's `interp`/`utils` in sys.modules while
    a package that imports them by bare name loads; what was there before is put back."""
    saved = {name: sys.modules.pop(name) for name in _SIBLINGS if name in sys.modules}
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)
        for name in _SIBLINGS:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _import_alone(package: str) -> ModuleType:
    """`package`, imported with its own sibling modules (see the module docstring)."""
    if package not in _LOADED:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ImportError(missing() or package)
        with _own_siblings(str(Path(spec.origin).parent)):
            _LOADED[package] = importlib.import_module(package)
    return _LOADED[package]


def _torch_device(device: str) -> Any:
    import torch

    return torch.device(device)


class Judges:
    """Both judges at one viewing geometry; the metric objects are built on first use."""

    def __init__(self, geometry: str = "fhd", device: str = "cpu", max_fixations: int = 6):
        if geometry not in GEOMETRIES:
            raise ValueError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
        self.geometry, self.display = geometry, GEOMETRIES[geometry]
        self.device, self.max_fixations = device, max_fixations
        self._colour: Any = None
        self._foveated: Any = None

    def colour(self, test: np.ndarray, reference: np.ndarray) -> float:
        """ColorVideoVDP JOD of `test` against `reference` (HxWx3 uint8 sRGB), global."""
        if self._colour is None:
            module = _import_alone("pycvvdp")
            self._colour = module.cvvdp(display_name=self.display, device=_torch_device(self.device), quiet=True)
        jod, _ = self._colour.predict(test, reference, dim_order="HWC")
        return float(jod)

    def foveated(self, test: np.ndarray, reference: np.ndarray, fixations: np.ndarray) -> tuple[float, float]:
        """FovVideoVDP JOD with the eye on each of up to `max_fixations` points (K x 2, x then y,
        pixels; evenly chosen along the list when there are more): (mean, worst)."""
        points = np.asarray(fixations, np.float64).reshape(-1, 2)
        if len(points) == 0:
            raise ValueError("foveated judging needs at least one fixation")
        if len(points) > self.max_fixations:
            points = points[np.linspace(0, len(points) - 1, self.max_fixations).round().astype(int)]
        if self._foveated is None:
            module = _import_alone("pyfvvdp")
            self._foveated = module.fvvdp(display_name=self.display, foveated=True,
                                          device=_torch_device(self.device), quiet=True)
        h, w = reference.shape[:2]
        scores = []
        for x, y in points:
            eye = np.array([min(max(round(x), 0), w - 1), min(max(round(y), 0), h - 1)])
            jod, _ = self._foveated.predict(test, reference, dim_order="HWC", fixation_point=eye)
            scores.append(float(jod))
        return float(np.mean(scores)), float(np.min(scores))


__all__ = ["GEOMETRIES", "Judges", "missing"]
