"""The fuzz harness's inputs: small varied seed images, random edits of their bytes, random
encoder options (valid or not) and the situation the output is written into.

Every draw goes through one ``draw(n)`` function, so the same cases come from numpy's generator
in benchmarks/fuzz.py and from hypothesis in tests/test_fuzz.py.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

#: draw(n) -> an int in [0, n): the one source of randomness (numpy in fuzz.py, hypothesis in tests).
Draw = Callable[[int], int]

EDITS = ("truncate", "flip", "overwrite", "insert", "delete", "duplicate", "splice", "dimensions")
NAN, INF = float("nan"), float("inf")
#: Target values: (valid, invalid); a fifth of the targets drawn are invalid.
TARGETS: dict[str, tuple[list, list]] = {
    "quality": ([1, 5, 50, 85, 95, 100], [0, 101, 85.5, -3, NAN, True]),
    "max_bytes": ([1, 100, 500, 2000, 50_000, "2KB", "1.5 KiB"], ["0", "-5", "abc", 10**13, 2.5, INF]),
    "bpp": ([0.1, 0.5, 1.0, 4.0, 1e-9], [0.0, -1.0, NAN, INF]),
    "max_shift": ([0.0, 1e-4, 0.01, 1.0], [-0.5, NAN, INF]),
}
#: Reading options: (valid, invalid), each drawn a fifth of the time.
READING: dict[str, tuple[list, list]] = {
    "alpha": (["composite", "error"], ["drop", "", 3]),
    "background": (["black", "#123456", "10,20,30", (0, 128, 255)], ["nope", "#00000080", (1, 2), 5]),
    "frame": ([0, 1, 2, 7], [-1, 1.5, 70_000, "x"]),
}
#: What may already sit at the output's name in OUT.
OBSTACLES = ("none", "none", "none", "file", "link-to-sentinel", "dangling-link", "link-to-folder", "fifo", "folder")
#: `max_pixels`: (valid, invalid). Always set, at most 1 MP: a header edited to claim a large
#: size still decodes (libjpeg fills missing data with grey), and encoding such an image is a
#: matter of minutes, not a hang; large images are bench_memory.py's.
MAX_PIXELS: tuple[list, list] = ([64, 4096, 100_000, 1_000_000, 1_000_000], [0, -1, 2.5, True])


def _pixels(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx * yy) % 97], -1) + rng.normal(0, 15, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _exif_orientation(order: bytes, kind: int) -> bytes:
    """An "Exif" block by hand whose one entry is orientation 6 stored as TIFF type `kind`."""
    o = "<" if order == b"II" else ">"
    value = struct.pack(o + {3: "H", 4: "I", 9: "i"}[kind], 6).ljust(4, b"\x00")
    entry = struct.pack(o + "HHI", 0x0112, kind, 1) + value
    return b"Exif\x00\x00" + order + struct.pack(o + "HIH", 42, 8, 1) + entry + struct.pack(o + "I", 0)


def _frames(fmt: str, **kw) -> bytes:
    frames = [Image.fromarray(_pixels(24, 32, 10 + k)) for k in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], **kw)
    return buf.getvalue()


def seed_images() -> list[bytes]:
    """The unmutated inputs: small, varied in format, mode, frames and metadata."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "FuzzCam"
    rgb = Image.fromarray(_pixels(48, 64, 0))
    grey = Image.fromarray(_pixels(40, 24, 1)[..., 0])
    rgba = Image.fromarray(np.dstack([_pixels(32, 32, 2), np.full((32, 32), 128, np.uint8)]))
    return [
        _encode(rgb, "JPEG", quality=90),
        _encode(rgb, "JPEG", quality=60, progressive=True),
        _encode(rgb, "JPEG", quality=80, icc_profile=icc, exif=exif.tobytes()),
        _encode(grey, "JPEG", quality=85),
        _encode(Image.fromarray(_pixels(16, 56, 3)), "JPEG", quality=95, subsampling=0),
        _encode(rgb, "PNG"),
        _encode(rgb, "PNG", icc_profile=icc),
        _encode(rgba, "PNG"),
        _encode(grey, "PNG"),
        _encode(Image.fromarray(_pixels(20, 30, 4)[..., 1].astype(np.uint16) * 257), "PNG"),
        _encode(rgb.quantize(16), "PNG"),
        _encode(Image.fromarray(_pixels(64, 16, 5)), "PNG", optimize=True),
        *[_encode(rgb, "JPEG", quality=85, exif=_exif_orientation(order, kind))
          for order, kind in ((b"II", 4), (b"MM", 4), (b"MM", 3), (b"II", 9))],
        _encode(Image.fromarray(np.dstack([_pixels(24, 24, 6)[..., 0], np.tile(np.arange(24) * 10, (24, 1))])
                                .astype(np.uint8), "LA"), "PNG"),
        _encode(Image.fromarray(np.dstack([_pixels(16, 24, 7), np.zeros((16, 24), np.uint8)])), "PNG"),
        _frames("GIF", duration=50),
        _frames("PNG"),
        _frames("TIFF"),
    ]


def _dimensions(data: bytes, value: int) -> bytes:
    """Width and height in the header (PNG IHDR or the first JPEG SOF) set to `value`."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        v = value.to_bytes(4, "big")
        return data[:16] + v + v + data[24:]
    for sof in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(sof)
        if at >= 0 and at + 9 <= len(data):
            v = (value & 0xFFFF).to_bytes(2, "big")
            return data[: at + 5] + v + v + data[at + 9 :]
    return data


def mutate(data: bytes, donor: bytes, draw: Draw) -> bytes:
    """1-4 random edits of `data`, mostly one (`donor`: another seed, for splices)."""
    for _ in range((1, 1, 1, 2, 4)[draw(5)]):
        op = EDITS[draw(len(EDITS))]
        i = draw(len(data) + 1)
        n = 1 + draw(64)
        byte = draw(256)
        if op == "truncate":
            data = data[:i]
        elif op == "flip" and i < len(data):
            data = data[:i] + bytes([data[i] ^ (1 << (byte % 8))]) + data[i + 1 :]
        elif op == "overwrite":
            data = data[:i] + bytes([byte]) * n + data[i + n :]
        elif op == "insert":
            data = data[:i] + bytes([byte]) * n + data[i:]
        elif op == "delete":
            data = data[:i] + data[i + n :]
        elif op == "duplicate":
            data = data[:i] + data[i : i + n] + data[i:]
        elif op == "splice":
            data = data[:i] + donor[draw(len(donor) + 1) :]
        elif op == "dimensions":
            data = _dimensions(data, (0, 1, 255, 9990, 65_535, 70_000, 2**31 - 1)[byte % 7])
    return data


def random_options(draw: Draw) -> dict:
    """Encoder options: mostly zero or one target (a fifth of them invalid), sometimes two (a
    usage error); `strip` a quarter of the time; `max_pixels` always, a tenth of it invalid."""
    names = list(TARGETS)
    options = {}
    for _ in range((0, 0, 1, 1, 1, 1, 1, 1, 1, 2)[draw(10)]):
        name = names[draw(len(names))]
        values = TARGETS[name][draw(5) == 0]
        options[name] = values[draw(len(values))]
    if draw(4) == 0:
        options["strip"] = True
    values = MAX_PIXELS[draw(10) == 0]
    options["max_pixels"] = values[draw(len(values))]
    for name, (valid, invalid) in READING.items():
        if draw(5) == 0:
            values = invalid if draw(5) == 0 else valid
            options[name] = values[draw(len(values))]
    return options


@dataclass(frozen=True)
class OutputCase:
    """How the output is written: what already sits at its name in OUT, and `overwrite`."""

    obstacle: str = "none"
    overwrite: bool = True


def random_case(seeds: list[bytes], draw: Draw) -> tuple[bytes, dict, OutputCase]:
    """One case: mutated bytes (a fifth are left intact), options and the output's situation."""
    data = seeds[draw(len(seeds))]
    if draw(5):
        data = mutate(data, seeds[draw(len(seeds))], draw)
    return data, random_options(draw), OutputCase(OBSTACLES[draw(len(OBSTACLES))], bool(draw(2)))


__all__ = [
    "EDITS",
    "MAX_PIXELS",
    "OBSTACLES",
    "READING",
    "TARGETS",
    "Draw",
    "OutputCase",
    "mutate",
    "random_case",
    "random_options",
    "seed_images",
]
