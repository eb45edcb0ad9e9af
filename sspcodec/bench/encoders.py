"""Every JPEG codec the benchmarks compare, behind one small interface (as CompressAI's
``utils/bench/codecs.py``; named ``encoders`` so that it shadows no standard module): a name,
encode at a quality, encode to at most N bytes, decode.

Peers:

- ``turbo``: libjpeg-turbo 2.1 (jpeglib's build), IJG tables, baseline, optimised Huffman tables;
- ``mozjpeg``: mozjpeg 4.0.3 with its defaults: trellis quantisation, progressive scans,
  optimised Huffman tables;
- ``jpegli``: pyjpegli's output rewritten losslessly with optimised Huffman tables, then as
  progressive scans where that is smaller (mozjpeg's lossless re-coding), as cjpegli writes:
  pyjpegli 0.3.2 writes the standard tables and baseline scans; optimised tables are 3-8% smaller
  at q70-q85 and progressive scans about 1.5% more.

Ours: :class:`SspcodecCodec` (a :class:`sspcodec.Encoder`, either method) and
:class:`PrunedCodec` (saliency-weighted RD pruning of a base encoder, :mod:`sspcodec.quant.rdprune`),
each driven by a priority map (the model's saliency, a centre prior, a human map...).

Equal bytes: a codec with only integer qualities has discrete sizes, so "encode to N bytes" means
the largest file <= N among the qualities tried (bisection, then a few qualities above, since
size is not strictly monotonic in quality); adjacent qualities differ by a few percent at q70-q85,
so such a codec may land a few percent below N. The pruned codec fits N continuously (lambda
bisection) to within 1% below. Benchmarks report the bytes actually reached.

All codecs decode with the same decoder (Pillow's libjpeg-turbo, RGB), so figures compare
encoders, not decoders.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from sspcodec.backends import get_backend
from sspcodec.quant.rdprune import fit_quality, plain_encoder, prune_to_budget
from sspcodec.quant.settings import PruneSettings

#: rgb -> HxW priority map (where quality matters) for the codecs that reallocate bytes.
PriorityFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Encoded:
    """One encoding: the JPEG and the integer quality that made it (None when the codec fits a
    byte budget directly rather than through a quality)."""

    data: bytes
    quality: int | None


def decode(data: bytes) -> np.ndarray:
    """HxWx3 uint8 RGB through Pillow, for every codec alike."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


#: Start-of-frame markers and the JPEG process each one announces.
SOF_TYPES = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC3: "lossless"}


def frame_type(data: bytes) -> str:
    """The coding process of a JPEG from its start-of-frame marker: "baseline" (SOF0),
    "extended" (SOF1), "progressive" (SOF2), "lossless" (SOF3) or "other" (arithmetic and
    hierarchical SOFs). Walks the marker segments; ValueError if there is no SOF."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"corrupt JPEG: expected a marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return SOF_TYPES.get(marker, "other")
        if marker in (0xD9, 0xDA):
            break
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise ValueError("no start-of-frame marker before the scan data")


class Codec(ABC):
    """The interface: ``encode(rgb, quality)``, ``encode_to_bytes(rgb, max_bytes)``, ``decode``.

    The default ``encode_to_bytes`` bisects over integer qualities 1..100 (:func:`fit_quality`).
    Raises ValueError when even quality 1 does not fit.
    """

    name: str = ""

    @abstractmethod
    def encode(self, rgb: np.ndarray, quality: int) -> bytes:
        """JPEG bytes at *quality* (for a reallocating codec: at the bytes of its base's plain
        JPEG of that quality)."""

    def encode_to_bytes(self, rgb: np.ndarray, max_bytes: int) -> Encoded:
        """The largest JPEG of at most *max_bytes* this codec reaches."""
        fit = fit_quality(lambda q: self.encode(rgb, q), int(max_bytes))
        if fit is None:
            raise ValueError(f"{self.name}: {max_bytes} bytes is too small, even at quality 1")
        return Encoded(fit[1], fit[0])

    def decode(self, data: bytes) -> np.ndarray:
        """Decoded RGB pixels (Pillow; the same decoder for every codec)."""
        return decode(data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class BackendCodec(Codec):
    """A plain encoder from :mod:`sspcodec.backends` with fixed options."""

    def __init__(self, name: str, backend: str, **options: Any) -> None:
        self.name = name
        self._backend = get_backend(backend)
        self._options = options

    def encode(self, rgb: np.ndarray, quality: int) -> bytes:
        return self._backend.encode(rgb, int(quality), **self._options)


class JpegliCodec(Codec):
    """jpegli (pyjpegli) rewritten losslessly with optimised Huffman tables, as cjpegli sizes them."""

    name = "jpegli"

    def encode(self, rgb: np.ndarray, quality: int) -> bytes:
        return plain_encoder(rgb, "jpegli")(quality)


def turbo() -> Codec:
    """libjpeg-turbo, baseline, optimised Huffman tables."""
    return BackendCodec("turbo", "turbo", optimize=True, progressive=False)


def mozjpeg() -> Codec:
    """mozjpeg defaults: trellis quantisation, progressive, optimised Huffman tables."""
    return BackendCodec("mozjpeg", "mozjpeg", optimize=True, progressive=True)


#: name -> factory of the plain peers.
PEERS: dict[str, Callable[[], Codec]] = {"turbo": turbo, "mozjpeg": mozjpeg, "jpegli": JpegliCodec}


def get_codec(name: str) -> Codec:
    """A plain peer codec by name (ValueError listing the valid names otherwise)."""
    try:
        return PEERS[name]()
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; valid names: {', '.join(PEERS)}") from None


class PrunedCodec(Codec):
    """Saliency-weighted RD pruning of a finer *base* JPEG (:func:`~sspcodec.quant.rdprune.
    prune_to_budget`), driven by ``priority(rgb)``. At a quality q it spends the bytes of the
    base's plain q JPEG; to a byte budget it fits lambda directly (within 1% below)."""

    def __init__(
        self,
        name: str,
        priority: PriorityFn,
        *,
        base: str = "jpegli",
        settings: PruneSettings = PruneSettings(),
    ) -> None:
        self.name = name
        self.priority = priority
        self.base = base
        self.settings = settings

    def encode(self, rgb: np.ndarray, quality: int) -> bytes:
        return self.encode_to_bytes(rgb, len(plain_encoder(rgb, self.base)(quality))).data

    def encode_to_bytes(self, rgb: np.ndarray, max_bytes: int) -> Encoded:
        out = prune_to_budget(rgb, self.priority(rgb), int(max_bytes), base=self.base, **self.settings.options())
        return Encoded(out.data, None)


class SspcodecCodec(Codec):
    """sspcodec itself: an :class:`sspcodec.Encoder` (RD pruning by default, or
    ``method="search"``: the candidate search scored by predicted shift).

    *encoder* is an ``sspcodec.Encoder`` (its back-end is the base); *priority*, if given,
    replaces its allocation map (e.g. a centre prior). At a quality q it spends the bytes of the
    back-end's plain q JPEG.
    """

    def __init__(self, encoder: Any, name: str = "sspcodec", priority: PriorityFn | None = None) -> None:
        self.name = name
        self.encoder = encoder
        self.priority = priority

    def _options(self, rgb: np.ndarray) -> dict[str, Any]:
        return {} if self.priority is None else {"priority": self.priority(rgb)}

    def encode(self, rgb: np.ndarray, quality: int) -> bytes:
        return self.encoder.compress(rgb, quality=int(quality), **self._options(rgb)).data

    def encode_to_bytes(self, rgb: np.ndarray, max_bytes: int) -> Encoded:
        return Encoded(self.encoder.compress(rgb, max_bytes=int(max_bytes), **self._options(rgb)).data, None)


def fixed_priority(priority: np.ndarray) -> PriorityFn:
    """A priority function that ignores the pixels and returns *priority* (a map computed once
    per image, e.g. from its fixations)."""
    return lambda _rgb: priority


__all__ = [
    "PEERS",
    "SOF_TYPES",
    "BackendCodec",
    "Codec",
    "Encoded",
    "JpegliCodec",
    "PriorityFn",
    "PrunedCodec",
    "SspcodecCodec",
    "decode",
    "fixed_priority",
    "frame_type",
    "get_codec",
    "mozjpeg",
    "turbo",
]
