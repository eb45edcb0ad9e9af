"""Image files in, bytes out: the one reader and the one atomic writer of both packages.

Everything user-supplied passes through here, so the rules are strict:
images come back as HxWx3 uint8 RGB no matter the source mode, failures raise
:class:`ImageReadError` naming the file and the reason (never a bare Pillow
traceback), oversized images are refused before decoding, and only regular
files are opened (a FIFO would block forever).

Outputs follow one policy, for every file either package writes: never onto an
input (symlinks and hard links resolved), never onto an existing file unless
asked, created atomically (a temporary file beside the target, then a hard link
that fails if the name was taken meanwhile, or a rename when replacing), so an
interrupted run never leaves a half-written or lost file. :class:`OutputPlan`
applies it to a command's outputs together: all checked before any work, all
written after it.

Saliency maps are the one exception to "everything becomes RGB": a map file is a
single-channel 8- or 16-bit PNG whose values are the data, so :func:`read_map` returns
its raw levels and :func:`encode_map_png` writes them; colour conversion or EXIF
rotation would corrupt them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Default ceiling on decoded pixels (width * height): 100 megapixels.
DEFAULT_MAX_PIXELS = 100_000_000
#: File suffixes the command lines treat as images when they scan a folder.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})

#: What to do with transparency: flatten onto the background ("composite"; "white" is the same
#: with a white background, the old name), keep the raw colour ("drop") or refuse ("error").
AlphaMode = Literal["composite", "white", "drop", "error"]
ALPHA_MODES = ("composite", "white", "drop", "error")
WHITE = (255, 255, 255)
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Image.Image


class ImageReadError(ValueError):
    """An image could not be read; the message names the source and why."""


class UnsafeWriteError(ValueError):
    """A write was refused because it would clobber something it should not."""


class OutputExistsError(UnsafeWriteError, FileExistsError):
    """The output exists and replacing it was not allowed (also a ``FileExistsError``)."""


#: Suffix of the atomic writer's temporary files, so a cleaner can tell them from real files.
TEMP_SUFFIX = ".sspnet-tmp"


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------
def _describe(src: object) -> str:
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


@dataclass
class _Reading:
    """One read's settings and what it had to change, in words (``notices``)."""

    name: str
    alpha: AlphaMode = "composite"
    background: tuple[int, int, int] = WHITE
    frame: int = 0
    notices: list[str] = field(default_factory=list)
    composited: bool = False
    frames: int = 1


@dataclass(frozen=True)
class LoadedImage:
    """Pixels (HxWx3 uint8 RGB, upright) and every change reading made to the picture, in words:
    transparency flattened (``composited``), one frame chosen among ``frames``, a suspicious
    buffer. Nothing that changes what a viewer would see goes unsaid."""

    pixels: np.ndarray
    notices: tuple[str, ...] = ()
    composited: bool = False
    frames: int = 1


def _composite(rgb: np.ndarray, alpha: np.ndarray, r: _Reading) -> np.ndarray:
    """Flatten transparency onto ``r.background`` (what a viewer shows on that background),
    keep the raw colour (``drop``) or refuse (``error``); a fully opaque alpha changes nothing,
    and an alpha that is 0 everywhere is padding (an RGBX/BGRX buffer), not transparency."""
    if r.alpha == "drop":
        return rgb
    low = int(alpha.min()) if alpha.size else 255
    if low == 255:
        return rgb
    if int(alpha.max()) == 0:
        r.notices.append(f"{r.name}: its alpha channel is 0 everywhere (fully transparent), taken as padding "
                         "(an RGBX buffer): the colour channels were encoded as they are")
        return rgb
    if r.alpha == "error":
        raise ImageReadError(f"cannot read image {r.name}: it has transparency, which JPEG cannot store "
                             "(use --alpha composite to flatten it onto --background)")
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    bg = np.asarray(r.background, np.float32)
    out = rgb.astype(np.float32) * a + bg * (1.0 - a)
    r.composited = True
    r.notices.append(f"{r.name}: transparency flattened onto the background #{bytes(r.background).hex()} "
                     "(JPEG has no alpha; --background picks the colour, --alpha error refuses)")
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def _scale_16bit(arr: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 / 257 == 255 exactly)."""
    a = np.clip(arr.astype(np.float64), 0, 65535)
    return np.floor(a / 257.0 + 0.5).astype(np.uint8)


def _array_to_rgb(arr: np.ndarray, r: _Reading) -> np.ndarray:
    """Normalise an in-memory array (the caller's own pixels) to HxWx3 uint8."""
    a = np.asarray(arr)
    name = r.name
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        top = int(a.max()) if a.size else 0
        if 0 < top < 256:
            r.notices.append(f"{name}: a uint16 array whose values are all below 256 (max {top}) is read as 16-bit "
                             "data (scaled by 1/257) and looks near-black; pass uint8 if it holds 8-bit values")
        a = _scale_16bit(a)
    elif a.dtype != np.uint8:
        raise ImageReadError(
            f"cannot read image {name}: dtype {a.dtype} is not supported (use uint8, uint16 or bool)"
        )
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"cannot read image {name}: shape {a.shape} is not HxW or HxWxC (C=1..4)")
    if a.shape[2] in (2, 4):  # grey+alpha, RGB+alpha
        colour, a_ch = a[:, :, :-1], a[:, :, -1]
        if colour.shape[2] == 1:
            colour = np.repeat(colour, 3, axis=2)
        a = _composite(colour, a_ch, r)
    elif a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.array(a, dtype=np.uint8, order="C", copy=True)


def _pil_to_rgb(im: Image.Image, r: _Reading) -> np.ndarray:
    """Convert any Pillow mode to RGB uint8 with explicit, documented rules."""
    mode, name = im.mode, r.name
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("1", "L"):
        return np.repeat(np.asarray(im.convert("L"), dtype=np.uint8)[:, :, None], 3, axis=2)
    if mode.startswith("I;16") or mode == "I":
        grey = _scale_16bit(np.asarray(im))
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        f = np.asarray(im, dtype=np.float64)
        if np.nanmax(f) <= 1.0:  # float images are conventionally 0..1
            f = f * 255.0
        grey = np.clip(np.floor(np.nan_to_num(f) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
        return _composite(rgba[:, :, :3], rgba[:, :, 3], r)
    try:  # P, CMYK, YCbCr, RGBX, ... : Pillow's own conversion
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (ValueError, OSError) as exc:
        raise ImageReadError(f"cannot read image {name}: mode {mode!r} cannot be converted to RGB ({exc})") from exc


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


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def open_regular_file(path: str | os.PathLike, what: str = "image") -> BinaryIO:
    """Open *path* for binary reading only if it is a regular file (symlinks followed).

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a
    FIFO, device or socket is refused at once instead of hanging a read forever, and a file
    swapped between a check and the open cannot slip through. Failures raise
    :class:`ImageReadError` ("cannot read {what} ...: why").
    """
    name = _describe(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageReadError(f"cannot read {what} {name}: {_why(exc, exc.strerror or str(exc))}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
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
    name = name or _describe(src)
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


def _select_frame(im: Image.Image, r: _Reading) -> None:
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


def load_image(
    src: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    alpha: AlphaMode = "composite",
    background: tuple[int, int, int] = WHITE,
    frame: int = 0,
    name: str | None = None,
) -> LoadedImage:
    """:func:`read_image` with every change to the picture said (:class:`LoadedImage`).

    *alpha*: "composite" flattens transparency onto *background* (an RGB triple), "drop"
    keeps the raw colour, "error" refuses an image that has any; an alpha channel that is 0
    everywhere is padding (RGBX buffers) and is ignored, with a notice. *frame* picks one
    frame of an animation or a multi-page file (a notice says how many there are). A uint16
    array holding only values below 256 is read as 16-bit (near-black), with a notice. *name*
    is how errors and notices name the source (default: its path, or a description).
    """
    if alpha not in ALPHA_MODES:
        raise ValueError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
    r = _Reading(name or _describe(src), "composite" if alpha == "white" else alpha, background, frame)
    if isinstance(src, np.ndarray):
        h, w = src.shape[:2] if src.ndim >= 2 else (0, 0)
        _check_pixels(w, h, max_pixels, r.name)
        pixels = _array_to_rgb(src, r)
    elif isinstance(src, Image.Image):
        try:
            _select_frame(src, r)
            _check_pixels(src.width, src.height, max_pixels, r.name)
            pixels = _pil_to_rgb(_orient(src, r.name), r)
        except ImageReadError:
            raise
        except Exception as exc:  # Pillow's decoders raise assorted types (NotImplementedError for some DDS)
            raise ImageReadError(f"cannot read image {r.name}: {type(exc).__name__}: {exc}") from exc
    elif isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)):
        with _opened(src, r.name) as im:  # lazy: only the header so far
            _select_frame(im, r)
            _check_pixels(im.width, im.height, max_pixels, r.name)
            im.load()
            pixels = _pil_to_rgb(_orient(im, r.name), r)
    else:
        raise TypeError(f"cannot read an image from {type(src).__name__}")
    return LoadedImage(pixels, tuple(r.notices), r.composited, r.frames)


# --------------------------------------------------------------------------
# saliency-map files
# --------------------------------------------------------------------------
def read_map(src: str | os.PathLike | bytes) -> np.ndarray:
    """The raw HxW levels of a greyscale map image (path or encoded bytes): uint8 or uint16.

    No RGB conversion and no EXIF rotation: a map's pixel values are data. A colour file
    whose three channels are equal is accepted as grey (alpha dropped); a real colour image
    raises :class:`ImageReadError`, as does anything unreadable. Callers scale the levels
    (to max 1, or by the bit depth's maximum).
    """
    name = _describe(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    else:
        with open_regular_file(src, "map") as f:
            try:
                data = f.read()
            except OSError as exc:
                raise ImageReadError(f"cannot read map {name}: {exc}") from exc
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if arr is None:
        raise ImageReadError(f"cannot read map {name}: not a readable image")
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[:, :, :3]
        if not (np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 0], arr[:, :, 2])):
            raise ImageReadError(f"cannot read map {name}: a saliency map must be greyscale, got a colour image")
        arr = arr[:, :, 0]
    if arr.dtype.kind not in "uf":
        raise ImageReadError(f"cannot read map {name}: unsupported pixel type {arr.dtype}")
    return arr


def map_levels(sm: np.ndarray, bits: int = 16) -> np.ndarray:
    """A map in [0, 1] as the integer levels of a `bits`-bit file: round(clip(sm, 0, 1) * (2^bits - 1)).

    Float32 input is scaled in float32, so levels equal those of earlier files bit for bit.
    """
    if bits not in (8, 16):
        raise ValueError(f"map files are 8 or 16 bit, got {bits}")
    top, dtype = (65535, np.uint16) if bits == 16 else (255, np.uint8)
    a = np.asarray(sm)
    a = a if a.dtype.kind == "f" else a.astype(np.float64)
    return np.rint(np.clip(a, 0, 1) * top).astype(dtype)


def encode_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG bytes (in memory, for the atomic writer) of HxWx3 uint8 RGB or HxW uint8/uint16 grey."""
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    elif not (a.ndim == 2 and a.dtype in (np.uint8, np.uint16)):
        raise ValueError(f"PNG encoding takes HxWx3 uint8 RGB or HxW uint8/uint16, got {a.dtype} {a.shape}")
    ok, buf = cv2.imencode(".png", a)
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def encode_map_png(sm: np.ndarray, bits: int = 16) -> bytes:
    """Greyscale PNG of a map in [0, 1] (:func:`map_levels`); 16 bit keeps it to 1.5e-5."""
    return encode_png(map_levels(sm, bits))


RAW_MAP_SUFFIXES = (".npy", ".png")


def encode_raw_map(sm: np.ndarray, path: str | os.PathLike) -> bytes:
    """The bytes of a raw map file named *path*: ``.npy`` keeps float32 exactly, ``.png`` is 16 bit.

    Check a user's path with :func:`check_raw_map_suffix` before any work, so a bad suffix
    fails up front rather than after the model ran.
    """
    if check_raw_map_suffix(path) == ".png":
        return encode_map_png(sm, 16)
    buf = io.BytesIO()
    np.save(buf, np.asarray(sm, dtype=np.float32))
    return buf.getvalue()


def check_raw_map_suffix(path: str | os.PathLike) -> str:
    """The lower-case suffix of a raw map path; ValueError unless it is .npy or .png."""
    suffix = Path(path).suffix.lower()
    if suffix not in RAW_MAP_SUFFIXES:
        got = suffix or "no suffix"
        raise ValueError(f"{os.fspath(path)}: a raw map is written as .npy (float32) or .png (16 bit), not {got}")
    return suffix


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------
def _umask() -> int:
    """Current umask without touching it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def same_file(a: Path, b: Path) -> bool:
    """Same file on disk: symlinks and hard links resolved (inode compare), else same real path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _kind(st: os.stat_result) -> str:
    """What a non-regular directory entry is, in words."""
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    return _FILE_KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")


def check_output_entry(path: str | os.PathLike) -> os.stat_result | None:
    """The one output rule, on the entry itself (``lstat``: a link is never followed): absent
    (None) or a regular file (its stat) may be written; a symbolic link (dangling or not), FIFO,
    device, socket or folder is refused with :class:`UnsafeWriteError` (a folder with
    ``IsADirectoryError``) whatever ``--overwrite`` says: replacing one would destroy what it
    stands for (/dev/null, a pipe another program reads) and writing through a link lands
    outside the place the user named."""
    shown = repr(os.fspath(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError as exc:
        raise UnsafeWriteError(f"cannot write {shown}: a part of its folder path is not a folder") from exc
    if stat.S_ISREG(st.st_mode):
        return st
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"cannot write {shown}: it is a directory")
    raise UnsafeWriteError(
        f"cannot write {shown}: it is {_kind(st)}, not a regular file; outputs are never written through "
        "links or onto special files, even with --overwrite (remove it or choose another path)"
    )


def open_entry(path: str | os.PathLike, flags: int, what: str, perm: int = 0o644) -> int:
    """A descriptor of *path* opened without following a final symbolic link, refused unless it
    is a regular file (:class:`UnsafeWriteError` naming *what*). For the files a command opens
    in place -- append-only logs, a manifest, a lock --, where the atomic writer's rename does not
    apply: a link there must not redirect the write, and a FIFO must not block it."""
    shown = repr(os.fspath(path))
    extra = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags | extra, perm)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeWriteError(f"cannot open {what} {shown}: it is a symbolic link; links are never followed "
                                   "for files written in place") from None
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise UnsafeWriteError(f"cannot open {what} {shown}: it is a FIFO (named pipe), not a regular file") \
                from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeWriteError(f"cannot open {what} {shown}: it is {_kind(st)}, not a regular file")
    os.set_blocking(fd, True)
    return fd


def _check_target(path: str | os.PathLike, sources: Iterable[str | os.PathLike], overwrite: bool) -> Path:
    """The checks every output passes before any work: a regular file or absent (no link, FIFO,
    device, socket or folder: :func:`check_output_entry`), its folder exists, not an input
    (symlinks and hard links resolved), and absent unless *overwrite*."""
    shown = repr(os.fspath(path))
    dest = Path(path)
    for s in sources:  # first: "that is the input" says more than "that is a link"
        if same_file(dest, Path(s)):
            raise UnsafeWriteError(
                f"refusing to overwrite the input file {os.fspath(s)!r}; choose another output path"
            )
    existing = check_output_entry(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {shown}: folder {os.fspath(parent)!r} does not exist")
    if not overwrite and existing is not None:
        raise OutputExistsError(f"cannot write {shown}: file exists; pass --overwrite to replace it")
    return dest


def _stage(dest: Path, data: bytes | bytearray | memoryview) -> str:
    """The bytes in a hidden, fsync'ed temporary file beside *dest* (same file system, so the
    final link or rename is atomic), with the permissions *dest* will have. Removed on failure."""
    existing = check_output_entry(dest)  # a regular file or nothing: its mode never comes via a link
    mode = existing.st_mode & 0o7777 if existing is not None else 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TEMP_SUFFIX, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(memoryview(data).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return tmp_name


#: errnos of file systems without hard links (FAT, some network shares): fall back to O_EXCL.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


def _publish(tmp_name: str, dest: Path, overwrite: bool) -> None:
    """Make the staged file visible as *dest*. With *overwrite* an atomic rename; without it a
    hard link, which fails if *dest* appeared since the checks, so a race loses with
    :class:`OutputExistsError` instead of replacing the other writer's file. The caller removes
    *tmp_name* afterwards."""
    if overwrite:
        check_output_entry(dest)  # again, just before: a link or FIFO put there meanwhile is refused
        os.replace(tmp_name, dest)  # rename replaces the entry itself, never a link's target
        return
    try:
        os.link(tmp_name, dest)
        return
    except FileExistsError:
        raise OutputExistsError(f"cannot write {os.fspath(dest)!r}: file exists (created meanwhile)") from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    try:  # no hard links here: claim the name exclusively, then rename over the claim
        os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise OutputExistsError(f"cannot write {os.fspath(dest)!r}: file exists (created meanwhile)") from None
    os.replace(tmp_name, dest)


def write_bytes_atomic(
    path: str | os.PathLike,
    data: bytes | bytearray | memoryview,
    *,
    source: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    overwrite_source: bool = False,
    overwrite: bool = True,
) -> Path:
    """Write *data* to *path* so that readers see the old file or the new one, never a part.

    The bytes go to a hidden temporary file in the same folder, are fsync'ed, then renamed
    over the target (``overwrite=True``) or hard-linked to it (``overwrite=False``: an existing
    target, even one created by another process a moment ago, raises
    :class:`OutputExistsError`, a ``FileExistsError``); the folder is fsync'ed. On any failure
    the temporary file is removed and an existing target is left untouched.

    *source* names the input file(s): writing onto one of them (symlinks and hard links
    resolved) raises :class:`UnsafeWriteError` unless ``overwrite_source=True``. A target that
    is a symbolic link, FIFO, device, socket or folder is refused whatever *overwrite* says
    (:func:`check_output_entry`). Returns the path written. Commands that write
    several files use :class:`OutputPlan`, which runs the same checks before any work.
    """
    if source is None or overwrite_source:
        sources: list[str | os.PathLike] = []
    else:
        sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    dest = _check_target(path, sources, overwrite)
    tmp_name = _stage(dest, data)
    try:
        _publish(tmp_name, dest, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    _fsync_dir(dest.parent if str(dest.parent) else Path("."))
    return dest


class OutputPlan:
    """Every file one command writes, checked together before any work, written together after.

    ``add`` runs the checks at once (not a folder, folder exists, not one of *sources* --
    symlinks and hard links resolved --, absent unless *overwrite*, distinct from the other
    outputs), so a doomed command fails before the model loads. ``commit`` stages every file,
    then publishes them all (atomic create without *overwrite*, atomic replace with it); if
    one fails, the files it had newly created are removed again, so a command leaves all its
    outputs or none of the new ones. Without *overwrite*, a file that appears between ``add``
    and ``commit`` makes ``commit`` fail with :class:`OutputExistsError`, never replaced.
    """

    def __init__(self, *, sources: Iterable[str | os.PathLike] = (), overwrite: bool = False):
        self.sources = [Path(s) for s in sources]
        self.overwrite = overwrite
        self._planned: dict[str, tuple[Path, str]] = {}  # real target -> (given path, label)

    def add(self, path: str | os.PathLike, label: str = "output") -> Path:
        """Check one output now; *label* names it in errors (e.g. ``--report``). Returns *path*."""
        dest = _check_target(path, self.sources, self.overwrite)
        key = os.path.realpath(dest)
        if key in self._planned:
            other, other_label = self._planned[key]
            raise UnsafeWriteError(
                f"{label} and {other_label} name the same file {os.fspath(other)!r}; give them different paths"
            )
        self._planned[key] = (Path(path), label)
        return Path(path)

    @property
    def paths(self) -> list[Path]:
        """The planned outputs, in the order added."""
        return [given for given, _ in self._planned.values()]

    def commit(self, files: Mapping[str | os.PathLike, bytes | bytearray | memoryview]) -> list[Path]:
        """Write *files* (each a planned path -> its bytes); all are staged before any appears."""
        planned = {os.path.realpath(given): key for key, (given, _) in self._planned.items()}
        jobs = []
        for path, data in files.items():
            key = planned.get(os.path.realpath(path))
            if key is None:
                raise ValueError(f"{os.fspath(path)!r} was not planned; OutputPlan.add it before any work")
            jobs.append((_check_target(path, self.sources, self.overwrite), data))
        staged: list[tuple[Path, str]] = []
        created: list[tuple[Path, int]] = []
        try:
            for dest, data in jobs:
                staged.append((dest, _stage(dest, data)))
            for dest, tmp_name in staged:
                inode = os.stat(tmp_name).st_ino
                _publish(tmp_name, dest, self.overwrite)
                created.append((dest, inode))
        except BaseException:
            if not self.overwrite:  # take back what this commit created (still ours: same inode)
                for dest, ino in created:
                    with contextlib.suppress(OSError):
                        if os.stat(dest).st_ino == ino:
                            os.unlink(dest)
            raise
        finally:
            for _, tmp_name in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
        for folder in {dest.parent if str(dest.parent) else Path(".") for dest, _ in jobs}:
            _fsync_dir(folder)
        return [Path(p) for p in files]


def remove_temp_files(folder: str | os.PathLike) -> int:
    """Delete the atomic writer's leftover temporary files under *folder* (a writer killed with
    SIGKILL cannot clean up); only names ending in :data:`TEMP_SUFFIX` are touched. Call it
    only while no other writer uses *folder*. Returns how many were removed."""
    removed = 0
    for root, _dirs, names in os.walk(folder):
        for n in names:
            if n.startswith(".") and n.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(root, n))
                    removed += 1
    return removed


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); best effort elsewhere."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


__all__ = [
    "ALPHA_MODES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "RAW_MAP_SUFFIXES",
    "TEMP_SUFFIX",
    "ImageReadError",
    "ImageSource",
    "LoadedImage",
    "OutputExistsError",
    "OutputPlan",
    "UnsafeWriteError",
    "check_output_entry",
    "check_raw_map_suffix",
    "encode_map_png",
    "encode_png",
    "encode_raw_map",
    "image_size",
    "list_images",
    "load_image",
    "map_levels",
    "open_entry",
    "open_regular_file",
    "read_image",
    "read_map",
    "remove_temp_files",
    "same_file",
    "write_bytes_atomic",
]
