"""Letterboxing: fit any image into the model's fixed input without distorting it.

Saliency depends on the scene's geometry, so images are resized keeping their aspect ratio
and padded (paper/TranSalNet input 384x288); predictions are cropped back to the image's own
aspect before being resized to its size.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

INPUT_SIZE: tuple[int, int] = (288, 384)  # (height, width)


@dataclass(frozen=True)
class Box:
    """Where the resized image sits inside the padded canvas (pixels of the canvas)."""

    top: int
    left: int
    height: int
    width: int


def fit_box(shape: tuple[int, int], size: tuple[int, int] = INPUT_SIZE) -> Box:
    """The centred box of aspect `shape` (h, w) that fits inside `size` (h, w)."""
    h, w = shape
    H, W = size
    scale = min(H / h, W / w)
    nh, nw = max(1, min(H, round(h * scale))), max(1, min(W, round(w * scale)))
    return Box((H - nh) // 2, (W - nw) // 2, nh, nw)


def letterbox(image: np.ndarray, size: tuple[int, int] = INPUT_SIZE, pad_value: float = 0) -> tuple[np.ndarray, Box]:
    """Resize keeping aspect (area filter when shrinking) and pad to `size`.

    Works on HxWx3 images and HxW maps of any dtype; returns the canvas and its `Box`.
    """
    box = fit_box(image.shape[:2], size)
    shrink = box.height < image.shape[0]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    resized = cv2.resize(image, (box.width, box.height), interpolation=interp)
    canvas = np.full(size + image.shape[2:], pad_value, dtype=image.dtype)
    canvas[box.top : box.top + box.height, box.left : box.left + box.width] = resized
    return canvas, box


def unletterbox(
    canvas_map: np.ndarray, box: Box, shape: tuple[int, int], size: tuple[int, int] = INPUT_SIZE
) -> np.ndarray:
    """Crop a prediction made on the `size` canvas (at any resolution) to `box`, resize to `shape`."""
    sy, sx = canvas_map.shape[0] / size[0], canvas_map.shape[1] / size[1]
    top, left = round(box.top * sy), round(box.left * sx)
    crop = canvas_map[top : top + max(1, round(box.height * sy)), left : left + max(1, round(box.width * sx))]
    return cv2.resize(np.ascontiguousarray(crop), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def boxes_from_masks(valid) -> list[Box]:
    """The `Box` of each (B, 1, H, W) or (B, H, W) valid mask (tensor or array): the bounding box
    of its True pixels, the whole canvas when a mask is empty. Datasets hand out masks; the
    model's prior needs the box."""
    a = np.asarray(valid.detach().cpu() if hasattr(valid, "detach") else valid).astype(bool)
    if a.ndim == 4:
        a = a[:, 0]
    boxes = []
    for m in a:
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if rows.size == 0:
            boxes.append(Box(0, 0, m.shape[0], m.shape[1]))
        else:
            boxes.append(Box(int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)))
    return boxes
