"""Tiny on-disk datasets for training / evaluation / CLI tests.

`write_blob_dataset` writes a folder in the OSIE / EyeCrowd layout (stimuli/*.jpg +
eye/fixations.mat as a cell array of 1x1 structs, the form of the real files, see
tests/test_data.py): each image is dark noise with a few bright blobs, and every observer
fixates near the blobs, so the saliency task is learnable and the maps are not uniform.

`write_shift_layout` turns such a folder into a small shift layout with
`sspnet.data.build_shift_layout` (synthetic distorted maps).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from sspnet.data import build_shift_layout, read_fixation_dataset
from sspnet.net.configs import CONFIGS, ModelConfig

TINY_CANVAS = (48, 64)  # (height, width) letterbox canvas of the tiny model
IMAGE_SIZE = (64, 48)  # (width, height) of the stimuli: same aspect as the canvas


def tiny_model_config(size: tuple[int, int] = TINY_CANVAS) -> ModelConfig:
    """The `default` architecture at a small input size (fast on a CPU)."""
    return dataclasses.replace(CONFIGS["default"], input_size=size)


def _cell(values: list) -> np.ndarray:
    """MATLAB N x 1 cell array (scipy writes object arrays as cells)."""
    cell = np.empty((len(values), 1), dtype=object)
    for i, v in enumerate(values):
        cell[i, 0] = v
    return cell


def _blob_image(rng: np.random.Generator, width: int, height: int, centres: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = rng.uniform(0, 60, (height, width, 3))
    for cx, cy in centres:
        colour = rng.uniform(150, 255, 3)
        radius = rng.uniform(3.0, 6.0)
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))
        img = img * (1 - g[..., None]) + colour * g[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_blob_dataset(
    root: str | Path,
    n: int = 12,
    size: tuple[int, int] = IMAGE_SIZE,
    subjects: int = 3,
    seed: int = 0,
) -> Path:
    """Write `n` images of `size` (width, height) with fixations near random blobs.

    Coordinates are stored 1-based, as MATLAB writes them, and always inside the image.
    Returns `root`.
    """
    root = Path(root)
    width, height = size
    (root / "stimuli").mkdir(parents=True)
    (root / "eye").mkdir()
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(n):
        name = f"{i + 1:04d}.jpg"
        k = int(rng.integers(1, 4))
        centres = np.stack([rng.uniform(8, width - 9, k), rng.uniform(8, height - 9, k)], axis=1)
        Image.fromarray(_blob_image(rng, width, height, centres)).save(root / "stimuli" / name, quality=95)
        subs = []
        for _ in range(subjects):
            m = int(rng.integers(2, 5))
            picks = centres[rng.integers(0, k, m)] + rng.normal(0, 2.0, (m, 2))
            x = np.clip(picks[:, 0], 0, width - 1) + 1.0  # 0-based -> MATLAB 1-based
            y = np.clip(picks[:, 1], 0, height - 1) + 1.0
            subs.append({
                "fix_x": x.reshape(1, -1),
                "fix_y": y.reshape(1, -1),
                "fix_duration": rng.integers(100, 400, (1, m)).astype(np.uint16),
            })
        entries.append({"img": name, "subjects": _cell(subs)})
    scipy.io.savemat(root / "eye" / "fixations.mat", {"fixations": _cell(entries)})
    return root


def write_shift_layout(
    source: str | Path,
    out: str | Path,
    limit: int = 3,
    distortions: tuple[str, ...] = ("contrast", "jpeg"),
    levels: tuple[int, ...] = (3,),
):
    """A shift layout of the first `limit` images of a blob dataset; returns its scenes."""
    items = read_fixation_dataset(source)[:limit]
    return build_shift_layout(items, out, distortions, levels)
