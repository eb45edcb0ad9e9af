"""Write sspcodec's JPEG with imageio: ``iio.imwrite(uri, arr, plugin="sspcodec", ...)``.

    python examples/imageio_plugin.py [OUT.jpg] [--model default]

Encodes examples/astronaut.png at a 40 KB budget to OUT.jpg (default: a temporary folder), then
once more to bytes in memory.
"""
import argparse
import tempfile
from pathlib import Path

import imageio.v3 as iio

import sspcodec  # noqa: F401  (importing sspcodec registers imageio's plugin "sspcodec")

ASTRONAUT = Path(__file__).resolve().with_name("astronaut.png")

parser = argparse.ArgumentParser(description="Encode astronaut.png with sspcodec through imageio.")
parser.add_argument("out", nargs="?", type=Path, help="output JPEG (default: in a temporary folder)")
parser.add_argument("--model", default="default", help="SSPNet checkpoint (default: the packaged model)")
args = parser.parse_args()
out = args.out or Path(tempfile.mkdtemp(prefix="sspcodec-")) / "astronaut.jpg"

rgb = iio.imread(ASTRONAUT)  # read with imageio's default plugin
iio.imwrite(out, rgb, plugin="sspcodec", max_bytes="40KB", model=args.model)
print(f"sspcodec: {out.stat().st_size} bytes -> {out}, decodes to {iio.imread(out).shape}")

data = iio.imwrite("<bytes>", rgb, plugin="sspcodec", extension=".jpg", quality=70, model=args.model)
print(f"sspcodec in memory, budget of a plain quality-70 JPEG: {len(data)} bytes")
