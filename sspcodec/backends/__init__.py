"""JPEG back-ends, selected by name.

``BACKENDS`` maps a name to its class; :func:`get_backend` instantiates it and
turns missing optional dependencies into an actionable error, so callers (CLI,
experiments) can take a plain string from the user.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Backend, BackendError, BackendUnavailableError, UnknownBackendError
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
    "UnknownBackendError",
    "available_backends",
    "get_backend",
]
