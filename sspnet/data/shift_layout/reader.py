"""The shift layout on disk (manifest.csv + files) and its validating reader.

Layout::

    <root>/manifest.csv      one row per image (pristine or distorted)
    <root>/...               images, maps and fixation files anywhere below root

manifest.csv (UTF-8, comma separated, header row required; extra columns are ignored)::

    scene_id     scene identifier; all versions of one scene share it (splits are by scene)
    category     scene category (e.g. ACT, BNW, ... in CUID), may be empty; one per scene
    image        path of the image, relative to root (any format `sspnet.files.images.read_image`
                 reads; EXIF orientation applied)
    distortion   "none" for the pristine row, else a distortion label (e.g. contrast,
                 jpeg, motion_blur, or CUID's CC / JPEG / MB); stored lower-case
    level        empty or 0 for the pristine row, else an integer >= 1 (CUID: 1, 2, 3)
    saliency     relative path of the saliency map: grayscale PNG, 8 or 16 bit, same size
                 as the image (scaled to max 1 on load), or empty
    fixations    relative path of the fixations: .npy array (N, 2|3) or .csv with columns
                 x, y[, observer] (header optional), 0-based pixel coordinates of the
                 image (x = column, y = row), or empty
    saliency_source (optional)  "human" or "synthetic": where the map comes from

At least one of saliency / fixations is required per row; if both are present the map is
used and fixations serve fixation-based metrics (NSS, AUC). Maps from fixations are built
with paper eq. 1 (`sspnet.maps.saliency_map`, default sigma 45/1920 of the width).

Rules checked by `read_shift_dataset` (each violation is a `DatasetError` naming the
manifest line): exactly one pristine row per scene; no two rows with the same
(scene, distortion, level) or the same image; paths relative, inside root, existing;
levels integral and >= 1 for distorted rows; one category per scene; distorted images,
pristine image and maps of one scene all of one size.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from sspnet import maps
from sspnet.data.fixations import DatasetError
from sspnet.files.images import ImageReadError, image_size, read_image
from sspnet.files.mapfiles import read_map

__all__ = [
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "OPTIONAL_COLUMNS",
    "PRISTINE",
    "ShiftRecord",
    "ShiftScene",
    "load_fixation_file",
    "load_map_file",
    "read_shift_dataset",
]

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS: tuple[str, ...] = ("scene_id", "category", "image", "distortion", "level", "saliency", "fixations")
OPTIONAL_COLUMNS: tuple[str, ...] = ("saliency_source",)
PRISTINE = "none"
FIXATION_SUFFIXES = (".npy", ".csv")


# ----------------------------------------------------------------------------- files


def load_map_file(path: str | Path) -> np.ndarray:
    """Grayscale map image (8 or 16 bit) as float32 scaled to max 1 (all-zero stays zero)."""
    try:
        arr = read_map(path)
    except ImageReadError as exc:
        raise DatasetError(f"{path}: cannot read the saliency map ({exc})") from exc
    sm = arr.astype(np.float32)
    peak = float(sm.max()) if sm.size else 0.0
    return sm / peak if peak > 0 else sm


def load_fixation_file(path: str | Path) -> np.ndarray:
    """(N, 2 or 3) float64 array of 0-based x, y[, observer] from .npy or .csv."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".csv":
            text = path.read_text(encoding="utf-8-sig")
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if lines and any(c.isalpha() for c in lines[0]):
                lines = lines[1:]  # header such as "x,y,observer"
            arr = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", ndmin=2) if lines else np.zeros((0, 2))
        else:
            raise DatasetError(f"{path}: fixations must be .npy or .csv")
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{path}: cannot read fixations ({exc})") from exc
    arr = np.asarray(arr)
    if arr.size == 0:
        return np.zeros((0, 2), np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (2, 3) or arr.dtype.kind not in "iuf":
        raise DatasetError(f"{path}: fixations must be a numeric (N, 2) or (N, 3) array, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise DatasetError(f"{path}: non-finite fixation values")
    return arr


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ShiftRecord:
    """One image of a scene (pristine or distorted) and where its saliency comes from."""

    image: Path
    distortion: str
    level: int
    width: int
    height: int
    saliency: Path | None = None
    fixations: Path | None = None
    saliency_source: str = ""
    line: int = 0  # manifest line, for messages

    @property
    def is_pristine(self) -> bool:
        return self.distortion == PRISTINE

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def label(self) -> str:
        """e.g. 'jpeg_2' or 'none' (the paper's type_level naming)."""
        return PRISTINE if self.is_pristine else f"{self.distortion}_{self.level}"

    def load_image(self) -> np.ndarray:
        """HxWx3 uint8 RGB (`sspnet.files.images.read_image`)."""
        return read_image(self.image)

    def load_fixations(self) -> np.ndarray | None:
        """(N, 2) float64 0-based (x, y), or None when the row has no fixation file."""
        if self.fixations is None:
            return None
        return load_fixation_file(self.fixations)[:, :2]

    def load_fixation_map(self) -> np.ndarray | None:
        """Boolean HxW map of fixated pixels, or None without fixations."""
        xy = self.load_fixations()
        return None if xy is None else maps.fixation_map(xy, self.shape)

    def load_saliency(self, sigma: float | None = None) -> np.ndarray:
        """float32 HxW map, max 1: the map file if given, else eq. 1 from the fixations."""
        if self.saliency is not None:
            sm = load_map_file(self.saliency)
            if sm.shape != self.shape:
                got = f"{sm.shape[1]}x{sm.shape[0]}"
                raise DatasetError(f"{self.saliency}: map is {got}, image is {self.width}x{self.height}")
            return sm
        xy = self.load_fixations()
        assert xy is not None  # the reader guarantees one of the two
        return maps.saliency_map(xy, self.shape, sigma)


@dataclass(frozen=True)
class ShiftScene:
    """A pristine image and its distorted versions (sorted by distortion, level)."""

    scene_id: str
    category: str
    pristine: ShiftRecord
    distorted: tuple[ShiftRecord, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------- reading


def _relative_path(root: Path, value: str, where: str, column: str) -> Path:
    rel = PurePosixPath(value.replace("\\", "/"))
    if rel.is_absolute() or Path(value).is_absolute() or (rel.parts and ":" in rel.parts[0]):
        raise DatasetError(f"{where}: {column} path {value!r} must be relative to the dataset root")
    if ".." in rel.parts:
        raise DatasetError(f"{where}: {column} path {value!r} leaves the dataset root")
    path = root.joinpath(*rel.parts)
    if not path.is_file():
        raise DatasetError(f"{where}: {column} file {value!r} not found under {root}")
    return path


def _image_size(path: Path, where: str, exif_orientation: bool = True) -> tuple[int, int]:
    """(width, height) from the header; maps are read unrotated (`read_map`), images rotated."""
    try:
        return image_size(path, exif_orientation=exif_orientation)
    except ImageReadError as exc:
        raise DatasetError(f"{where}: {path} is not a readable image ({exc})") from exc


def _parse_level(value: str, pristine: bool, where: str) -> int:
    if pristine:
        if value not in ("", "0"):
            raise DatasetError(
                f"{where}: the pristine row (distortion 'none') must have an empty level or 0, got {value!r}"
            )
        return 0
    try:
        level = int(value)
    except ValueError:
        raise DatasetError(f"{where}: level {value!r} is not an integer") from None
    if level < 1:
        raise DatasetError(f"{where}: level must be >= 1 for a distorted image, got {level}")
    return level


def _read_manifest(manifest: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, stripped row) per data row; the header must hold MANIFEST_COLUMNS."""
    if not manifest.is_file():
        raise DatasetError(f"{manifest}: manifest not found")
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in MANIFEST_COLUMNS if c not in header]
        if missing:
            raise DatasetError(f"{manifest}: missing column(s) {missing}; header is {header}")
        reader.fieldnames = header
        rows = []
        for row in reader:
            if row.get(None):
                raise DatasetError(f"{manifest}:{reader.line_num}: more fields than the header's {len(header)}")
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}))
    if not rows:
        raise DatasetError(f"{manifest}: no rows")
    return rows


def _parse_row(root: Path, row: dict[str, str], where: str) -> tuple[str, int, Path, Path | None, Path | None]:
    """(distortion, level, image, saliency, fixations) of one row: labels and paths checked."""
    distortion = row["distortion"].lower()
    if not distortion:
        raise DatasetError(f"{where}: empty distortion (use {PRISTINE!r} for the pristine image)")
    level = _parse_level(row["level"], distortion == PRISTINE, where)
    if not row["image"]:
        raise DatasetError(f"{where}: empty image path")
    image = _relative_path(root, row["image"], where, "image")
    saliency = _relative_path(root, row["saliency"], where, "saliency") if row["saliency"] else None
    fixations = _relative_path(root, row["fixations"], where, "fixations") if row["fixations"] else None
    if saliency is None and fixations is None:
        raise DatasetError(f"{where}: needs a saliency map or a fixation file (both empty)")
    if fixations is not None and fixations.suffix.lower() not in FIXATION_SUFFIXES:
        raise DatasetError(f"{where}: fixations file {row['fixations']!r} must be .npy or .csv")
    return distortion, level, image, saliency, fixations


def _sizes(image: Path, saliency: Path | None, where: str) -> tuple[int, int]:
    """(width, height) of the image; its map, if any, must have the same."""
    width, height = _image_size(image, where)
    if saliency is not None:
        mw, mh = _image_size(saliency, where, exif_orientation=False)
        if (mw, mh) != (width, height):
            raise DatasetError(f"{where}: saliency map is {mw}x{mh} but the image is {width}x{height}")
    return width, height


def _scene(scene_id: str, s: dict, manifest: Path) -> ShiftScene:
    """A scene's rows checked together: one pristine row, all images of its size."""
    p = s["pristine"]
    if p is None:
        raise DatasetError(f"{manifest}: scene {scene_id!r} (line {s['line']}) has no pristine row (distortion 'none')")
    for d in s["distorted"]:
        if d.shape != p.shape:
            raise DatasetError(
                f"{manifest}:{d.line}: distorted image is {d.width}x{d.height} but the pristine image of "
                f"scene {scene_id!r} is {p.width}x{p.height}"
            )
    distorted = tuple(sorted(s["distorted"], key=lambda r: (r.distortion, r.level)))
    return ShiftScene(scene_id, s["category"], p, distorted)


def read_shift_dataset(root: str | Path) -> list[ShiftScene]:
    """Read and validate `root`/manifest.csv; scenes sorted by scene_id."""
    root = Path(root)
    manifest = root / MANIFEST_NAME
    by_key: dict[tuple[str, str, int], int] = {}
    by_image: dict[Path, int] = {}
    scenes: dict[str, dict] = {}
    for line, row in _read_manifest(manifest):
        where = f"{manifest}:{line}"
        scene_id, category = row["scene_id"], row["category"]
        if not scene_id:
            raise DatasetError(f"{where}: empty scene_id")
        distortion, level, image, saliency, fixations = _parse_row(root, row, where)
        key = (scene_id, distortion, level)
        if key in by_key:
            raise DatasetError(
                f"{where}: duplicate row for scene {scene_id!r}, distortion {distortion!r}, level {level} "
                f"(first on line {by_key[key]})"
            )
        by_key[key] = line
        resolved = image.resolve()
        if resolved in by_image:
            raise DatasetError(f"{where}: image {row['image']!r} already used on line {by_image[resolved]}")
        by_image[resolved] = line
        width, height = _sizes(image, saliency, where)
        source = row.get("saliency_source", "")
        record = ShiftRecord(image, distortion, level, width, height, saliency, fixations, source, line)
        scene = scenes.setdefault(scene_id, {"category": category, "line": line, "pristine": None, "distorted": []})
        if scene["category"] != category:
            raise DatasetError(
                f"{where}: scene {scene_id!r} has category {category!r} "
                f"but {scene['category']!r} on line {scene['line']}"
            )
        if record.is_pristine:
            scene["pristine"] = record
        else:
            scene["distorted"].append(record)
    return [_scene(scene_id, scenes[scene_id], manifest) for scene_id in sorted(scenes)]
