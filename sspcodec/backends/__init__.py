"""Everything that touches libjpeg: JPEG back-ends selected by name, and DCT-domain I/O.

``BACKENDS`` maps a name to its class; :func:`get_backend` instantiates it and
turns missing optional dependencies into an actionable error, so callers (CLI,
experiments) can take a plain string from the user. :mod:`.dct` reads and writes
quantised coefficients (:func:`read_dct`, :func:`transcode_baseline`). No module
outside this package imports jpeglib.
"""

from __future__ import annotations

from collections.abc import Callable

from ._libjpeg import as_encoder_input
from .base import Backend, BackendError, BackendUnavailableError, UnknownBackendError
from .dct import DctJpeg, DctPlane, read_dct, transcode_baseline
from .jpegli import INSTALL_HINT as JPEGLI_INSTALL_HINT
from .jpegli import JpegliBackend
from .mozjpeg import MozjpegBackend
from .turbo import TurboBackend

DEFAULT_BACKEND = "turbo"

#: name -> factory. Registration order is the listing order.
BACKENDS: dict[str, Callable[[], Backend]] = {
    "turbo": TurboBackend,
    "mozjpeg": MozjpegBackend,
    "jpegli": JpegliBackend,
}


def get_backend(name: str | Backend = DEFAULT_BACKEND) -> Backend:
    """Return the back-end called *name* (an instance passes through).

    Raises :class:`UnknownBackendError` (a ``ValueError``) listing the valid
    names, or :class:`BackendUnavailableError` (an ``ImportError``) with the pip
    command when an optional dependency is missing.
    """
    if not isinstance(name, str):
        if isinstance(name, Backend):
            return name
        raise TypeError(f"backend must be a name or a Backend, got {type(name).__name__}")
    key = name.strip().lower()
    try:
        factory = BACKENDS[key]
    except KeyError:
        valid = ", ".join(BACKENDS)
        raise UnknownBackendError(f"unknown JPEG backend {name!r}; valid names: {valid}") from None
    return factory()


def available_backends() -> list[str]:
    """Names of the registered back-ends whose dependencies are installed."""
    names = []
    for name in BACKENDS:
        try:
            get_backend(name)
        except BackendUnavailableError:
            continue
        names.append(name)
    return names


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "JPEGLI_INSTALL_HINT",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "DctJpeg",
    "DctPlane",
    "UnknownBackendError",
    "as_encoder_input",
    "available_backends",
    "get_backend",
    "read_dct",
    "transcode_baseline",
]
