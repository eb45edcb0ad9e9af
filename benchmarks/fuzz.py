"""Fuzzing the image reader and the encoder: mutated JPEG/PNG bytes and random options.

    python benchmarks/fuzz.py [--cases 10000] [--timeout 30] [--minutes M] [--seed 0] [--save DIR]

Each case takes one of a dozen small seed images (16..64 px; JPEG baseline, progressive and
greyscale, with and without ICC/EXIF; PNG RGB, RGBA, L, 16-bit, palette), leaves a fifth of
them intact and applies 1-4 random edits (mostly one) to the rest (truncate, flip a bit,
overwrite or insert or delete bytes, duplicate a run, splice with another seed, set the
header's width/height), and feeds the bytes to `read_meta`, `read_image` and
`Encoder.compress` (a tiny random-weight model) with random options, valid or not (targets,
NaN/inf, sizes as text, `strip`, `max_pixels` of at most 1 MP); a result is saved with
`CompressResult.save` into a fresh folder. Verdicts:

- crash: an exception other than the project's own (ImageReadError, CompressError,
  WeightsError) escaped, or a "success" is not a decodable JPEG of the image's size;
- hang: no verdict within the per-case timeout (the worker process is killed and restarted);
- leak: a file other than the complete output was left in the output folder or in the
  worker's private temporary folder.

Cases run in a worker process so that a hang in C code can be timed out too. The harness
functions are also driven by hypothesis in tests/test_fuzz.py (about 300 cases in CI).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import shutil
import tempfile
import time
import traceback
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


def seed_images() -> list[bytes]:
    """The unmutated inputs: small, varied in format, mode and metadata."""
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
    return options


def random_case(seeds: list[bytes], draw: Draw) -> tuple[bytes, dict]:
    """One case: mutated bytes (a fifth are left intact) and options."""
    data = seeds[draw(len(seeds))]
    if draw(5):
        data = mutate(data, seeds[draw(len(seeds))], draw)
    return data, random_options(draw)


@dataclass(frozen=True)
class Outcome:
    """What one case did: `kind` is encoded, refused, crash or leak (hang: set by the runner)."""

    kind: str
    detail: str = ""


def project_errors() -> tuple[type[BaseException], ...]:
    from sspcodec.io import ImageReadError
    from sspcodec.options import CompressError
    from sspnet.zoo import WeightsError

    return (ImageReadError, CompressError, WeightsError)


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


def run_case(encoder, data: bytes, options: dict, folder: Path, scratch: Path) -> Outcome:
    """Read and encode one input into the empty `folder`; `scratch` is the process's private
    temporary folder (empty before, and must be empty after)."""
    from sspcodec.io import read_image
    from sspnet.imagemeta import read_meta

    allowed = project_errors()
    out = folder / "out.jpg"
    kind = "refused"
    try:
        read_meta(data)  # never raises
        with contextlib.suppress(allowed):
            read_image(data, max_pixels=100_000)
        result = encoder.compress(data, **options)
        result.save(out)
        kind = "encoded"
    except allowed as exc:
        detail = _where(exc)
    except Exception as exc:  # the finding: anything else escaping is a crash
        return Outcome("crash", _where(exc))
    if kind == "encoded":
        problem = _check_output(out, result.data, result.width, result.height)
        if problem:
            return Outcome("crash", problem)
        detail = f"{result.width}x{result.height}, {result.bytes} bytes"
    left = sorted(p.name for p in folder.iterdir() if not (kind == "encoded" and p == out))
    left += sorted(f"$TMPDIR/{p.name}" for p in scratch.iterdir())
    if left:
        return Outcome("leak", f"left behind: {left}")
    return Outcome(kind, detail)


def tiny_model(path: Path) -> Path:
    """A random-weight `default`-architecture checkpoint at a 48x64 input (fast on a CPU)."""
    from sspnet import build_model, save_checkpoint
    from sspnet.configs import CONFIGS

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
        data, options, folder = job
        conn.send(run_case(encoder, data, options, Path(folder), Path(scratch)))


class _Runner:
    """One worker process, replaced when a case times out."""

    def __init__(self, model: Path, scratch: Path):
        self.model, self.scratch, self.ctx = model, scratch, mp.get_context("spawn")
        self.proc = None

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, str(self.model), str(self.scratch)), daemon=True)
        self.proc.start()

    def run(self, data: bytes, options: dict, folder: Path, timeout: float) -> Outcome:
        if self.proc is None or not self.proc.is_alive():
            self.start()
        self.conn.send((data, options, str(folder)))
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
    findings: list[tuple[int, Outcome, dict]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = Path(tmp)
        (root / "scratch").mkdir()
        runner = _Runner(tiny_model(root / "tiny.safetensors"), root / "scratch")
        done = 0
        try:
            for case in range(args.cases):
                if args.minutes and time.perf_counter() - t0 > args.minutes * 60:
                    break
                rng = np.random.default_rng([args.seed, case])
                data, options = random_case(seeds, lambda n, rng=rng: int(rng.integers(n)))
                folder = root / f"case{case}"
                folder.mkdir()
                outcome = runner.run(data, options, folder, args.timeout)
                shutil.rmtree(folder)
                counts[outcome.kind] += 1
                done += 1
                if outcome.kind not in ("encoded", "refused"):
                    findings.append((case, outcome, options))
                    print(f"case {case}: {outcome.kind}: {outcome.detail} options={options}", flush=True)
                    if args.save:
                        args.save.mkdir(parents=True, exist_ok=True)
                        (args.save / f"case{case}.bin").write_bytes(data)
                if done % 500 == 0:
                    print(f"{done} cases, {time.perf_counter() - t0:.0f} s: {dict(counts)}", flush=True)
        finally:
            runner.close()
    seconds = time.perf_counter() - t0
    crashes, hangs, leaks = counts["crash"], counts["hang"], counts["leak"]
    print(f"\n{done} cases in {seconds:.0f} s ({seconds / max(done, 1) * 1000:.0f} ms/case), seed {args.seed}")
    print(f"encoded {counts['encoded']}, refused with a project error {counts['refused']}")
    print(f"crashes {crashes}, hangs {hangs}, leaks {leaks}")
    kinds = Counter(f"{o.kind}: {o.detail.split(' (')[0][:80]}" for _, o, _ in findings)
    for text, n in kinds.most_common(20):
        print(f"  {n:5d}  {text}")
    raise SystemExit(1 if (crashes or hangs or leaks) else 0)


if __name__ == "__main__":
    main()
