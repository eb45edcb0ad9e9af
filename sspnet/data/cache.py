"""On-disk cache of ground-truth saliency maps (paper eq. 1), computed once from fixations.

Why a cache: a training epoch reads every map many times and DataLoader workers would
recompute the same Gaussian sums; the maps depend only on the fixations, the image shape
and sigma, so they are computed once and stored as 16-bit grayscale PNG (value =
round(SM * 65535), SM scaled to max 1). 16 bits keep the map to 1.5e-5, far below anything
a metric or loss resolves, at a fifth of the size of a compressed float32 array. Maps are
always returned after that quantisation, whether freshly computed or read back, so a run
never depends on the cache being warm.

Location: `cache_dir` argument, else `$SSPNET_CACHE`, else `~/.cache/sspnet`, under
`saliency/<dataset>/`. The file name carries the image name and a SHA-1 of everything the
map depends on (dataset, image name, shape, sigma, the fixation coordinates and a format
version), so a changed dataset or sigma can never be served a stale map. Data folders are
treated as read-only: a cache inside a dataset folder is refused.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sspnet import maps
from sspnet.data.fixations import EyeTrackingImage
from sspnet.files.mapfiles import encode_map_png, map_levels, read_map
from sspnet.files.outputs import write_bytes_atomic

__all__ = [
    "cache_key",
    "cached_map",
    "decode_map_png",
    "default_cache_dir",
    "encode_map_png",
    "get_saliency_map",
    "precompute_saliency_maps",
    "saliency_cache_path",
]

CACHE_ENV = "SSPNET_CACHE"
CACHE_FORMAT_VERSION = 1
_PNG_SCALE = 65535.0


def default_cache_dir() -> Path:
    """`$SSPNET_CACHE` if set, else `~/.cache/sspnet`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sspnet"


def _resolve_dir(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def _safe(name: str) -> str:
    """File-system-safe version of a dataset or image name (keeps it readable)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "x"


def quantize_map(sm: np.ndarray) -> np.ndarray:
    """The float32 values a map has after a round trip through 16-bit PNG."""
    return map_levels(sm, 16).astype(np.float32) / np.float32(_PNG_SCALE)


def decode_map_png(data: bytes) -> np.ndarray:
    """Inverse of `encode_map_png`; raises ValueError on anything but a 16-bit greyscale map."""
    arr = read_map(data)
    if arr.dtype != np.uint16:
        raise ValueError(f"not a 16-bit greyscale map PNG (got {arr.dtype})")
    return (arr.astype(np.float32) / np.float32(_PNG_SCALE)).astype(np.float32)


def _write(path: Path, data: bytes) -> None:
    """`sspnet.files.images.write_bytes_atomic`, folders created: concurrent readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)


def cached_map(
    path: Path, compute: Callable[[], np.ndarray], shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Map stored at `path` if readable (and of `shape`), else `compute()` it and store it.

    An unwritable cache only warns: the map is still returned.
    """
    if path.is_file():
        try:
            sm = decode_map_png(path.read_bytes())
            if shape is None or sm.shape == tuple(shape):
                return sm
        except (OSError, ValueError):
            pass  # corrupt or foreign file: recompute and overwrite
    sm = quantize_map(compute())
    try:
        _write(path, encode_map_png(sm))
    except OSError as exc:
        warnings.warn(f"saliency cache not writable ({path}): {exc}", RuntimeWarning, stacklevel=2)
    return sm


def _effective_sigma(item: EyeTrackingImage, sigma: float | None) -> float:
    return float(maps.default_sigma(item.width) if sigma is None else sigma)


def cache_key(item: EyeTrackingImage, sigma: float | None = None) -> str:
    """SHA-1 over everything the map depends on (see module docstring)."""
    h = hashlib.sha1()
    s = _effective_sigma(item, sigma)
    h.update(f"v{CACHE_FORMAT_VERSION}|{item.dataset}|{item.name}|{item.height}x{item.width}|{s!r}|".encode())
    h.update(np.ascontiguousarray(item.fixations.x, np.float64).tobytes())
    h.update(np.ascontiguousarray(item.fixations.y, np.float64).tobytes())
    return h.hexdigest()


def saliency_cache_path(
    item: EyeTrackingImage, cache_dir: str | Path | None = None, sigma: float | None = None
) -> Path:
    """Where the map of `item` is (or will be) cached."""
    root = _resolve_dir(cache_dir)
    s = _effective_sigma(item, sigma)
    name = f"{_safe(item.stem)}_s{s:.4g}_{item.height}x{item.width}_{cache_key(item, sigma)[:16]}.png"
    return root / "saliency" / _safe(item.dataset or "default") / name


def _check_not_in_data(path: Path, item: EyeTrackingImage) -> None:
    data_root = Path(item.image_path).resolve().parent
    if data_root.name == "stimuli":  # the <dataset>/stimuli layout: protect the whole dataset
        data_root = data_root.parent
    try:
        path.resolve().relative_to(data_root)
    except ValueError:
        return
    raise ValueError(f"refusing to cache beside the data: {path} is inside the dataset folder {data_root}")


def get_saliency_map(
    item: EyeTrackingImage, cache_dir: str | Path | None = None, sigma: float | None = None
) -> np.ndarray:
    """Eq. 1 saliency map of `item` (float32 HxW, max 1), from the cache or computed and cached."""
    path = saliency_cache_path(item, cache_dir, sigma)
    _check_not_in_data(path, item)
    return cached_map(path, lambda: maps.saliency_map(item.fixations.xy, item.shape, sigma), item.shape)


def precompute_saliency_maps(
    items: list[EyeTrackingImage],
    cache_dir: str | Path | None = None,
    sigma: float | None = None,
    progress: bool = True,
) -> int:
    """Fill the cache for all `items` (before training, so workers only read); returns maps computed."""
    computed = 0
    for item in tqdm(items, total=len(items), desc="saliency maps", unit="map", disable=not progress):
        path = saliency_cache_path(item, cache_dir, sigma)
        if not path.is_file():
            computed += 1
        get_saliency_map(item, cache_dir, sigma)
    return computed
