"""Peak memory of one `sspcodec.compress` call at 1, 4, 16 and 50 megapixels.

    python benchmarks/bench_memory.py [--sizes 1 4 16 50] [--model default] [--kodak DIR]

Each size runs in a fresh Python process (imports, model load, reading the image file and one
`compress` at the default budget), so its peak RSS (VmHWM, the kernel's high-water mark of
resident memory) is that of a user's `sspcodec compress photo.jpg` and nothing else. The test
image is natural-ish: a Kodak photo (a synthetic texture when /work/shared is absent) upscaled
to the size with cubic interpolation, plus Gaussian noise (sigma 4) so that the JPEG has detail
to code at every scale, saved as a quality-95 JPEG. Targets (issue 11): <= 1.5 GB at 16 MP and
<= 3 GB at 50 MP.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from sspcodec.bench.paths import kodak_dir

#: The child: read, compress, report its own high-water mark (kB in /proc/self/status).
CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from sspcodec import Encoder
enc = Encoder(sys.argv[2], device="cpu")
t1 = time.perf_counter()
r = enc.compress(sys.argv[1])
t2 = time.perf_counter()
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"width": r.width, "height": r.height, "bytes": r.bytes, "load_s": t1 - t0,
                  "compress_s": t2 - t1, "vm_hwm_kb": hwm,
                  "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def source_image(kodak: Path) -> np.ndarray:
    """A Kodak photo (BGR), or a synthetic texture when the shared data is absent."""
    files = sorted(kodak.glob("kodim*.png"))
    if files:
        return cv2.imread(str(files[min(22, len(files) - 1)]), cv2.IMREAD_COLOR)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:512, 0:768].astype(np.float32)
    img = np.stack([xx / 3, yy / 2, (np.sin(xx / 17) * np.cos(yy / 11) + 1) * 120], -1)
    return np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)


def write_test_image(src: np.ndarray, megapixels: float, path: Path, seed: int = 0) -> tuple[int, int]:
    """`src` upscaled to about `megapixels` (its aspect kept), noise added in bands to keep this
    process small, written as a q95 JPEG. Returns (width, height)."""
    h0, w0 = src.shape[:2]
    scale = (megapixels * 1e6 / (h0 * w0)) ** 0.5
    w, h = round(w0 * scale), round(h0 * scale)
    big = cv2.resize(src, (w, h), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    for r0 in range(0, h, 512):
        band = big[r0 : r0 + 512].astype(np.int16)
        band += rng.normal(0, 4, band.shape).astype(np.int16)
        big[r0 : r0 + 512] = np.clip(band, 0, 255).astype(np.uint8)
    if not cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"could not write {path}")
    return w, h


def measure(path: Path, model: str) -> dict:
    """One fresh process compressing `path`; its figures as a dict."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), model], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 16, 50], help="megapixels")
    ap.add_argument("--model", default="default")
    ap.add_argument("--kodak", type=Path, default=kodak_dir())
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    src = source_image(args.kodak)
    rows = []
    print(f"{'MP':>5} {'size':>12} {'peak RSS MB':>12} {'compress s':>11} {'load s':>7} {'bytes':>10}")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for mp in args.sizes:
            path = Path(tmp) / f"test_{mp:g}mp.jpg"
            w, h = write_test_image(src, mp, path)
            row = {"megapixels": mp, **measure(path, args.model)}
            rows.append(row)
            if "error" in row:
                print(f"{mp:5g} {f'{w}x{h}':>12} failed: {row['error']}")
                continue
            print(f"{mp:5g} {f'{w}x{h}':>12} {row['vm_hwm_kb'] / 1024:12.0f} {row['compress_s']:11.1f} "
                  f"{row['load_s']:7.1f} {row['bytes']:10d}", flush=True)
            path.unlink()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
