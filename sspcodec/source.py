"""The codec's image edge: one source in, its pixels and every metadata block out, the file opened
once.

A path is read into memory with one open (regular files only: a FIFO is refused, not waited
on); the pixels, what reading changed (notices) and the header's metadata then all come from
that one parse, so a file swapped mid-call cannot give pixels of one image and the metadata of
another. Sizes JPEG cannot hold and the pixel ceiling are refused from the header, before any
decoding.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from sspnet.files.images import DEFAULT_MAX_PIXELS, describe_source, load_image, open_regular_file

from .metadata import ImageMeta, array_meta, meta_from_header
from .options import check_dimensions, check_max_pixels, check_reading

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image


@dataclass(frozen=True, eq=False)
class Source:
    """One image as the encoder needs it: ``rgb`` (HxWx3 uint8, upright: what the model sees),
    ``meta`` (ICC profile, upright EXIF, greyscale), the ``notices`` of what reading changed,
    and the ``name`` errors use."""

    rgb: np.ndarray
    meta: ImageMeta
    notices: tuple[str, ...]
    name: str

    @property
    def pixels(self) -> np.ndarray:
        """What is encoded: one channel for a greyscale source (a 1-component JPEG), else RGB."""
        return np.ascontiguousarray(self.rgb[:, :, 0]) if self.meta.greyscale else self.rgb

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return self.rgb.shape[0], self.rgb.shape[1]


def read_source(
    image: ImageInput | Source,
    *,
    max_pixels: Any = None,
    alpha: Any = None,
    background: Any = None,
    frame: Any = None,
    name: str | None = None,
) -> Source:
    """Read `image` (a path, encoded bytes, an array, a PIL image; a :class:`Source` is returned
    as it is) with the reading options checked (:func:`sspcodec.options.check_reading`);
    `max_pixels` defaults to :data:`~sspnet.files.images.DEFAULT_MAX_PIXELS`. Raises
    :class:`~sspnet.files.pixels.ImageReadError` or :class:`~sspcodec.options.CompressError`."""
    if isinstance(image, Source):
        return image
    limit = check_max_pixels(max_pixels)
    reading = check_reading(alpha, background, frame)
    label = name or describe_source(image)
    data: Any = image
    if isinstance(image, (str, os.PathLike)):
        with open_regular_file(image) as f:  # the one open
            data = f.read()
    loaded = load_image(data, max_pixels=DEFAULT_MAX_PIXELS if limit is None else limit, name=label,
                        check=check_dimensions, **reading)
    raw = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else None
    meta = array_meta(image) if isinstance(image, np.ndarray) else meta_from_header(loaded.mode, loaded.info, raw)
    if loaded.composited and len(set(reading["background"])) > 1:  # grey + alpha on a coloured background is colour
        meta = replace(meta, greyscale=False)
    notices = loaded.notices + tuple(f"{label}: {why}" for why in meta.dropped)
    return Source(loaded.pixels, meta, notices, label)


__all__ = ["ImageInput", "Source", "read_source"]
