"""Fuzzing the image reader, the encoder and the output writer: mutated bytes, random options,
hostile output folders.

    python benchmarks/fuzz.py [--cases 10000] [--timeout 30] [--minutes M] [--seed 0] [--save DIR]

Each case takes one of about twenty small seed images (16..64 px; JPEG baseline, progressive and
greyscale, with and without ICC/EXIF, EXIF orientation stored as SHORT, LONG and SLONG in both
byte orders; PNG RGB, RGBA, L, LA, 16-bit, palette, all-transparent; animated GIF and APNG,
multi-page TIFF), leaves a fifth of them intact and applies 1-4 random edits (mostly one) to the
rest (truncate, flip a bit, overwrite or insert or delete bytes, duplicate a run, splice with
another seed, set the header's width/height), and feeds the bytes to `read_meta`, `read_image`
and `Encoder.compress` (a tiny random-weight model) with random options, valid or not (targets,
NaN/inf, sizes as text, `strip`, `max_pixels` of at most 1 MP, `alpha`, `background`, `frame`).
A result is written with the atomic writer (`overwrite` drawn at random) into a fresh OUT folder
whose output name may already be taken by an obstacle: a regular file, a symbolic link to a
sentinel file outside OUT, a dangling link pointing outside, a link to a folder outside, a FIFO
or a folder. Verdicts:

- crash: an exception other than the project's own (ImageReadError, CompressError,
  WeightsError, UnsafeWriteError and its OutputExistsError, IsADirectoryError for a folder)
  escaped, or a "success" is not a decodable JPEG of the image's size;
- escape: anything outside OUT changed (the sentinel's bytes, a new file where a link points),
  an obstacle was replaced or written through, or a link/FIFO/folder was written at all;
- hang: no verdict within the per-case timeout (the worker process is killed and restarted);
- leak: a file other than the complete output (and the obstacle) was left in OUT or in the
  worker's private temporary folder.

Cases run in a worker process so that a hang in C code can be timed out too. The harness
functions are also driven by hypothesis in tests/test_fuzz.py (about 300 cases in CI).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import shutil
import stat
import struct
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

#: draw(n) -> an int in [0, n): the one source of randomness (numpy here, hypothesis in tests).
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


@dataclass(frozen=True)
class Outcome:
    """What one case did: `kind` is encoded, refused, crash or leak (hang: set by the runner)."""

    kind: str
    detail: str = ""


def project_errors() -> tuple[type[BaseException], ...]:
    from sspcodec.options import CompressError
    from sspnet.files.images import ImageReadError
    from sspnet.files.outputs import UnsafeWriteError
    from sspnet.zoo import WeightsError

    return (ImageReadError, CompressError, WeightsError, UnsafeWriteError, IsADirectoryError)


def _where(exc: BaseException) -> str:
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
    encoder, data: bytes, options: dict, folder: Path, scratch: Path, output: OutputCase = OutputCase()
) -> Outcome:
    """Read and encode one input, then write it into OUT under `folder` past `output`'s obstacle;
    `scratch` is the process's private temporary folder (empty before, and must be empty after)."""
    from sspcodec.metadata import read_meta
    from sspnet.files.images import read_image
    from sspnet.files.outputs import write_bytes_atomic

    allowed = project_errors()
    out_dir, outside = place_obstacle(folder, output.obstacle)
    out = out_dir / "out.jpg"
    kind, result = "refused", None
    try:
        with warnings.catch_warnings():  # Pillow's "corrupt EXIF" and our notices are results, not failures
            warnings.simplefilter("ignore")
            read_meta(data)  # never raises
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


def tiny_model(path: Path) -> Path:
    """A random-weight `default`-architecture checkpoint at a 48x64 input (fast on a CPU)."""
    from sspnet import build_model, save_checkpoint
    from sspnet.net.configs import CONFIGS

    save_checkpoint(build_model(replace(CONFIGS["default"], input_size=(48, 64))), path)
    return path


# --------------------------------------------------------------------------
# the runner: cases in a worker process, a per-case timeout in the parent
# --------------------------------------------------------------------------
def _worker(conn, model: str, scratch: str) -> None:
    import torch

    tempfile.tempdir = scratch
    torch.set_num_threads(1)
    from sspcodec import Encoder

    encoder = Encoder(model, device="cpu")
    while True:
        job = conn.recv()
        if job is None:
            return
        data, options, output, folder = job
        conn.send(run_case(encoder, data, options, Path(folder), Path(scratch), output))


class CaseRunner:
    """One worker process, replaced when a case times out."""

    def __init__(self, model: Path, scratch: Path):
        self.model, self.scratch, self.ctx = model, scratch, mp.get_context("spawn")
        self.proc = None

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, str(self.model), str(self.scratch)), daemon=True)
        self.proc.start()

    def run(self, data: bytes, options: dict, output: OutputCase, folder: Path, timeout: float) -> Outcome:
        if self.proc is None or not self.proc.is_alive():
            self.start()
        self.conn.send((data, options, output, str(folder)))
        if self.conn.poll(timeout):
            try:
                return self.conn.recv()
            except EOFError:  # the worker died (a segfault, the OOM killer)
                self.proc = None
                return Outcome("crash", "the worker process died")
        self.proc.kill()
        self.proc.join()
        self.proc = None
        for p in self.scratch.iterdir():  # a killed case cannot clean up; not a leak of ours
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()
        return Outcome("hang", f"no verdict in {timeout:g} s")

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    ap.add_argument("--minutes", type=float, help="stop starting new cases after this long")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, help="write the inputs of crashes, hangs and leaks here")
    args = ap.parse_args()

    seeds = seed_images()
    counts: Counter[str] = Counter()
    obstacles: Counter[str] = Counter()
    written_refused = 0
    findings: list[tuple[int, Outcome, dict]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = Path(tmp)
        (root / "scratch").mkdir()
        runner = CaseRunner(tiny_model(root / "tiny.safetensors"), root / "scratch")
        done = 0
        try:
            for case in range(args.cases):
                if args.minutes and time.perf_counter() - t0 > args.minutes * 60:
                    break
                rng = np.random.default_rng([args.seed, case])
                data, options, output = random_case(seeds, lambda n, rng=rng: int(rng.integers(n)))
                folder = root / f"case{case}"
                folder.mkdir()
                outcome = runner.run(data, options, output, folder, args.timeout)
                obstacles[output.obstacle] += 1
                shutil.rmtree(folder)
                counts[outcome.kind] += 1
                written_refused += outcome.detail.endswith(WRITE_REFUSED)
                done += 1
                if outcome.kind not in ("encoded", "refused"):
                    findings.append((case, outcome, options))
                    print(f"case {case}: {outcome.kind}: {outcome.detail} options={options} {output}", flush=True)
                    if args.save:
                        args.save.mkdir(parents=True, exist_ok=True)
                        (args.save / f"case{case}.bin").write_bytes(data)
                if done % 500 == 0:
                    print(f"{done} cases, {time.perf_counter() - t0:.0f} s: {dict(counts)}", flush=True)
        finally:
            runner.close()
    seconds = time.perf_counter() - t0
    crashes, hangs, leaks, escapes = counts["crash"], counts["hang"], counts["leak"], counts["escape"]
    print(f"\n{done} cases in {seconds:.0f} s ({seconds / max(done, 1) * 1000:.0f} ms/case), seed {args.seed}")
    print(f"encoded and written {counts['encoded']}, refused with a project error {counts['refused']} "
          f"(of which encoded but the output refused by the writer: {written_refused})")
    print(f"output obstacles: {dict(sorted(obstacles.items()))}")
    print(f"crashes {crashes}, hangs {hangs}, leaks {leaks}, writes outside OUT or through links {escapes}")
    kinds = Counter(f"{o.kind}: {o.detail.split(' (')[0][:80]}" for _, o, _ in findings)
    for text, n in kinds.most_common(20):
        print(f"  {n:5d}  {text}")
    raise SystemExit(1 if (crashes or hangs or leaks or escapes) else 0)


if __name__ == "__main__":
    main()
