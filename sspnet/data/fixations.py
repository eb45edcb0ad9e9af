"""Reader for free-viewing eye-tracking sets stored in the OSIE / EyeCrowd MATLAB format.

Layout of a dataset folder (docs/DATA.md)::

    <root>/stimuli/*.jpg            the images shown to the observers
    <root>/eye/fixations.mat        `fixations`: N entries, one per image, each with
        .img                        the image file name, e.g. '1001.jpg'
        .subjects(j).fix_x          1 x K pixel columns, 1-based (MATLAB)
        .subjects(j).fix_y          1 x K pixel rows, 1-based
        .subjects(j).fix_duration   1 x K milliseconds

The files on disk are in fact MATLAB cell arrays of 1x1 structs, while the format is
described as struct arrays; both load differently through scipy, so the reader unwraps
1x1 containers wherever they appear instead of hard-coding one nesting.

Everything returned is 0-based (column x, row y in pixels of the stimulus), the
convention of numpy indexing and of `sspnet.maps`, so no caller ever has to remember the
MATLAB offset. Problems are reported as `DatasetError` naming the file and the entry,
because a silently skipped or shifted fixation corrupts every saliency map built on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sspnet.files.images import ImageReadError, image_size

__all__ = ["DatasetError", "EyeTrackingImage", "Fixations", "read_fixation_dataset", "read_fixations_mat"]

MAT_RELATIVE_PATH = Path("eye") / "fixations.mat"
STIMULI_DIR = "stimuli"


class DatasetError(ValueError):
    """A dataset on disk does not have the expected layout or content."""


@dataclass(frozen=True, eq=False)
class Fixations:
    """All fixations of all observers on one image, as parallel 1-D arrays.

    x, y: 0-based pixel coordinates (float64, sub-pixel); duration_ms: float32;
    observer: int32 index of the observer within this image's list of subjects.
    """

    x: np.ndarray
    y: np.ndarray
    duration_ms: np.ndarray
    observer: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.x)
        if not (len(self.y) == len(self.duration_ms) == len(self.observer) == n):
            raise ValueError("Fixations arrays must all have the same length")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def xy(self) -> np.ndarray:
        """(N, 2) array of (x, y), the input format of `sspnet.maps`."""
        return np.stack([self.x, self.y], axis=1)

    @property
    def n_observers(self) -> int:
        """Number of distinct observers with at least one fixation."""
        return int(np.unique(self.observer).size)

    @staticmethod
    def empty() -> Fixations:
        return Fixations(
            np.zeros(0, np.float64), np.zeros(0, np.float64), np.zeros(0, np.float32), np.zeros(0, np.int32)
        )


@dataclass(frozen=True, eq=False)
class EyeTrackingImage:
    """One stimulus with its human fixations; `dataset` names the set (used as cache key)."""

    name: str
    image_path: Path
    width: int
    height: int
    fixations: Fixations = field(repr=False)
    dataset: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the numpy order used by the map functions."""
        return (self.height, self.width)

    @property
    def stem(self) -> str:
        return Path(self.name).stem


def _unwrap(value: Any) -> Any:
    """Strip the 1x1 object/struct containers scipy wraps around MATLAB values."""
    while isinstance(value, np.ndarray) and value.size == 1 and (value.dtype == object or value.dtype.names):
        value = value.reshape(-1)[0]
    return value


def _field(record: Any, name: str, where: str) -> Any:
    """Field `name` of a MATLAB struct record, unwrapped; DatasetError if it is absent."""
    names = getattr(getattr(record, "dtype", None), "names", None)
    if not names or name not in names:
        raise DatasetError(f"{where}: struct has no field {name!r} (fields: {list(names or [])})")
    return _unwrap(record[name])


def _as_name(value: Any, where: str) -> str:
    value = _unwrap(value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, (str, np.str_)) and str(value).strip():
        return str(value).strip()
    raise DatasetError(f"{where}: field 'img' is not a file name (got {value!r})")


def _as_vector(value: Any, where: str) -> np.ndarray:
    value = _unwrap(value)
    if not isinstance(value, np.ndarray) or value.dtype == object or value.dtype.names:
        raise DatasetError(f"{where}: expected a numeric 1 x K array, got {type(value).__name__}")
    if value.dtype.kind not in "iuf":
        raise DatasetError(f"{where}: expected numbers, got dtype {value.dtype}")
    if value.ndim > 2 or (value.ndim == 2 and min(value.shape) > 1):
        raise DatasetError(f"{where}: expected a 1 x K array, got shape {value.shape}")
    return value.reshape(-1)


def _subjects(record: Any, where: str) -> list[Any]:
    subjects = _field(record, "subjects", where)
    if isinstance(subjects, np.void):  # a single subject stored as a bare struct
        return [subjects]
    if not isinstance(subjects, np.ndarray):
        raise DatasetError(f"{where}: field 'subjects' is not a struct array (got {type(subjects).__name__})")
    # MATLAB stores column-major; ravel in Fortran order keeps subject j at position j.
    return [_unwrap(s) if subjects.dtype == object else s for s in subjects.ravel(order="F")]


def _read_entry(record: Any, where: str) -> tuple[str, Fixations]:
    name = _as_name(_field(record, "img", where), where)
    where = f"{where} ({name})"
    xs, ys, ds, obs = [], [], [], []
    for j, subject in enumerate(_subjects(record, where)):
        w = f"{where}, subject {j}"
        x = _as_vector(_field(subject, "fix_x", w), f"{w}.fix_x")
        y = _as_vector(_field(subject, "fix_y", w), f"{w}.fix_y")
        d = _as_vector(_field(subject, "fix_duration", w), f"{w}.fix_duration")
        if not (x.size == y.size == d.size):
            raise DatasetError(f"{w}: fix_x, fix_y, fix_duration have different lengths ({x.size}, {y.size}, {d.size})")
        xs.append(x)
        ys.append(y)
        ds.append(d)
        obs.append(np.full(x.size, j, np.int32))
    if not xs:
        return name, Fixations.empty()
    x = np.concatenate(xs).astype(np.float64) - 1.0  # MATLAB 1-based -> 0-based
    y = np.concatenate(ys).astype(np.float64) - 1.0
    d = np.concatenate(ds).astype(np.float32)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DatasetError(f"{where}: non-finite fixation coordinates")
    return name, Fixations(x, y, d, np.concatenate(obs))


def read_fixations_mat(mat_path: str | Path) -> dict[str, Fixations]:
    """Parse one fixations.mat into {image file name: Fixations (0-based)}; loads the file once."""
    import scipy.io

    mat_path = Path(mat_path)
    if not mat_path.is_file():
        raise DatasetError(f"{mat_path}: fixation file not found")
    try:
        mat = scipy.io.loadmat(mat_path)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise DatasetError(f"{mat_path}: cannot be read as a MATLAB file ({exc})") from exc
    if "fixations" not in mat:
        keys = [k for k in mat if not k.startswith("__")]
        raise DatasetError(f"{mat_path}: no variable 'fixations' (variables: {keys})")
    entries = mat["fixations"]
    if not isinstance(entries, np.ndarray) or entries.size == 0:
        raise DatasetError(f"{mat_path}: 'fixations' is empty or not an array")
    out: dict[str, Fixations] = {}
    for i, entry in enumerate(entries.ravel(order="F")):
        where = f"{mat_path}: fixations entry {i}"
        record = _unwrap(entry) if entries.dtype == object else entry
        name, fix = _read_entry(record, where)
        if name in out:
            raise DatasetError(f"{where}: image {name!r} appears more than once")
        out[name] = fix
    return out


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, as `sspnet.files.images.read_image` will orient the pixels."""
    if not path.is_file():
        raise DatasetError(f"{path}: image listed in the fixation file is missing")
    try:
        return image_size(path)
    except ImageReadError as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from exc


def read_fixation_dataset(
    root: str | Path,
    *,
    name: str | None = None,
    on_outside: Literal["error", "drop", "clip"] = "error",
) -> list[EyeTrackingImage]:
    """Read `root`/eye/fixations.mat and the stimuli sizes; one item per image, sorted by name.

    `name` (default: the folder name) identifies the set in cache keys. Fixations outside the
    image raise by default (they mean wrong coordinates or a wrong image), or can be dropped
    or clipped for sets known to contain tracker overshoot.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if on_outside not in ("error", "drop", "clip"):
        raise ValueError(f"on_outside must be 'error', 'drop' or 'clip', got {on_outside!r}")
    mat_path = root / MAT_RELATIVE_PATH
    stimuli = root / STIMULI_DIR
    if not stimuli.is_dir():
        raise DatasetError(f"{stimuli}: stimuli folder not found")
    per_image = read_fixations_mat(mat_path)
    dataset = name if name is not None else root.resolve().name
    items = []
    for image_name in sorted(per_image):
        path = stimuli / image_name
        width, height = _image_size(path)
        fix = per_image[image_name]
        # Same rule as sspnet.maps: a fixation is inside iff its nearest pixel is.
        col, row = np.floor(fix.x + 0.5), np.floor(fix.y + 0.5)
        inside = (col >= 0) & (col <= width - 1) & (row >= 0) & (row <= height - 1)
        if not inside.all():
            if on_outside == "error":
                k = int(np.argmin(inside))
                raise DatasetError(
                    f"{mat_path}: {image_name}: {int((~inside).sum())} fixation(s) outside the "
                    f"{width}x{height} image, e.g. (x={fix.x[k] + 1:g}, y={fix.y[k] + 1:g}) 1-based"
                )
            if on_outside == "drop":
                fix = Fixations(fix.x[inside], fix.y[inside], fix.duration_ms[inside], fix.observer[inside])
            else:
                fix = Fixations(
                    np.clip(fix.x, 0, width - 1), np.clip(fix.y, 0, height - 1), fix.duration_ms, fix.observer
                )
        items.append(EyeTrackingImage(image_name, path, width, height, fix, dataset))
    return items
