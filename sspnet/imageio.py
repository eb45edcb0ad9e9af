"""Image files in, bytes out: the one reader and the one atomic writer of both packages.

Everything user-supplied passes through here, so the rules are strict:
images come back as HxWx3 uint8 RGB no matter the source mode, failures raise
:class:`ImageReadError` naming the file and the reason (never a bare Pillow
traceback), oversized images are refused before decoding, and outputs are
written atomically so an interrupted run never leaves a half-written or lost
file.

Saliency maps are the one exception to "everything becomes RGB": a map file is a
single-channel 8- or 16-bit PNG whose values are the data, so :func:`read_map` returns
its raw levels and :func:`encode_map_png` writes them; colour conversion or EXIF
rotation would corrupt them.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Default ceiling on decoded pixels (width * height): 100 megapixels.
DEFAULT_MAX_PIXELS = 100_000_000

AlphaMode = Literal["white", "drop"]
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray | Image.Image


class ImageReadError(ValueError):
    """An image could not be read; the message names the source and why."""


class UnsafeWriteError(ValueError):
    """A write was refused because it would clobber something it should not."""


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


def _composite(rgb: np.ndarray, alpha: np.ndarray, mode: AlphaMode) -> np.ndarray:
    """Flatten transparency: over white (what viewers show) or just drop it."""
    if mode == "drop":
        return rgb
    if mode != "white":
        raise ValueError(f"alpha must be 'white' or 'drop', got {mode!r}")
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    out = rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def _scale_16bit(arr: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 / 257 == 255 exactly)."""
    a = np.clip(arr.astype(np.float64), 0, 65535)
    return np.floor(a / 257.0 + 0.5).astype(np.uint8)


def _array_to_rgb(arr: np.ndarray, alpha: AlphaMode, name: str) -> np.ndarray:
    """Normalise an in-memory array (the caller's own pixels) to HxWx3 uint8."""
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
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
        a = _composite(colour, a_ch, alpha)
    elif a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.array(a, dtype=np.uint8, order="C", copy=True)


def _pil_to_rgb(im: Image.Image, alpha: AlphaMode, name: str) -> np.ndarray:
    """Convert any Pillow mode to RGB uint8 with explicit, documented rules."""
    mode = im.mode
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
        return _composite(rgba[:, :, :3], rgba[:, :, 3], alpha)
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


def image_size(path: str | os.PathLike, *, exif_orientation: bool = True) -> tuple[int, int]:
    """(width, height) of the image :func:`read_image` would return, from the file header alone.

    EXIF orientation is taken into account, so a size checked here always matches the
    pixels read later (fixation coordinates are validated against it);
    ``exif_orientation=False`` gives the stored size, that of :func:`read_map`. Raises
    :class:`ImageReadError` naming the file when it is missing or not an image.
    """
    name = _describe(path)
    if not Path(path).is_file():
        raise ImageReadError(f"cannot read image {name}: file not found")
    try:
        with Image.open(path) as im:
            w, h = im.size
            return (h, w) if exif_orientation and _rotates(im) else (w, h)
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read image {name}: not a recognised image format") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"cannot read image {name}: {exc}") from exc


def read_image(
    src: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    alpha: AlphaMode = "white",
) -> np.ndarray:
    """Read an image from a path, encoded bytes, an array or a PIL image.

    Returns HxWx3 uint8 RGB with EXIF orientation applied. Conversions:
    1/L/I;16/I/F -> grey replicated to RGB (16-bit scaled by 1/257, float
    0..1 scaled by 255); P/CMYK/YCbCr via Pillow; transparency (RGBA, LA, PA,
    P with a transparent index) is composited over white by default because
    that is what a viewer shows and JPEG has no alpha -- ``alpha="drop"``
    keeps the raw colour instead. Multi-frame files give their first frame.
    CMYK is converted naively (no ICC colour management).

    Refuses images above *max_pixels* (checked from the header, before
    decoding; ``None`` disables our check but Pillow's decompression-bomb
    guard still applies) and unreadable, truncated or corrupt data, raising
    :class:`ImageReadError` whose message names the source and the reason.
    """
    name = _describe(src)
    if isinstance(src, np.ndarray):
        h, w = src.shape[:2] if src.ndim >= 2 else (0, 0)
        _check_pixels(w, h, max_pixels, name)
        return _array_to_rgb(src, alpha, name)
    if isinstance(src, Image.Image):
        _check_pixels(src.width, src.height, max_pixels, name)
        try:
            return _pil_to_rgb(_orient(src, name), alpha, name)
        except ImageReadError:
            raise
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageReadError(f"cannot read image {name}: {exc}") from exc
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise ImageReadError(f"cannot read image {name}: no data")
        fp: object = io.BytesIO(bytes(src))
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise ImageReadError(f"cannot read image {name}: file not found")
        if path.is_dir():
            raise ImageReadError(f"cannot read image {name}: it is a directory")
        fp = path
    else:
        raise TypeError(f"cannot read an image from {type(src).__name__}")

    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit; Pillow's warning would be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:  # lazy: only the header so far
                _check_pixels(im.width, im.height, max_pixels, name)
                im.load()
                return _pil_to_rgb(_orient(im, name), alpha, name)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"cannot read image {name}: too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read image {name}: not a recognised image format") from exc
    except PermissionError as exc:
        raise ImageReadError(f"cannot read image {name}: permission denied") from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageReadError(f"cannot read image {name}: corrupt or truncated data ({exc})") from exc


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
    try:
        data = bytes(src) if isinstance(src, (bytes, bytearray, memoryview)) else Path(src).read_bytes()
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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def write_bytes_atomic(
    path: str | os.PathLike,
    data: bytes | bytearray | memoryview,
    *,
    source: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    overwrite_source: bool = False,
    overwrite: bool = True,
) -> Path:
    """Write *data* to *path* so that readers see the old file or the new one.

    The bytes go to a hidden temporary file in the same folder (same file
    system, so the final ``os.replace`` is atomic), are fsync'ed, then renamed
    over the target and the folder is fsync'ed. On any failure the temporary
    file is removed and an existing target is left untouched.

    *source* names the input file(s): writing onto one of them raises
    :class:`UnsafeWriteError` unless ``overwrite_source=True`` (the classic
    ``encode in.jpg -o in.jpg`` accident). ``overwrite=False`` refuses any
    existing target (``FileExistsError``). A symlinked target is followed, so
    the link survives. Returns the path written.
    """
    dest = Path(path)
    if dest.is_symlink():
        dest = Path(os.path.realpath(dest))
    if dest.is_dir():
        raise IsADirectoryError(f"cannot write {os.fspath(path)!r}: it is a directory")
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {os.fspath(path)!r}: folder {os.fspath(parent)!r} does not exist")
    if source is not None and not overwrite_source:
        sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        for s in sources:
            if _same_file(dest, Path(s)):
                raise UnsafeWriteError(
                    f"refusing to overwrite the input file {os.fspath(s)!r}; "
                    "choose another output path or pass overwrite_source=True"
                )
    if not overwrite and dest.exists():
        raise FileExistsError(f"cannot write {os.fspath(path)!r}: file exists (overwrite=False)")
    payload = memoryview(data).cast("B")

    try:
        mode = dest.stat().st_mode & 0o7777  # keep an existing file's permissions
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(parent)
    return dest


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
    "DEFAULT_MAX_PIXELS",
    "ImageReadError",
    "ImageSource",
    "UnsafeWriteError",
    "encode_map_png",
    "encode_png",
    "image_size",
    "map_levels",
    "read_image",
    "read_map",
    "write_bytes_atomic",
]
