"""The interface every JPEG back-end implements.

Kept tiny on purpose: the quality-map encoder only needs "pixels at quality q
-> JPEG bytes" plus a decoder for measurements; reading and writing DCT
coefficients lives in :mod:`sspcodec.backends.dct`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """A JPEG encoder/decoder.

    ``supports_dct`` says whether its files can go through the DCT-domain
    requantisation of :func:`sspcodec.quant.encode_with_quality_map`
    (i.e. they are standard Huffman JPEGs that jpeglib can read and rewrite).
    """

    name: str
    supports_dct: bool

    def encode(
        self,
        rgb: np.ndarray,
        quality: int,
        *,
        subsampling: str = "4:2:0",
        optimize: bool = True,
        progressive: bool = False,
    ) -> bytes:
        """Encode HxWx3 uint8 RGB (HxW greyscale also accepted) to JPEG bytes."""
        ...

    def decode(self, data: bytes) -> np.ndarray:
        """Decode JPEG bytes to HxWx3 uint8 RGB (HxW for greyscale files)."""
        ...


class BackendError(RuntimeError):
    """Base class for back-end selection problems."""


class UnknownBackendError(BackendError, ValueError):
    """Raised for a back-end name that is not registered."""


class BackendUnavailableError(BackendError, ImportError):
    """Raised when a registered back-end's optional dependency is missing."""
