"""Fuzzing the image reader, the encoder and the output writer: mutated bytes, random options,
hostile output folders.

    python benchmarks/fuzz.py [--cases 10000] [--timeout 30] [--minutes M] [--seed 0] [--save DIR]

Each case takes one of about twenty small seed images (16..64 px; JPEG baseline, progressive and
greyscale, with and without ICC/EXIF, EXIF orientation stored as SHORT, LONG and SLONG in both
byte orders; PNG RGB, RGBA, L, LA, 16-bit, palette, all-transparent; animated GIF and APNG,
multi-page TIFF), leaves a fifth of them intact and applies 1-4 random edits (mostly one) to the
rest (truncate, flip a bit, overwrite or insert or delete bytes, duplicate a run, splice with
another seed, set the header's width/height), and feeds the bytes to `read_source` (pixels and
metadata), `read_image` and `Encoder.compress` (a tiny random-weight model) with random options,
valid or not (targets, NaN/inf, sizes as text, `strip`, `max_pixels` of at most 1 MP, `alpha`,
`background`, `frame`).
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
(sspcodec.bench.fuzz_inputs, fuzz_cases, fuzz_runner) is also driven by hypothesis in
tests/test_fuzz.py (about 300 cases in CI).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from sspcodec.bench.fuzz_cases import WRITE_REFUSED, Outcome
from sspcodec.bench.fuzz_inputs import random_case, seed_images
from sspcodec.bench.fuzz_runner import CaseRunner
from sspcodec.bench.models import tiny_model


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
