"""On-disk layout for saliency-shift data (pristine + distorted images with saliency), CUID-VSS style.

SSPNet learns from scenes: one pristine image and several distorted versions of it, each
with human saliency. CUID-VSS itself is not public, so this module fixes a simple folder
layout that anyone holding such data can write by hand or with a script, and that
`build_shift_layout` writes from a free-viewing set (with synthetic distorted maps).

Layout::

    <root>/manifest.csv      one row per image (pristine or distorted)
    <root>/...               images, maps and fixation files anywhere below root

manifest.csv (UTF-8, comma separated, header row required; extra columns are ignored)::

    scene_id     scene identifier; all versions of one scene share it (splits are by scene)
    category     scene category (e.g. ACT, BNW, ... in CUID), may be empty; one per scene
    image        path of the image, relative to root (any format PIL reads)
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

Synthetic distorted saliency (`build_shift_layout`): free-viewing sets give human data for
pristine images only, so the builder SYNTHESISES the map of each distorted image:

    visibility = G * mean_c |distorted - pristine|       (G: Gaussian of the fovea width)
    SM_d       = normalise_max(SM_r / max(SM_r) + alpha(level) * visibility / max(visibility))

i.e. the human pristine map plus attention drawn to where the distortion changed the image
most, more strongly at higher levels (`SYNTH_ALPHA`). These maps are NOT human data: they
let the shift pipeline (datasets, model, losses, training loop) run end to end and test
that it learns a known rule, but scores on them say nothing about human attention. The
builder marks them `saliency_source=synthetic` and writes a README.md saying so.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from sspnet import maps
from sspnet.data.fixations import DatasetError, EyeTrackingImage
from sspnet.distortions import LEVELS, canonical_kind, distort

__all__ = [
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "PRISTINE",
    "SYNTH_ALPHA",
    "ShiftRecord",
    "ShiftScene",
    "build_shift_layout",
    "load_fixation_file",
    "load_map_file",
    "read_shift_dataset",
    "synthesize_distorted_saliency",
]

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS: tuple[str, ...] = ("scene_id", "category", "image", "distortion", "level", "saliency", "fixations")
OPTIONAL_COLUMNS: tuple[str, ...] = ("saliency_source",)
PRISTINE = "none"
FIXATION_SUFFIXES = (".npy", ".csv")

# Weight of the visibility term per level: the worse the distortion, the more it competes
# with the scene content for attention. At level 3 the most visible distortion region gets
# as much weight as the most salient content (SM_r max 1).
SYNTH_ALPHA: dict[int, float] = {1: 0.25, 2: 0.5, 3: 1.0}


# ----------------------------------------------------------------------------- loading


def load_rgb(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB of any image file PIL reads (grey, palette, CMYK converted)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


def load_map_file(path: str | Path) -> np.ndarray:
    """Grayscale map image (8 or 16 bit) as float32 scaled to max 1 (all-zero stays zero)."""
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DatasetError(f"{path}: cannot read saliency map image")
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[:, :, :3]
        if not (np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 0], arr[:, :, 2])):
            raise DatasetError(f"{path}: saliency map must be grayscale, got a colour image")
        arr = arr[:, :, 0]
    if arr.dtype.kind not in "uf":
        raise DatasetError(f"{path}: unsupported map pixel type {arr.dtype}")
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
        """HxWx3 uint8 RGB."""
        return load_rgb(self.image)

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


def _image_size(path: Path, where: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as exc:
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


def read_shift_dataset(root: str | Path) -> list[ShiftScene]:
    """Read and validate `root`/manifest.csv; scenes sorted by scene_id."""
    root = Path(root)
    manifest = root / MANIFEST_NAME
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

    by_key: dict[tuple[str, str, int], int] = {}
    by_image: dict[Path, int] = {}
    scenes: dict[str, dict] = {}
    for line, row in rows:
        where = f"{manifest}:{line}"
        scene_id, category = row["scene_id"], row["category"]
        if not scene_id:
            raise DatasetError(f"{where}: empty scene_id")
        distortion = row["distortion"].lower()
        if not distortion:
            raise DatasetError(f"{where}: empty distortion (use {PRISTINE!r} for the pristine image)")
        pristine = distortion == PRISTINE
        level = _parse_level(row["level"], pristine, where)
        if not row["image"]:
            raise DatasetError(f"{where}: empty image path")
        image = _relative_path(root, row["image"], where, "image")
        saliency = _relative_path(root, row["saliency"], where, "saliency") if row["saliency"] else None
        fixations = _relative_path(root, row["fixations"], where, "fixations") if row["fixations"] else None
        if saliency is None and fixations is None:
            raise DatasetError(f"{where}: needs a saliency map or a fixation file (both empty)")
        if fixations is not None and fixations.suffix.lower() not in FIXATION_SUFFIXES:
            raise DatasetError(f"{where}: fixations file {row['fixations']!r} must be .npy or .csv")
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

        width, height = _image_size(image, where)
        if saliency is not None:
            mw, mh = _image_size(saliency, where)
            if (mw, mh) != (width, height):
                raise DatasetError(f"{where}: saliency map is {mw}x{mh} but the image is {width}x{height}")
        record = ShiftRecord(
            image, distortion, level, width, height, saliency, fixations, row.get("saliency_source", ""), line
        )
        scene = scenes.setdefault(scene_id, {"category": category, "line": line, "pristine": None, "distorted": []})
        if scene["category"] != category:
            raise DatasetError(
                f"{where}: scene {scene_id!r} has category {category!r} "
                f"but {scene['category']!r} on line {scene['line']}"
            )
        if pristine:
            scene["pristine"] = record
        else:
            scene["distorted"].append(record)

    out = []
    for scene_id in sorted(scenes):
        s = scenes[scene_id]
        p = s["pristine"]
        if p is None:
            raise DatasetError(
                f"{manifest}: scene {scene_id!r} (line {s['line']}) has no pristine row (distortion 'none')"
            )
        for d in s["distorted"]:
            if d.shape != p.shape:
                raise DatasetError(
                    f"{manifest}:{d.line}: distorted image is {d.width}x{d.height} but the pristine image of "
                    f"scene {scene_id!r} is {p.width}x{p.height}"
                )
        distorted = tuple(sorted(s["distorted"], key=lambda r: (r.distortion, r.level)))
        out.append(ShiftScene(scene_id, s["category"], p, distorted))
    return out


# ----------------------------------------------------------------------------- synthesis


def synthesize_distorted_saliency(
    sm_r: np.ndarray,
    pristine: np.ndarray,
    distorted: np.ndarray,
    level: int,
    sigma: float | None = None,
    alpha: float | None = None,
) -> np.ndarray:
    """SYNTHETIC (not human) saliency of a distorted image: SM_r plus where the distortion shows.

    SM_d = normalise_max(SM_r/max + alpha(level) * V/max(V)), V = the per-pixel mean absolute
    RGB difference blurred by a Gaussian of std sigma/sqrt(2) (the eq. 1 kernel
    exp(-d^2/sigma^2), sigma = fovea, default 45/1920 of the width). A proxy rule that makes
    shifts depend on distortion kind, level and location; see the module docstring.
    """
    sm_r = np.asarray(sm_r, np.float32)
    if pristine.shape != distorted.shape or pristine.shape[:2] != sm_r.shape:
        raise ValueError(f"shapes differ: map {sm_r.shape}, pristine {pristine.shape}, distorted {distorted.shape}")
    a = SYNTH_ALPHA[int(level)] if alpha is None else float(alpha)
    _h, w = sm_r.shape
    s = maps.default_sigma(w) if sigma is None else float(sigma)
    diff = np.abs(distorted.astype(np.float32) - pristine.astype(np.float32))
    diff = diff.mean(axis=2) if diff.ndim == 3 else diff
    vis = cv2.GaussianBlur(diff / 255.0, (0, 0), s / np.sqrt(2.0), borderType=cv2.BORDER_REFLECT_101)
    peak_v = float(vis.max())
    vis = vis / peak_v if peak_v > 0 else np.zeros_like(vis)
    peak_r = float(sm_r.max())
    base = sm_r / peak_r if peak_r > 0 else sm_r
    sm_d = base + np.float32(a) * vis
    peak = float(sm_d.max())
    return (sm_d / peak if peak > 0 else sm_d).astype(np.float32)


# ----------------------------------------------------------------------------- building

_README = """\
# Saliency-shift data built by sspnet.data.shift_layout.build_shift_layout

Source: {dataset} ({n} pristine images with human free-viewing fixations).
Distortions: {distortions}; levels {levels} (parameters in sspnet/distortions.py).

WARNING: the saliency maps of DISTORTED images are SYNTHETIC, NOT HUMAN DATA.
No eye-tracking exists for these distorted images. Each distorted map is
    SM_d = normalise_max(SM_r + alpha(level) * visibility)
with SM_r the human map of the pristine image (paper eq. 1 from the real
fixations), visibility = |distorted - pristine| averaged over RGB, blurred by the
fovea Gaussian and scaled to max 1, alpha = {alpha}. Rows carry
saliency_source = human | synthetic in manifest.csv. Use this set to exercise and
test the shift pipeline, never to report how humans react to distortions.

Layout: see the docstring of sspnet/data/shift_layout.py and docs/DATA.md.
Pristine images are byte copies of the original stimuli; distorted images are
lossless PNG; maps are {bits}-bit grayscale PNG scaled to max 1; pristine fixations
are .npy arrays (N, 3) of 0-based x, y, observer.
"""


def _save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"cannot write {path}")


def _save_map(path: Path, sm: np.ndarray, bits: int = 16) -> None:
    top, dtype = (65535, np.uint16) if bits == 16 else (255, np.uint8)
    _save_png(path, np.rint(np.clip(sm, 0, 1) * top).astype(dtype))


def _progress(iterable: Iterable, total: int, enabled: bool) -> Iterable:
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc="shift layout", unit="scene")


def build_shift_layout(
    images: Sequence[EyeTrackingImage],
    out_root: str | Path,
    distortions: Sequence[str] = ("contrast", "jpeg", "motion_blur"),
    levels: Sequence[int] = (1, 2, 3),
    dataset_name: str | None = None,
    sigma: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
    map_bits: int = 16,
) -> list[ShiftScene]:
    """Write a shift layout from free-viewing data; distorted maps are SYNTHETIC (see module doc).

    Pristine rows get the human map and fixations; each (distortion, level) gets a lossless
    PNG image and a synthesised map. Maps are 16-bit by default: SSM = (SM_d - SM_r)+ is a
    small difference of two maps, and 8-bit rounding (`map_bits=8`, 6x smaller files, the
    paper's format) adds +-1/255 of spurious shift everywhere. About 18 MB per 1024x768
    scene with 9 distortions at 16 bit. The manifest is written last, so an interrupted
    build never looks complete. Returns the layout as read back (which validates it).
    """
    if map_bits not in (8, 16):
        raise ValueError(f"map_bits must be 8 or 16, got {map_bits}")
    out_root = Path(out_root)
    if not images:
        raise ValueError("no images to build from")
    kinds = [canonical_kind(k) for k in distortions]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"distortions repeat: {list(distortions)}")
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"levels must be among {LEVELS}, got {level!r}")
    name = dataset_name or images[0].dataset or "dataset"
    stems = [it.stem for it in images]
    if len(set(stems)) != len(stems):
        raise ValueError("image names must be unique (by stem) to become scene ids")
    out_abs = out_root.resolve()
    for it in images:
        data_root = Path(it.image_path).resolve().parent
        data_root = data_root.parent if data_root.name == "stimuli" else data_root
        if out_abs == data_root or data_root in out_abs.parents:
            raise ValueError(f"refusing to write inside the source data folder {data_root}")
    manifest = out_root / MANIFEST_NAME
    if manifest.exists() and not overwrite:
        raise FileExistsError(f"{manifest} exists (pass overwrite=True to rebuild)")
    out_root.mkdir(parents=True, exist_ok=True)

    header = list(MANIFEST_COLUMNS) + list(OPTIONAL_COLUMNS)
    rows: list[list[str]] = []
    for it in _progress(images, len(images), progress):
        scene = f"{name}-{it.stem}"
        pristine = load_rgb(it.image_path)
        if pristine.shape[:2] != it.shape:
            got = f"{pristine.shape[1]}x{pristine.shape[0]}"
            raise DatasetError(f"{it.image_path}: image is {got}, expected {it.width}x{it.height}")
        suffix = Path(it.image_path).suffix.lower() or ".png"
        img_rel = f"images/{scene}/pristine{suffix}"
        (out_root / img_rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(it.image_path, out_root / img_rel)  # the exact stimulus the observers saw
        sm_r = maps.saliency_map(it.fixations.xy, it.shape, sigma)
        sal_rel = f"saliency/{scene}/pristine.png"
        _save_map(out_root / sal_rel, sm_r, map_bits)
        fix_rel = f"fixations/{scene}/pristine.npy"
        (out_root / fix_rel).parent.mkdir(parents=True, exist_ok=True)
        xyo = np.stack([it.fixations.x, it.fixations.y, it.fixations.observer.astype(np.float64)], axis=1)
        np.save(out_root / fix_rel, xyo)
        rows.append([scene, "", img_rel, PRISTINE, "", sal_rel, fix_rel, "human"])
        for kind in kinds:
            for level in levels:
                distorted = distort(pristine, kind, level)
                d_img = f"images/{scene}/{kind}_{level}.png"
                _save_png(out_root / d_img, distorted)
                d_sal = f"saliency/{scene}/{kind}_{level}.png"
                sm_d = synthesize_distorted_saliency(sm_r, pristine, distorted, level, sigma)
                _save_map(out_root / d_sal, sm_d, map_bits)
                rows.append([scene, "", d_img, kind, str(level), d_sal, "", "synthetic"])

    readme = _README.format(
        dataset=name,
        n=len(images),
        distortions=", ".join(kinds),
        levels=", ".join(map(str, levels)),
        alpha=SYNTH_ALPHA,
        bits=map_bits,
    )
    (out_root / "README.md").write_text(readme, encoding="utf-8")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    fd, tmp = tempfile.mkstemp(dir=out_root, prefix=".manifest-", suffix=".csv")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; the manifest is an ordinary data file
    os.replace(tmp, manifest)
    return read_shift_dataset(out_root)
