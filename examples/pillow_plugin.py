"""Save a picture through Pillow as sspcodec's JPEG: ``img.save(fp, format="SSPCODEC", ...)``.

    python examples/pillow_plugin.py [OUT.jpg] [--model default]

Encodes examples/astronaut.png at a 40 KB budget to OUT.jpg (default: a temporary folder).
"""
import argparse
import io
import tempfile
from pathlib import Path

from PIL import Image

import sspcodec

ASTRONAUT = Path(__file__).resolve().with_name("astronaut.png")

parser = argparse.ArgumentParser(description="Encode astronaut.png with sspcodec through Pillow.")
parser.add_argument("out", nargs="?", type=Path, help="output JPEG (default: in a temporary folder)")
parser.add_argument("--model", default="default", help="SSPNet checkpoint (default: the packaged model)")
args = parser.parse_args()
out = args.out or Path(tempfile.mkdtemp(prefix="sspcodec-")) / "astronaut.jpg"

sspcodec.register_pillow()  # adds the save format "SSPCODEC"; ".jpg" alone still means Pillow's own JPEG
with Image.open(ASTRONAUT) as img:
    # options: the encoder's (model, device, method, strength, ...) and compress's (max_bytes, quality, ...)
    img.save(out, format="SSPCODEC", max_bytes="40KB", model=args.model)
    plain = io.BytesIO()
    img.save(plain, format="JPEG", quality=85)  # Pillow's JPEG is untouched by the registration

with Image.open(out) as back:  # a standard JPEG: any decoder reads it
    print(f"sspcodec: {out.stat().st_size} bytes ({back.format} {back.size[0]}x{back.size[1]}) -> {out}")
print(f"Pillow's own JPEG at quality 85: {plain.tell()} bytes")
