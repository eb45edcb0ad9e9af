"""Pictures of maps: heatmap overlays and 16-bit map files (people would rather look than read)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sspnet.files.mapfiles import encode_png, encode_raw_map
from sspnet.files.outputs import write_bytes_atomic


def colorize(m: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """HxW map -> HxWx3 uint8 RGB (inferno-like colormap); `vmax` fixes the scale across panels."""
    top = float(m.max()) if vmax is None else vmax
    u8 = np.clip(m / top * 255 if top > 0 else np.zeros_like(m), 0, 255).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO)[..., ::-1].copy()


def overlay(image: np.ndarray, m: np.ndarray, alpha: float = 0.55, vmax: float | None = None) -> np.ndarray:
    """Heatmap blended over the image, more opaque where the map is high so the scene stays visible."""
    if m.shape != image.shape[:2]:
        m = cv2.resize(m.astype(np.float32), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    heat = colorize(m, vmax).astype(np.float32)
    top = float(m.max()) if vmax is None else vmax
    a = alpha * np.clip(m / top if top > 0 else np.zeros_like(m), 0, 1)[..., None] ** 0.5
    return (image.astype(np.float32) * (1 - a) + heat * a).round().astype(np.uint8)


def save_map(m: np.ndarray, path: str | os.PathLike) -> Path:
    """Raw map: .npy keeps float32 exactly; .png stores 16-bit (0..65535 = 0..1).

    Encoded in memory (`sspnet.files.mapfiles.encode_raw_map`), then written atomically.
    """
    write_bytes_atomic(path, encode_raw_map(m, path))
    return Path(path)


def save_rgb_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """An HxWx3 uint8 picture (e.g. an `overlay`) as PNG, written atomically."""
    write_bytes_atomic(path, encode_png(image))
    return Path(path)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def panel_grid(panels: list[tuple[np.ndarray, str]], columns: int = 3, width: int = 360) -> np.ndarray:
    """Tiles of RGB images with a caption strip each; captions carry the numbers (with units)."""
    tiles = []
    for img, caption in panels:
        h = max(1, round(img.shape[0] * width / img.shape[1]))
        tile = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
        lines = caption.split("\n")
        strip = Image.new("RGB", (width, 8 + 16 * len(lines)), "white")
        ImageDraw.Draw(strip).multiline_text((6, 4), caption, fill="black", font=_font(13), spacing=3)
        tiles.append(np.vstack([tile, np.asarray(strip)]))
    th = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, th - t.shape[0]), (0, 0), (0, 0)), constant_values=255) for t in tiles]
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
