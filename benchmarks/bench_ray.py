"""The Ray engine against the local batch on this machine: throughput ratio and identical bytes.

    python benchmarks/bench_ray.py [--images 200] [--workers 2] [--repeats 2] [--quality Q]
                                   [--model default] [--kodak DIR] [--kill] [--keep DIR] [--json out.json]

Makes IMAGES Kodak-sized inputs in a temporary folder from the 24 Kodak PNGs of ../shared
(flips, rotations and crops, so no two are the same; nothing is written into shared/), then
alternates, REPEATS times, `sspcodec batch --workers W` (local processes) and the Ray engine
(a private local Ray with W CPUs) in this process, each into a fresh output folder. Prints per
run the end-to-end images/s (start-up included: Ray itself, the workers' torch import and model
load) and the steady images/s (from the first output to the last, by file times), then the
ratios ray/local of the medians, and checks every run wrote the same bytes. `--kill` adds one Ray
run in which one actor is SIGKILLed while it encodes: the run must still finish every image with
the same bytes. The CPU may be shared with other jobs: compare the ratios, not the absolute speed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from sspcodec.batch import run_batch
from sspcodec.batch.ray_engine import run_ray_batch
from sspcodec.bench.batchchecks import kill_one_actor_while
from sspcodec.bench.paths import kodak_dir


def make_inputs(folder: Path, n: int, kodak: Path) -> None:
    """n distinct Kodak-sized PNGs: image i is Kodak photo i % 24 under variant i // 24."""
    photos = sorted(kodak.glob("*.png"))
    if not photos:
        raise SystemExit(f"no Kodak PNGs in {kodak}")
    variants: list[Callable[[np.ndarray], np.ndarray]] = [
        lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: a[::-1, ::-1], lambda a: a.transpose(1, 0, 2),
        lambda a: a[16:-16, 32:-32], lambda a: a[::-1, 8:-24], lambda a: a.transpose(1, 0, 2)[::-1],
        lambda a: a[24:, :-40][:, ::-1],
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = np.asarray(Image.open(photos[i % len(photos)]).convert("RGB"))
        v = variants[(i // len(photos)) % len(variants)](a)
        Image.fromarray(np.ascontiguousarray(v)).save(folder / f"img{i:04d}.png", compress_level=1)


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jpg"))}


def steady_rate(folder: Path) -> float:
    """Images/s between the first and the last output written (start-up left out)."""
    times = sorted(p.stat().st_mtime_ns for p in folder.glob("*.jpg"))
    return (len(times) - 1) / max((times[-1] - times[0]) / 1e9, 1e-9) if len(times) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quality", type=int, default=None, help="budget: plain JPEG quality (default: q85's bytes)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--kodak", type=Path, default=kodak_dir(), help="folder of the Kodak PNGs (read only)")
    ap.add_argument("--kill", action="store_true", help="also a Ray run with one actor killed mid-run")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep it (default: a temp folder)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    src = work / "in"
    if not src.exists():
        make_inputs(src, args.images, args.kodak)
    options = {} if args.quality is None else {"quality": args.quality}
    common = {"model": args.model, "workers": args.workers}
    engines = {
        "local": lambda out: run_batch(src, out, options, **common),
        "ray": lambda out: run_ray_batch(src, out, options, **common),
    }
    runs: list[dict] = []
    reference: dict[str, bytes] | None = None
    try:
        for rep in range(args.repeats):
            for name, run in engines.items():
                out = work / f"out-{name}-{rep}"
                shutil.rmtree(out, ignore_errors=True)
                t0 = time.perf_counter()
                summary = run(out)
                wall = time.perf_counter() - t0
                got = outputs(out)
                reference = reference or got
                rec = {"engine": name, "repeat": rep, "images": summary.done, "failed": len(summary.failed),
                       "wall_s": round(wall, 2), "images_per_s": summary.done / wall,
                       "steady_images_per_s": steady_rate(out), "identical": got == reference}
                runs.append(rec)
                print(f"{name:5s} run {rep}: {summary.done} images in {wall:.1f} s = {rec['images_per_s']:.3f} img/s "
                      f"end to end, {rec['steady_images_per_s']:.3f} img/s steady; identical bytes: "
                      f"{rec['identical']}", flush=True)
        if args.kill:
            out = work / "out-ray-kill"
            shutil.rmtree(out, ignore_errors=True)
            box: dict = {}
            thread = threading.Thread(target=lambda: box.setdefault("s", engines["ray"](out)))
            t0 = time.perf_counter()
            thread.start()
            killed = kill_one_actor_while(thread)
            thread.join()
            s = box["s"]
            rec = {"engine": "ray-kill", "killed_pid": killed, "images": s.done, "failed": len(s.failed),
                   "wall_s": round(time.perf_counter() - t0, 2), "identical": outputs(out) == reference}
            runs.append(rec)
            print(f"ray with actor {killed} killed mid-run: {s.done} encoded, {len(s.failed)} failed, "
                  f"identical bytes: {rec['identical']}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    def median(engine: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["engine"] == engine)

    ratio = median("ray", "images_per_s") / median("local", "images_per_s")
    steady = median("ray", "steady_images_per_s") / median("local", "steady_images_per_s")
    print(f"ray/local images/s (medians of {args.repeats}): end to end {ratio:.3f}x, steady {steady:.3f}x "
          f"(target >= 0.9x); every run identical: {all(r['identical'] for r in runs)}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
                                         "ratio_end_to_end": ratio, "ratio_steady": steady}, indent=2))


if __name__ == "__main__":
    main()
