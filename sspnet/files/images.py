"""Image files in: the one reader of both packages (the writer is :mod:`sspnet.files.outputs`, map
files :mod:`sspnet.files.mapfiles`).

Everything user-supplied passes through here, so the rules are strict:
images come back as HxWx3 uint8 RGB no matter the source mode, failures raise
:class:`ImageReadError` naming the file and the reason (never a bare Pillow
traceback), oversized images are refused before decoding, only regular
files are opened (a FIFO would block forever), and every change to the picture
(transparency flattened, one frame of several) is said (:func:`load_image`).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sspnet.files.outputs import FILE_KINDS
from sspnet.files.pixels import (
    ALPHA_MODES,
    WHITE,
    AlphaMode,
    ImageReadError,
    LoadedImage,
    Reading,
    array_to_rgb,
    pil_to_rgb,
)

#: Default ceiling on decoded pixels (width * height): 100 megapixels.
DEFAULT_MAX_PIXELS = 100_000_000
#: File suffixes the command lines treat as images when they scan a folder.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Image.Image


def describe_source(src: object) -> str:
    """Human-readable name of a source for error messages."""
    if isinstance(src, (str, os.PathLike)):
        return repr(os.fspath(src))
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    if isinstance(src, np.ndarray):
        return f"<array {src.shape} {src.dtype}>"
    if isinstance(src, Image.Image):
        name = getattr(src, "filename", "") or ""
        return repr(name) if name else f"<PIL image {src.mode} {src.size[0]}x{src.size[1]}>"
    return f"<{type(src).__name__}>"


def _check_pixels(width: int, height: int, max_pixels: int | None, name: str) -> None:
    if width < 1 or height < 1:
        raise ImageReadError(f"cannot read image {name}: it is empty ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            f"cannot read image {name}: {width}x{height} = {width * height:,} pixels "
            f"exceeds the limit of {max_pixels:,}"
        )


def _orient(im: Image.Image, name: str) -> Image.Image:
    """Apply EXIF orientation; a broken EXIF block is not worth failing over."""
    try:
        out = ImageOps.exif_transpose(im)
    except Exception as exc:  # corrupt EXIF raises assorted types
        warnings.warn(f"ignoring unreadable EXIF orientation in {name}: {exc}", stacklevel=3)
        return im
    return im if out is None else out


def _rotates(im: Image.Image) -> bool:
    """Whether the EXIF orientation swaps width and height (transpose/rotate 90/270: tags 5-8)."""
    try:
        return im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:  # an unreadable EXIF block is ignored by read_image too
        return False


def _why(exc: BaseException, otherwise: str) -> str:
    """The reason an image could not be read, in words, for the failures users meet."""
    if isinstance(exc, Image.DecompressionBombError):
        return f"too many pixels ({exc})"
    reasons = (
        (FileNotFoundError, "file not found"),
        (IsADirectoryError, "it is a directory"),
        (PermissionError, "permission denied"),
        (UnidentifiedImageError, "not a recognised image format"),
        (MemoryError, "not enough memory to decode it"),
    )
    return next((why for kind, why in reasons if isinstance(exc, kind)), otherwise)


def open_regular_file(path: str | os.PathLike, what: str = "image") -> BinaryIO:
    """Open *path* for binary reading only if it is a regular file (symlinks followed).

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a
    FIFO, device or socket is refused at once instead of hanging a read forever, and a file
    swapped between a check and the open cannot slip through. Failures raise
    :class:`ImageReadError` ("cannot read {what} ...: why").
    """
    name = describe_source(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageReadError(f"cannot read {what} {name}: {_why(exc, exc.strerror or str(exc))}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ImageReadError(f"cannot read {what} {name}: it is {kind}, not a regular file")
    return os.fdopen(fd, "rb")


@contextlib.contextmanager
def _opened(src: str | os.PathLike | bytes | bytearray | memoryview, name: str) -> Iterator[Image.Image]:
    """A lazily opened Pillow image (header only until ``load``), Pillow's failures translated.

    Pillow's decompression-bomb warning is silenced (callers enforce their own pixel limit);
    its bomb *error*, unidentified formats and corrupt data all become :class:`ImageReadError`.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise ImageReadError(f"cannot read image {name}: no data")
        fp: BinaryIO = io.BytesIO(bytes(src))
    else:
        fp = open_regular_file(src)
    try:
        with fp, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                yield im
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageReadError(f"cannot read image {name}: {_why(exc, f'corrupt or truncated data ({exc})')}") from exc
    except Exception as exc:  # a Pillow decoder's own failure of another type (NotImplementedError: some DDS)
        raise ImageReadError(f"cannot read image {name}: cannot be decoded ({type(exc).__name__}: {exc})") from exc


def image_size(
    src: ImageSource, *, exif_orientation: bool = True, max_pixels: int | None = None, name: str | None = None
) -> tuple[int, int]:
    """(width, height) of the image :func:`read_image` would return, from the header alone.

    Takes what :func:`read_image` takes; a file is never decoded, so this is the cheap check
    to run before any work (pixel limits -- *max_pixels* refuses as :func:`read_image`
    would --, format limits, pairs of equal size). EXIF orientation is taken into account, so
    a size checked here always matches the pixels read later (fixation coordinates are
    validated against it); ``exif_orientation=False`` gives the stored size, that of
    :func:`read_map`. Raises :class:`ImageReadError` naming the source (*name*, or its path or
    a description) when it is missing, not a regular file, not an image, or too large.
    """
    name = name or describe_source(src)
    if isinstance(src, np.ndarray):
        w, h = (src.shape[1], src.shape[0]) if src.ndim >= 2 else (0, 0)
    elif isinstance(src, Image.Image):
        w, h = src.size
        w, h = (h, w) if exif_orientation and _rotates(src) else (w, h)
    elif isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)):
        with _opened(src, name) as im:
            w, h = im.size
            w, h = (h, w) if exif_orientation and _rotates(im) else (w, h)
    else:
        raise TypeError(f"cannot read an image from {type(src).__name__}")
    if max_pixels is not None:
        _check_pixels(w, h, max_pixels, name)
    return w, h


def list_images(folder: str | os.PathLike, exclude: str | os.PathLike | None = None) -> list[Path]:
    """Files under *folder* whose suffix is an image's, sorted; symlinked folders are not
    followed (no loops) and the *exclude* folder (an output folder inside the input one) is not
    entered, so a rerun never reads its own outputs back as inputs. Entries are listed by name
    only: a FIFO called x.png is listed, and refused by the reader with a clear reason."""
    skip = os.path.realpath(exclude) if exclude is not None else None
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(root, d)) != skip]
        found += [Path(root) / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


def _select_frame(im: Image.Image, r: Reading) -> None:
    """Seek *im* to ``r.frame``, saying so when the file holds several (an animation, pages)."""
    n = int(getattr(im, "n_frames", 1) or 1)
    r.frames = n
    if r.frame >= n:
        raise ImageReadError(f"cannot read image {r.name}: frame {r.frame} asked for, but it has {n} frame(s) "
                             f"(0..{n - 1})")
    if r.frame:
        im.seek(r.frame)
    if n > 1:
        r.notices.append(f"{r.name}: it holds {n} frames (an animation or pages); frame {r.frame} was encoded "
                         "(--frame N picks another)")


def read_image(
    src: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    alpha: AlphaMode = "white",
) -> np.ndarray:
    """Read an image from a path, encoded bytes, an array or a PIL image.

    Returns HxWx3 uint8 RGB with EXIF orientation applied: the pixels of
    :func:`load_image` (which also says what reading changed). Conversions:
    1/L/I;16/I/F -> grey replicated to RGB (16-bit scaled by 1/257, float
    0..1 scaled by 255); P/CMYK/YCbCr via Pillow; transparency (RGBA, LA, PA,
    P with a transparent index) is composited over white by default because
    that is what a viewer shows and JPEG has no alpha -- ``alpha="drop"``
    keeps the raw colour instead. Multi-frame files give their first frame.
    CMYK is converted naively (no ICC colour management).

    Refuses images above *max_pixels* (checked from the header, before
    decoding; ``None`` disables our check but Pillow's decompression-bomb
    guard still applies), paths that are not regular files (a FIFO would
    block forever) and unreadable, truncated or corrupt data, raising
    :class:`ImageReadError` whose message names the source and the reason.
    """
    return load_image(src, max_pixels=max_pixels, alpha=alpha).pixels


def _refusal(check: Callable[[int, int], None] | None, width: int, height: int) -> Exception | None:
    """What *check* raises for this size, returned rather than raised."""
    try:
        if check is not None:
            check(width, height)
    except Exception as exc:
        return exc
    return None


def load_image(
    src: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    alpha: AlphaMode = "composite",
    background: tuple[int, int, int] = WHITE,
    frame: int = 0,
    name: str | None = None,
    check: Callable[[int, int], None] | None = None,
) -> LoadedImage:
    """:func:`read_image` with every change to the picture said (:class:`LoadedImage`).

    *alpha*: "composite" flattens transparency onto *background* (an RGB triple), "drop"
    keeps the raw colour, "error" refuses an image that has any; an alpha channel that is 0
    everywhere is padding (RGBX buffers) and is ignored, with a notice. *frame* picks one
    frame of an animation or a multi-page file (a notice says how many there are). A uint16
    array holding only values below 256 is read as 16-bit (near-black), with a notice. *name*
    is how errors and notices name the source (default: its path, or a description). *check*,
    if given, is called with a file's (width, height) from its header, before any decoding
    (the codec refuses sizes JPEG cannot hold there).
    """
    if alpha not in ALPHA_MODES:
        raise ValueError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
    r = Reading(name or describe_source(src), "composite" if alpha == "white" else alpha, background, frame)
    mode, info = None, {}
    if isinstance(src, np.ndarray):
        h, w = src.shape[:2] if src.ndim >= 2 else (0, 0)
        _check_pixels(w, h, max_pixels, r.name)
        if check is not None:
            check(w, h)
        pixels = array_to_rgb(src, r)
    elif isinstance(src, Image.Image):
        try:
            mode, info = src.mode, dict(src.info)
            _select_frame(src, r)
            _check_pixels(src.width, src.height, max_pixels, r.name)
            pixels = pil_to_rgb(_orient(src, r.name), r)
        except ImageReadError:
            raise
        except Exception as exc:  # Pillow's decoders raise assorted types (NotImplementedError for some DDS)
            raise ImageReadError(f"cannot read image {r.name}: {type(exc).__name__}: {exc}") from exc
        if check is not None:  # an image in memory: nothing left to save by checking first
            check(pixels.shape[1], pixels.shape[0])
    elif isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)):
        with _opened(src, r.name) as im:  # lazy: only the header so far
            mode, info = im.mode, dict(im.info)
            _select_frame(im, r)
            _check_pixels(im.width, im.height, max_pixels, r.name)
            refused = _refusal(check, im.width, im.height)
            if refused is None:
                im.load()
                pixels = pil_to_rgb(_orient(im, r.name), r)
        if refused is not None:  # raised out here, so the reader does not call it a corrupt file
            raise refused
    else:
        raise TypeError(f"cannot read an image from {type(src).__name__}")
    return LoadedImage(pixels, tuple(r.notices), r.composited, r.frames, mode, info)


__all__ = [
    "ALPHA_MODES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "WHITE",
    "ImageReadError",
    "ImageSource",
    "LoadedImage",
    "describe_source",
    "image_size",
    "list_images",
    "load_image",
    "open_regular_file",
    "read_image",
]
