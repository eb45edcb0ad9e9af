"""Pillow's own test images through `Encoder.compress`: every file encoded or refused with the
project's error types (issue 26, case 13).

    python benchmarks/pillow_corpus.py [--pillow 13.0.0] [--cache DIR] [--timeout 60] [--show 30]

The images are the `Tests/images` folder of Pillow's source release, fetched from the package
registry with `pip download --no-binary :all: --no-deps pillow==VERSION` into a cache folder
(default: ~/.cache/sspcodec/pillow-corpus; nothing is committed, nothing written beside the
data) and read straight from the tarball. Each file goes through the fuzz harness's case runner
(`sspcodec.bench.fuzz_runner`, as in `benchmarks/fuzz.py`): a worker process with a tiny
random-weight model (reading and writing do not depend on the weights), default options, a
per-file timeout, the output written with the atomic writer into a fresh folder. Verdicts as in
the fuzz: encoded, refused (a project error), crash, hang, leak, escape. Exit status 1 if any
file is neither encoded nor refused.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

from sspcodec.bench.fuzz_inputs import OutputCase
from sspcodec.bench.fuzz_runner import CaseRunner
from sspcodec.bench.models import tiny_model

DEFAULT_CACHE = Path.home() / ".cache" / "sspcodec" / "pillow-corpus"


def fetch_sdist(version: str, cache: Path) -> Path:
    """Pillow's source release from the package registry (once; later runs reuse the cache)."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"pillow-{version}.tar.gz"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--quiet",
               f"pillow=={version}", "-d", str(cache)]
        subprocess.run(cmd, check=True)
        found = sorted(cache.glob(f"pillow-{version}.tar.gz"))
    if not found:
        raise SystemExit(f"pip download did not leave pillow-{version}.tar.gz in {cache}")
    return found[0]


def test_images(sdist: Path) -> list[tuple[str, bytes]]:
    """(name under Tests/images, bytes) of every regular file there, in name order."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and "/Tests/images/" in m.name]
        return sorted((m.name.split("/Tests/images/", 1)[1], tar.extractfile(m).read()) for m in members)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pillow", default="13.0.0", help="Pillow release whose test images to use")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per file")
    ap.add_argument("--show", type=int, default=30, help="refusal reasons to list")
    args = ap.parse_args()

    files = test_images(fetch_sdist(args.pillow, args.cache))
    counts: Counter[str] = Counter()
    refused: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pillow-corpus-") as tmp:
        root = Path(tmp)
        (root / "scratch").mkdir()
        runner = CaseRunner(tiny_model(root / "tiny.safetensors"), root / "scratch")
        try:
            for k, (name, data) in enumerate(files):
                folder = root / f"file{k}"
                folder.mkdir()
                outcome = runner.run(data, {"name": name}, OutputCase(), folder, args.timeout)
                counts[outcome.kind] += 1
                if outcome.kind == "refused":
                    refused.append((name, outcome.detail))
                elif outcome.kind != "encoded":
                    print(f"{name}: {outcome.kind}: {outcome.detail}", flush=True)
                if (k + 1) % 100 == 0:
                    print(f"{k + 1}/{len(files)} files, {time.perf_counter() - t0:.0f} s: {dict(counts)}", flush=True)
        finally:
            runner.close()
    bad = sum(n for kind, n in counts.items() if kind not in ("encoded", "refused"))
    print(f"\nPillow {args.pillow} Tests/images: {len(files)} files in {time.perf_counter() - t0:.0f} s")
    print(f"encoded {counts['encoded']}, refused with a project error {counts['refused']}, other {bad} "
          f"({dict(counts)})")
    for kind, n in Counter(detail.split(":")[0] for _, detail in refused).most_common():
        print(f"  refused with {kind}: {n}")
    for name, detail in refused[: args.show]:
        print(f"    {name}: {detail[:110]}")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
