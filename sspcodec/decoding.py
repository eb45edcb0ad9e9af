"""JPEG bytes back to pixels, as a viewer sees them (the scorer and the report decode here)."""

from __future__ import annotations

import cv2
import numpy as np


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> HxWx3 uint8 RGB, in memory: what a viewer shows (libjpeg-turbo's default
    decode, as Pillow's; greyscale replicated). OpenCV decodes into one array and the channels
    are swapped in place, so a large image costs one full-size allocation, not Pillow's three."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None:
        raise ValueError("the data is not a decodable JPEG")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB, dst=arr)


__all__ = ["decode_jpeg"]
