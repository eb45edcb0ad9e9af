"""One fuzz case and its verdict: read and encode the bytes, write the result into a fresh OUT
folder past an obstacle, then judge it (encoded, refused, crash, escape, leak).

Only the project's own error types may escape the reader and the encoder; a success must be a
complete, decodable JPEG of the image's size; nothing outside OUT may change and nothing may be
left behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from sspcodec.bench.fuzz_inputs import OutputCase


@dataclass(frozen=True)
class Outcome:
    """What one case did: `kind` is encoded, refused, crash or leak (hang: set by the runner)."""

    kind: str
    detail: str = ""


def project_errors() -> tuple[type[BaseException], ...]:
    """The exception types the reader, encoder and writer may raise on bad input (a refusal)."""
    from sspcodec.options import CompressError
    from sspnet.files.images import ImageReadError
    from sspnet.files.outputs import UnsafeWriteError
    from sspnet.zoo import WeightsError

    return (ImageReadError, CompressError, WeightsError, UnsafeWriteError, IsADirectoryError)


def _where(exc: BaseException) -> str:
    """The exception, short, with the file and line it was raised at."""
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {str(exc)[:200]} ({Path(frame.filename).name}:{frame.lineno})"


def _check_output(path: Path, data: bytes, width: int, height: int) -> str:
    """Why the saved output is not the complete result (empty when it is)."""
    if not path.is_file() or path.read_bytes() != data:
        return "the saved file is not the result's bytes"
    try:
        with Image.open(path) as im:
            im.load()
            if im.format != "JPEG" or im.size != (width, height):
                return f"the output is a {im.format} of {im.size}, not a {width}x{height} JPEG"
    except Exception as exc:  # any failure to decode our own output is the finding
        return f"the output does not decode: {_where(exc)}"
    return ""


SENTINEL = b"a file outside OUT that no case may change"
#: How a refused case's detail ends when the encode succeeded and the writer refused the output.
WRITE_REFUSED = " (encoded, write refused)"


def place_obstacle(folder: Path, obstacle: str) -> tuple[Path, Path]:
    """OUT (`folder`/out) with `obstacle` at the output's name, and the folder outside OUT
    (`folder`/outside, holding the sentinel file and an empty folder) that must stay as it is."""
    out_dir, outside = folder / "out", folder / "outside"
    out_dir.mkdir()
    (outside / "folder").mkdir(parents=True)
    (outside / "sentinel.jpg").write_bytes(SENTINEL)
    out = out_dir / "out.jpg"
    if obstacle == "file":
        out.write_bytes(b"an older output")
    elif obstacle == "link-to-sentinel":
        out.symlink_to(outside / "sentinel.jpg")
    elif obstacle == "dangling-link":
        out.symlink_to(outside / "created-through-a-link.jpg")
    elif obstacle == "link-to-folder":
        out.symlink_to(outside / "folder", target_is_directory=True)
    elif obstacle == "fifo":
        os.mkfifo(out)
    elif obstacle == "folder":
        out.mkdir()
    return out_dir, outside


def _escaped(out: Path, outside: Path, obstacle: str, wrote: bool) -> str:
    """Why the write reached outside OUT or through a special entry (empty when it did not)."""
    if (outside / "sentinel.jpg").read_bytes() != SENTINEL:
        return "the sentinel outside OUT was changed"
    extra = sorted(p.name for p in outside.iterdir() if p.name not in ("sentinel.jpg", "folder"))
    extra += sorted(f"folder/{p.name}" for p in (outside / "folder").iterdir())
    if extra:
        return f"files appeared outside OUT: {extra}"
    kinds = {"link-to-sentinel": stat.S_ISLNK, "dangling-link": stat.S_ISLNK, "link-to-folder": stat.S_ISLNK,
             "fifo": stat.S_ISFIFO, "folder": stat.S_ISDIR}
    if obstacle in kinds and not kinds[obstacle](os.lstat(out).st_mode):
        return f"the {obstacle} at the output's name was replaced"
    if obstacle in kinds and wrote:
        return f"the output was written although a {obstacle} held its name"
    return ""


def run_case(
    encoder: Any, data: bytes, options: dict, folder: Path, scratch: Path, output: OutputCase = OutputCase()
) -> Outcome:
    """Read and encode one input, then write it into OUT under `folder` past `output`'s obstacle;
    `scratch` is the process's private temporary folder (empty before, and must be empty after)."""
    from sspcodec.source import read_source
    from sspnet.files.images import read_image
    from sspnet.files.outputs import write_bytes_atomic

    allowed = project_errors()
    out_dir, outside = place_obstacle(folder, output.obstacle)
    out = out_dir / "out.jpg"
    kind, result = "refused", None
    try:
        with warnings.catch_warnings():  # Pillow's "corrupt EXIF" and our notices are results, not failures
            warnings.simplefilter("ignore")
            with contextlib.suppress(allowed):  # the codec's reader: pixels and every metadata block
                read_source(data, max_pixels=100_000)
            with contextlib.suppress(allowed):
                read_image(data, max_pixels=100_000)
            result = encoder.compress(data, **options)
        write_bytes_atomic(out, result.data, overwrite=output.overwrite)
        kind = "encoded"
    except allowed as exc:
        detail = _where(exc)
    except Exception as exc:  # the finding: anything else escaping is a crash
        return Outcome("crash", _where(exc))
    escape = _escaped(out, outside, output.obstacle, kind == "encoded")
    if escape:
        return Outcome("escape", escape)
    if kind == "encoded":
        problem = _check_output(out, result.data, result.width, result.height)
        if problem:
            return Outcome("crash", problem)
        detail = f"{result.width}x{result.height}, {result.bytes} bytes"
    keep = {out.name} if kind == "encoded" or output.obstacle != "none" else set()
    left = sorted(p.name for p in out_dir.iterdir() if p.name not in keep)
    left += sorted(f"$TMPDIR/{p.name}" for p in scratch.iterdir())
    if left:
        return Outcome("leak", f"left behind: {left}")
    if result is not None and kind == "refused":
        detail += WRITE_REFUSED
    return Outcome(kind, detail)


__all__ = ["SENTINEL", "WRITE_REFUSED", "Outcome", "place_obstacle", "project_errors", "run_case"]
