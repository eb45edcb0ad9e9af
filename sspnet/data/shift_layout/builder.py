"""`sspnet build-shift`: write a shift layout from a free-viewing set, distorted maps synthesised.

Pristine rows carry the human map (eq. 1 of the real fixations) and the fixations; each
(distortion, level) gets a lossless PNG of `sspnet.distortions.distort` and a SYNTHETIC map
(`synthetic.synthesize_distorted_saliency`, not human data). Every file goes through the one
atomic writer, and the manifest is written last, so an interrupted build never looks complete.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sspnet import maps
from sspnet.data.fixations import DatasetError, EyeTrackingImage
from sspnet.distortions import LEVELS, canonical_kind, distort
from sspnet.files.images import read_image
from sspnet.files.mapfiles import encode_map_png, encode_png
from sspnet.files.outputs import write_bytes_atomic

from .reader import MANIFEST_COLUMNS, MANIFEST_NAME, OPTIONAL_COLUMNS, PRISTINE, ShiftScene, read_shift_dataset
from .synthetic import SYNTH_ALPHA, synthesize_distorted_saliency

__all__ = ["build_shift_layout"]

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

Layout: see the docstring of sspnet/data/shift_layout/reader.py and docs/DATA.md.
Pristine images are byte copies of the original stimuli; distorted images are
lossless PNG; maps are {bits}-bit grayscale PNG scaled to max 1; pristine fixations
are .npy arrays (N, 3) of 0-based x, y, observer.
"""


def _write(root: Path, rel: str, data: bytes) -> str:
    """`data` to root/rel atomically (folders created); returns rel for the manifest."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    return rel


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _check_request(
    images: Sequence[EyeTrackingImage], out_root: Path, distortions: Sequence[str], levels: Sequence[int], map_bits: int
) -> list[str]:
    """Refuse a build that would be wrong or harmful before writing anything; canonical kinds."""
    if map_bits not in (8, 16):
        raise ValueError(f"map_bits must be 8 or 16, got {map_bits}")
    if not images:
        raise ValueError("no images to build from")
    kinds = [canonical_kind(k) for k in distortions]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"distortions repeat: {list(distortions)}")
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"levels must be among {LEVELS}, got {level!r}")
    stems = [it.stem for it in images]
    if len(set(stems)) != len(stems):
        raise ValueError("image names must be unique (by stem) to become scene ids")
    out_abs = out_root.resolve()
    for it in images:
        data_root = Path(it.image_path).resolve().parent
        data_root = data_root.parent if data_root.name == "stimuli" else data_root
        if out_abs == data_root or data_root in out_abs.parents:
            raise ValueError(f"refusing to write inside the source data folder {data_root}")
    return kinds


def _write_scene(
    it: EyeTrackingImage,
    scene: str,
    out_root: Path,
    kinds: list[str],
    levels: Sequence[int],
    sigma: float | None,
    map_bits: int,
) -> list[list[str]]:
    """All files of one scene; its manifest rows (pristine first)."""
    pristine = read_image(it.image_path)
    if pristine.shape[:2] != it.shape:
        got = f"{pristine.shape[1]}x{pristine.shape[0]}"
        raise DatasetError(f"{it.image_path}: image is {got}, expected {it.width}x{it.height}")
    suffix = Path(it.image_path).suffix.lower() or ".png"
    # the exact stimulus file the observers saw, byte for byte
    img_rel = _write(out_root, f"images/{scene}/pristine{suffix}", Path(it.image_path).read_bytes())
    sm_r = maps.saliency_map(it.fixations.xy, it.shape, sigma)
    sal_rel = _write(out_root, f"saliency/{scene}/pristine.png", encode_map_png(sm_r, map_bits))
    xyo = np.stack([it.fixations.x, it.fixations.y, it.fixations.observer.astype(np.float64)], axis=1)
    fix_rel = _write(out_root, f"fixations/{scene}/pristine.npy", _npy_bytes(xyo))
    rows = [[scene, "", img_rel, PRISTINE, "", sal_rel, fix_rel, "human"]]
    for kind in kinds:
        for level in levels:
            distorted = distort(pristine, kind, level)
            d_img = _write(out_root, f"images/{scene}/{kind}_{level}.png", encode_png(distorted))
            sm_d = synthesize_distorted_saliency(sm_r, pristine, distorted, level, sigma)
            d_sal = _write(out_root, f"saliency/{scene}/{kind}_{level}.png", encode_map_png(sm_d, map_bits))
            rows.append([scene, "", d_img, kind, str(level), d_sal, "", "synthetic"])
    return rows


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
    out_root = Path(out_root)
    kinds = _check_request(images, out_root, distortions, levels, map_bits)
    manifest = out_root / MANIFEST_NAME
    if manifest.exists() and not overwrite:
        raise FileExistsError(f"{manifest} exists (pass overwrite=True to rebuild)")
    out_root.mkdir(parents=True, exist_ok=True)
    name = dataset_name or images[0].dataset or "dataset"

    rows: list[list[str]] = []
    for it in tqdm(images, total=len(images), desc="shift layout", unit="scene", disable=not progress):
        rows += _write_scene(it, f"{name}-{it.stem}", out_root, kinds, levels, sigma, map_bits)

    readme = _README.format(
        dataset=name,
        n=len(images),
        distortions=", ".join(kinds),
        levels=", ".join(map(str, levels)),
        alpha=SYNTH_ALPHA,
        bits=map_bits,
    )
    _write(out_root, "README.md", readme.encode("utf-8"))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(MANIFEST_COLUMNS) + list(OPTIONAL_COLUMNS))
    writer.writerows(rows)
    _write(out_root, MANIFEST_NAME, buf.getvalue().encode("utf-8"))
    return read_shift_dataset(out_root)
