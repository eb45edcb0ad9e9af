"""Compress one image from Python, without touching the disk, and print the figures.

    python examples/python_api.py [IMAGE]
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import sspcodec

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("astronaut.png")
rgb = np.asarray(Image.open(path).convert("RGB"))  # any HxWx3 uint8 array or PIL image works

# default budget: the bytes of a plain jpegli quality-85 JPEG. The default strength 0 writes that
# plain JPEG (what models of human vision preferred); 0.25 moves detail to where people look.
result = sspcodec.compress(rgb, strength=0.25)
print(f"sspcodec: {result.bytes} bytes ({result.bpp:.3f} bpp), predicted shift {result.predicted_shift:.5f}")
b = result.baseline
print(f"plain JPEG q{b.quality:g}: {b.bytes} bytes, predicted shift {b.predicted_shift:.5f}")
print(f"{result.predicted_gain_db:+.2f} dB where people are predicted to look; guard acted: {result.guard.acted}; "
      f"{result.model_evaluations} model evaluations in {result.seconds:.2f} s")
# result.data holds the JPEG bytes: send them, store them, or result.save("out.jpg")
