"""A pipeline step: keep the model loaded and re-encode many images at a byte budget.

    python examples/pipeline.py IMAGE [IMAGE ...]
"""
import sys

from sspcodec import Encoder

encoder = Encoder()  # loads the packaged SSPNet once
for path in sys.argv[1:]:
    r = encoder.compress(path, bpp=1.0)  # 1 bit per pixel budget, detail kept where people look
    out = path.rsplit(".", 1)[0] + ".sspcodec.jpg"
    r.save(out)
    print(f"{out}: {r.bytes} B, shift {r.predicted_shift:.5f} vs {r.baseline.predicted_shift:.5f} (plain JPEG)")
