"""The ways of spending the bytes, each one strategy object behind :class:`~.base.Method`, in a
registry keyed by name (the names :func:`sspcodec.options.check_method` accepts).

- ``"rd"`` (:class:`~.rd.RdPruning`, the default, on jpegli): saliency-weighted RD pruning of a
  finer base JPEG at the budget;
- ``"search"`` (:class:`~.search.CandidateSearch`, on libjpeg-turbo): candidate quality maps at
  equal bytes, the one with the least predicted shift kept.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..backends import Backend
from ..quant.settings import PruneSettings
from .base import Candidate, Method, PlainJpeg, SearchResult, fit_plain
from .rd import DEFAULT_SHIFT_MIX, RdPruning
from .search import DEFAULT_FAMILIES, CandidateFamily, CandidateSearch

#: The back-end each method uses unless one is named.
METHOD_BACKENDS = {"rd": "jpegli", "search": "turbo"}


def _rd(backend: Backend, strength: float = 1.0, guard: bool = True, **_: Any) -> Method:
    return RdPruning(backend.name, PruneSettings(strength), guard_output=guard, shift_guard=guard)


def _search(
    backend: Backend, families: Sequence[CandidateFamily] = DEFAULT_FAMILIES, refine_steps: int = 1,
    max_psnr_drop: float | None = 1.5, keep_dc: bool = True, **_: Any,
) -> Method:
    return CandidateSearch(backend, families, refine_steps=refine_steps, max_psnr_drop=max_psnr_drop, keep_dc=keep_dc)


#: name -> builder(backend, **options): each builder takes the options it knows and ignores the rest.
METHODS: dict[str, Callable[..., Method]] = {"rd": _rd, "search": _search}


def make_method(name: str, backend: Backend, **options: Any) -> Method:
    """The method `name` on `backend` (a checked name: see :func:`sspcodec.options.check_method`)."""
    return METHODS[name](backend, **options)


__all__ = [
    "DEFAULT_FAMILIES",
    "DEFAULT_SHIFT_MIX",
    "METHODS",
    "METHOD_BACKENDS",
    "Candidate",
    "CandidateFamily",
    "CandidateSearch",
    "Method",
    "PlainJpeg",
    "RdPruning",
    "SearchResult",
    "fit_plain",
    "make_method",
]
