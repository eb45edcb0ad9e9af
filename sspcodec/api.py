"""Python API: `compress(image, ...)` and `Encoder` (keeps the model loaded across images).

`Encoder.compress` is a pipeline, each stage in its own module, entered once in this order:

1. read (:mod:`sspcodec.source`): pixels and metadata from one open of the file;
2. score (:mod:`sspcodec.scoring`): the model's SM_r of the pristine image, once (all a shift
   prediction needs from the pristine side), and the allocation's map of where quality
   matters (:mod:`sspcodec.allocation`) as the method's weights;
3. budget (:mod:`sspcodec.budget`): the bytes, and the plain JPEG that sets them;
4. method (:mod:`sspcodec.methods`): the encoding at those bytes (``"rd"``, the default:
   saliency-weighted RD pruning; ``"search"``: candidate quality maps scored by predicted shift);
5. guard: the method's own fallback to the plain JPEG;
6. result (:mod:`sspcodec.result`): one JPEG with the source's ICC profile and EXIF (orientation
   1) unless `strip`, greyscale if the source is, with its figures beside the plain JPEG's.

Memory is bounded by design: candidates are scored one decode at a time and every map is kept
at the model's input resolution (about 384x288), so beyond the image itself only a few
full-size arrays are ever alive (docs/SAFETY.md gives the measured peaks).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np

from sspnet import SSPNet, load_model

from .allocation import Allocation, GivenMapAllocation, SaliencyAllocation
from .backends import Backend, get_backend
from .backends.markers import metadata_segments
from .budget import budget_bytes, fewest_bytes
from .methods import DEFAULT_FAMILIES, METHOD_BACKENDS, CandidateFamily, Method, PlainJpeg, make_method
from .options import (
    DEFAULT_METHOD,
    DEFAULT_STRENGTH,
    Budget,
    CompressError,
    check_keep,
    check_method,
    check_priority,
    check_request,
    check_strength,
)
from .result import CompressResult, build_result, to_image_size
from .scoring import ShiftScorer
from .source import ImageInput, Source, read_source


class ContentChangeWarning(UserWarning):
    """Reading the source changed what a viewer would see (transparency flattened onto a
    background, one frame of several, a 16-bit array of 8-bit values); also in
    `CompressResult.notices`. The CLI prints these as ``notice:`` lines."""


class Encoder:
    """Keeps the SSPNet model loaded; one `compress` call per image.

    `method` "rd" (default) prunes a finer base JPEG by a saliency-weighted RD rule at the
    budget, `strength` in [0, 1] setting how much quality moves to where people look (0, the
    default chosen by models of human vision on validation images: the plain base JPEG);
    "search" picks among candidate quality maps by predicted shift. `backend`: the base encoder
    (None: jpegli for rd, libjpeg-turbo for search).

    `allocation` decides where quality matters (default: the model's saliency); `strategy` (the
    method's object, :class:`~sspcodec.methods.RdPruning` or
    :class:`~sspcodec.methods.CandidateSearch`; it may be replaced by any
    :class:`~sspcodec.methods.Method`) makes the encoding. Search options: `families`,
    `refine_steps`, `max_psnr_drop` (dB: a candidate whose PSNR falls more than this below the
    plain JPEG's is not chosen), `keep_dc` (False reproduces the search outputs of the encoder
    before the DC fix). rd option: `guard` (where the output's predicted SSM rises above the
    plain JPEG's, give those blocks their quality back and refit the budget; return the plain
    JPEG when that fails, or when the pruned output is worse where people are predicted to look:
    its saliency-weighted PSNR is lower; `CompressResult.guard` says what it did).
    """

    def __init__(
        self,
        model: str | SSPNet = "default",
        device: str = "auto",
        backend: str | None = None,
        families: Sequence[CandidateFamily] = DEFAULT_FAMILIES,
        refine_steps: int = 1,
        batch_size: int = 4,
        max_psnr_drop: float | None = 1.5,
        *,
        allocation: Allocation | None = None,
        keep_dc: bool = True,
        method: str = DEFAULT_METHOD,
        strength: float = DEFAULT_STRENGTH,
        guard: bool = True,
    ):
        name = check_method(method)
        strength = check_strength(strength)
        base = get_backend(METHOD_BACKENDS[name] if backend is None else backend)
        if not base.supports_dct:
            raise CompressError(f"back-end '{base.name}' cannot rewrite DCT blocks; use turbo or mozjpeg")
        self.model = load_model(model, device) if isinstance(model, str) else model.eval()
        self.allocation: Allocation = allocation if allocation is not None else SaliencyAllocation()
        self.strategy: Method = make_method(
            name, base, strength=strength, guard=guard, families=families, refine_steps=refine_steps,
            max_psnr_drop=max_psnr_drop, keep_dc=keep_dc,
        )
        self.batch_size = batch_size

    @property
    def method(self) -> str:
        """The method's name ("rd" or "search")."""
        return self.strategy.name

    @property
    def backend(self) -> Backend:
        """The base encoder."""
        return self.strategy.backend

    # -- plain JPEG, the reference every figure is compared with --
    def plain(self, rgb: np.ndarray, quality: int, progressive: bool = True) -> bytes:
        """The method's plain JPEG at `quality` (see :meth:`Method.plain`)."""
        return self.strategy.plain(rgb, quality, progressive)

    def plain_at_bytes(self, rgb: np.ndarray, target: int) -> PlainJpeg:
        """Highest integer quality whose plain JPEG fits `target` bytes (see :meth:`Method.plain_at_bytes`)."""
        return self.strategy.plain_at_bytes(rgb, target)

    def compress(
        self,
        image: ImageInput | Source,
        *,
        max_bytes: int | str | None = None,
        bpp: float | None = None,
        max_shift: float | None = None,
        quality: int | None = None,
        priority: np.ndarray | None = None,
        strip: bool = False,
        keep: str | Sequence[str] | None = None,
        max_pixels: int | None = None,
        alpha: str | None = None,
        background: str | tuple[int, int, int] | None = None,
        frame: int | None = None,
        name: str | None = None,
    ) -> CompressResult:
        """One JPEG at the byte budget with the least predicted shift (or, with `max_shift`, the
        fewest bytes whose predicted shift stays at or below it).

        Budget, at most one of: `max_bytes` (int or "150KB"), `bpp` (bits per pixel), `quality`
        (the bytes of a plain JPEG at that quality); default: plain quality 85. `priority` replaces
        the encoder's allocation with this map for one call (benchmarks drive it with other maps).

        Every metadata block of the source is carried into the output byte for byte (ICC
        profile, EXIF with its orientation reset to 1 as the pixels are read upright, XMP with
        any Extended XMP, IPTC/Photoshop resources, comments) and counts against
        `max_bytes`/`bpp`; `keep` names the ones to carry ("icc,exif", or "none"), `strip=True`
        is ``keep="none"``. A block that cannot be carried is said in the notices. A greyscale
        source gives a 1-component JPEG. Images above `max_pixels`
        (default :data:`~sspnet.files.images.DEFAULT_MAX_PIXELS`) are refused before decoding.

        Reading never changes the picture silently: transparency is flattened onto `background`
        (default white; `alpha="error"` refuses transparent images instead), `frame` picks one
        frame of an animation or multi-page file (default 0), and each such change is issued as a
        :class:`ContentChangeWarning` and listed in `CompressResult.notices`. `name` is how
        errors and notices name the image (e.g. its path when `image` is bytes). `image` may be
        a :class:`~sspcodec.source.Source` already read (the reading options are then its own).
        """
        t0 = time.perf_counter()
        budget = check_request(max_bytes=max_bytes, bpp=bpp, max_shift=max_shift, quality=quality, name=name)
        priority = check_priority(priority)
        blocks = check_keep(keep, strip)
        source = read_source(image, max_pixels=max_pixels, alpha=alpha, background=background, frame=frame,
                             name=name)
        for text in source.notices:
            warnings.warn(text, ContentChangeWarning, stacklevel=2)
        try:
            return self._pipeline(source, budget, priority, blocks, t0)
        except MemoryError:
            h, w = source.shape
            raise CompressError(
                f"out of memory encoding this {w}x{h} image; downscale it or lower max_pixels"
            ) from None

    def _pipeline(
        self, source: Source, budget: Budget, priority: np.ndarray | None, keep: frozenset[str], t0: float
    ) -> CompressResult:
        """score -> budget -> method -> guard -> result, for one source already read."""
        method, rgb, pixels = self.strategy, source.rgb, source.pixels
        carried = source.meta.kept(keep)
        scorer = ShiftScorer(self.model, rgb, self.batch_size)
        allocation = self.allocation if priority is None else GivenMapAllocation(priority)
        weights = method.weights(allocation.where(rgb, to_image_size(scorer.saliency, source.shape)), source.shape)
        if budget.max_shift is not None:  # a shift budget has no size: the budget stage runs the method
            found = fewest_bytes(method, pixels, weights, budget.max_shift, scorer)
        else:
            channels = 1 if source.meta.greyscale else 3
            overhead = sum(map(len, metadata_segments(carried.icc_profile, carried.exif, channels, carried.others())))
            target, plain = budget_bytes(budget, method, pixels, overhead)
            found = method.guard(method.run(pixels, weights, target, plain, scorer), scorer)
        return build_result(found, carried, budget.describe(), scorer, time.perf_counter() - t0, source.notices)


_ENCODERS: dict[tuple, Encoder] = {}


def compress(
    image: ImageInput,
    *,
    model: str = "default",
    device: str = "auto",
    backend: str | None = None,
    method: str = DEFAULT_METHOD,
    strength: float = DEFAULT_STRENGTH,
    **options,
) -> CompressResult:
    """One-call API; the model stays loaded for later calls with the same model, device,
    back-end, method and strength."""
    key = (model, device, backend, check_method(method), check_strength(strength))
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(model, device, backend, method=method, strength=strength)
    return _ENCODERS[key].compress(image, **options)
