"""Copy an OSIE/EyeCrowd-format folder at a smaller width, fixations scaled with the pixels.

Why: a remote GPU machine gets only what travels with the repository (tens of MB), and the
models are trained and scored on a 384x288 canvas, so stimuli at the canvas width carry all
the pixels they see. Fixations move with the pixel grid (centres stay centres) and eq. 1's
sigma follows the image width, so the copy's maps are the originals' maps resampled.

    python benchmarks/shrink_dataset.py ../shared/datasets/osie /tmp/small/osie --width 384 --quality 85
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sspnet.data.fixations import MAT_RELATIVE_PATH, read_fixation_dataset


def scaled(coords: np.ndarray, factor: float) -> np.ndarray:
    """0-based pixel coordinates after resizing by `factor` (pixel centres map to pixel centres)."""
    return (coords + 0.5) * factor - 0.5


def _struct_array(records: list[dict]) -> np.ndarray:
    out = np.empty((len(records), 1), dtype=object)
    for i, r in enumerate(records):
        out[i, 0] = r
    return out


def shrink(src: Path, dst: Path, width: int, quality: int) -> int:
    """Write dst/stimuli (JPEG at `width`) and dst/eye/fixations.mat; returns the images written."""
    if dst.resolve() == src.resolve():
        raise SystemExit("refusing to write over the source folder")
    items = read_fixation_dataset(src, on_outside="drop")
    (dst / "stimuli").mkdir(parents=True, exist_ok=True)
    (dst / MAT_RELATIVE_PATH).parent.mkdir(parents=True, exist_ok=True)
    records = []
    for item in items:
        factor = width / item.width
        size = (width, max(1, round(item.height * factor)))
        with Image.open(item.image_path) as im:
            im.convert("RGB").resize(size, Image.LANCZOS).save(dst / "stimuli" / item.name, "JPEG", quality=quality)
        fx, fy = item.fixations.x, item.fixations.y
        subjects = []
        for j in np.unique(item.fixations.observer):
            keep = item.fixations.observer == j
            subjects.append({
                "fix_x": (scaled(fx[keep], factor) + 1.0).reshape(1, -1),  # back to MATLAB's 1-based
                "fix_y": (scaled(fy[keep], size[1] / item.height) + 1.0).reshape(1, -1),
                "fix_duration": item.fixations.duration_ms[keep].astype(np.float64).reshape(1, -1),
            })
        records.append({"img": item.name, "subjects": _struct_array(subjects).reshape(1, -1)})
    scipy.io.savemat(dst / MAT_RELATIVE_PATH, {"fixations": _struct_array(records)}, do_compression=True)
    return len(items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--width", type=int, default=384, help="Width of the copies in pixels (default: the canvas).")
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality of the copies.")
    args = ap.parse_args()
    n = shrink(args.src, args.dst, args.width, args.quality)
    print(f"{n} images -> {args.dst}")


if __name__ == "__main__":
    main()
