"""Byte identity across a refactor: record the SHA-256 of every output, change the code, check.

    python benchmarks/identical_outputs.py record FILE [--kodak DIR] [--limit N]
    python benchmarks/identical_outputs.py check FILE [--kodak DIR] [--limit N]

The cases: the 24 Kodak images and the bundled astronaut, method rd at strengths 0, 0.5 and 1
and method search, each at the default budget (plain quality 85); the astronaut also at a
`max_bytes` budget, as a bytes object with `strip=True`, and through a given priority map. A
refactor that says "bytes unchanged" records FILE before and checks it after (exit 1 on any
difference, naming the cases). FILE lives outside the repository: the hashes belong to one
version of the encoder and one machine's libraries.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from sspcodec.bench.paths import kodak_dir

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut.png"

#: (label, Encoder keyword arguments)
SETTINGS = (("rd-s0", {"strength": 0.0}), ("rd-s0.5", {"strength": 0.5}), ("rd-s1", {"strength": 1.0}),
            ("search", {"method": "search"}))


def cases(kodak: Path, limit: int) -> Iterator[tuple[str, Path, dict]]:
    """(case name, source, compress keyword arguments) for every image and setting."""
    images = sorted(kodak.glob("kodim*.png"))[:limit] + [ASTRONAUT]
    for label, _ in SETTINGS:
        for path in images:
            yield f"{label}/{path.name}", path, {}
    rng = np.random.default_rng(0)
    yield "rd-s1/astronaut.png@max_bytes", ASTRONAUT, {"max_bytes": "40KB"}
    yield "rd-s1/astronaut.png@bytes-strip", ASTRONAUT, {"as_bytes": True, "strip": True}
    yield "rd-s1/astronaut.png@priority", ASTRONAUT, {"priority": rng.random((48, 64))}
    yield "search/astronaut.png@priority", ASTRONAUT, {"priority": rng.random((48, 64))}


def digests(kodak: Path, limit: int, say: Callable[[str], None]) -> dict[str, str]:
    """Case name -> SHA-256 of the output JPEG."""
    from sspcodec import Encoder

    encoders = {label: Encoder("default", "cpu", **kw) for label, kw in SETTINGS}
    out = {}
    for name, path, kw in cases(kodak, limit):
        kw = dict(kw)
        source = path.read_bytes() if kw.pop("as_bytes", False) else path
        t0 = time.perf_counter()
        data = encoders[name.split("/")[0]].compress(source, **kw).data
        out[name] = hashlib.sha256(data).hexdigest()
        say(f"{name:42} {len(data):8d} B  {time.perf_counter() - t0:5.1f} s  {out[name][:12]}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["record", "check"])
    ap.add_argument("file", type=Path)
    ap.add_argument("--kodak", type=Path, default=kodak_dir())
    ap.add_argument("--limit", type=int, default=24)
    args = ap.parse_args()
    if not sorted(args.kodak.glob("kodim*.png")):
        print(f"error: no Kodak images in {args.kodak}", file=sys.stderr)
        return 2
    got = digests(args.kodak, args.limit, print)
    if args.action == "record":
        args.file.write_text(json.dumps(got, indent=1))
        print(f"recorded {len(got)} outputs in {args.file}")
        return 0
    want = json.loads(args.file.read_text())
    differ = [k for k in got if got[k] != want.get(k)]  # a case never recorded differs too
    skipped = len(set(want) - set(got))
    print(f"{len(got) - len(differ)} of {len(got)} outputs byte-identical"
          + (f" ({skipped} recorded cases not run: --limit)" if skipped else ""))
    for k in differ:
        print(f"  differs: {k}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
