"""Choose the test-time views of SSPNet's saliency on its own on data sets the network never saw.

For each run of `sspnet train --leave-one-dataset-out` (RUNS/test-<name>/), the decoder map of
every view (the canvas resized by each factor of --scales to multiples of 32, mirrored or not) is
collected once on the run's validation images and on its left-out set, through
`SSPNet._view_raw`, the code the shipped model runs. A design is a set of scales with or without
the mirror: the mean of its views, under the output blur chosen on validation (as the shipped
model's was) and the log-density centre bias of --centre-sigma, scored on the left-out set at a
quarter of the canvas resolution (as `prior_study.py`); `--grey` shows every image in greyscale.
"passes" is the design's network cost per
image in single passes at scale 1 (a view at scale s costs about s^2).

    python benchmarks/tta_study.py RUNS --data ../shared/datasets/osie --data ../shared/datasets/eyecrowd
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from prior_study import best_blur
from torch.utils.data import DataLoader
from tqdm import tqdm

from sspnet import priorfit
from sspnet.data import GreyscaleView, SaliencyDataset
from sspnet.experiments import _key, read_saliency_items
from sspnet.preprocess import boxes_from_masks
from sspnet.prior import centre_weighting
from sspnet.zoo import load_model

View = tuple[float, bool]


@torch.inference_mode()
def view_maps(model, dataset, views: list[View]) -> tuple[dict[View, torch.Tensor], priorfit.Collected]:
    """Each view's raw decoder maps at 1/FIT_SCALE of the canvas, and the images' ground truth."""
    model.eval()
    out: dict[View, list[torch.Tensor]] = {v: [] for v in views}
    gt, boxes, names = [], [], []
    for batch in tqdm(DataLoader(dataset, batch_size=8, shuffle=False), desc="views"):
        x = batch["image"]
        for v in views:
            out[v].append(priorfit._shrink(model._view_raw(x, "r", *v)).float())
        gt.append(priorfit._shrink(batch["saliency"]))
        boxes += [priorfit._shrink_box(b) for b in boxes_from_masks(batch["valid"])]
        names += [f"{d}/{n}" for d, n in zip(batch["dataset"], batch["name"])]
    g = torch.cat(gt)
    empty = torch.zeros(len(names), 0)
    return {v: torch.cat(m) for v, m in out.items()}, priorfit.Collected(g, g, empty, g, boxes, names)


def design_maps(maps: dict[View, torch.Tensor], base: priorfit.Collected, scales, mirror: bool) -> priorfit.Collected:
    views = [(s, f) for s in scales for f in ((False, True) if mirror else (False,))]
    raw = torch.stack([maps[v] for v in views]).mean(0)
    return priorfit.Collected(raw, raw, base.feats, base.gt, base.boxes, base.names)


def designs(scales: list[float], max_views: int) -> list[tuple[tuple[float, ...], bool]]:
    out = []
    for k in range(1, max_views + 1):
        for combo in itertools.combinations(scales, k):
            out += [(combo, False), (combo, True)]
    return out


def study(
    run: Path, items, scales: list[float], max_views: int, centre_sigma: float, limit: int = 0, grey: bool = False
) -> dict[str, dict]:
    split = json.loads((run / "split.json").read_text())
    pos = {_key(it): i for i, it in enumerate(items)}
    model = load_model(str(run / "best.safetensors"), "cpu")
    views = [(s, f) for s in scales for f in (False, True)]
    parts = {}
    for part in ("val", "test"):
        keys = split[part][:limit] if limit else split[part]
        ds = SaliencyDataset([items[pos[k]] for k in keys], size=model.config.input_size)
        parts[part] = view_maps(model, GreyscaleView(ds) if grey else ds, views)
    rows = {}
    for combo, mirror in designs(scales, max_views):
        val, test = (design_maps(*parts[p], combo, mirror) for p in ("val", "test"))
        blur = best_blur(val, False)
        row = {}
        for name, c in (("val", val), ("test", test)):
            sm = centre_weighting(priorfit.predict(c, blur, None, False), c.boxes, centre_sigma)
            row[name] = priorfit.score(c, sm)
        label = "+".join(f"{s:g}" for s in combo) + (", mirrored too" if mirror else "")
        rows[label] = row | {"blur": blur, "passes": (1 + mirror) * sum(s * s for s in combo)}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="folder with test-<name>/ runs of --leave-one-dataset-out")
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.25, 1.5])
    ap.add_argument("--max-views", type=int, default=2, help="most scales in one design")
    ap.add_argument("--centre-sigma", type=float, default=0.6, help="the shipped config's (0 = off)")
    ap.add_argument("--limit", type=int, default=0, help="first N images of each part (a smoke run; 0 = all)")
    ap.add_argument("--grey", action="store_true", help="show every image in greyscale")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the table as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    items = read_saliency_items(a.data)
    results = {run.name: study(run, items, a.scales, a.max_views, a.centre_sigma, a.limit, a.grey)
               for run in sorted(a.runs.glob("test-*"))}
    if a.out:
        a.out.write_text(json.dumps(results, indent=1))
    runs = list(results)
    labels = list(results[runs[0]])
    ref = labels[0]
    print("| scales | passes | " + " | ".join(f"{r}: val CC; left-out CC / SIM / KLD" for r in runs)
          + " | mean left-out CC (Δ vs one pass) |")
    print("|---|--:|" + "--:|" * (len(runs) + 1))
    for lab in labels:
        cells = []
        for r in runs:
            v, t = results[r][lab]["val"], results[r][lab]["test"]
            cells.append(f"{v['cc']:.3f}; {t['cc']:.3f} / {t['sim']:.3f} / {t['kld']:.3f}")
        mcc = np.mean([results[r][lab]["test"]["cc"] for r in runs])
        d = mcc - np.mean([results[r][ref]["test"]["cc"] for r in runs])
        print(f"| {lab} | {results[runs[0]][lab]['passes']:.2f} | " + " | ".join(cells) + f" | {mcc:.3f} ({d:+.3f}) |")


if __name__ == "__main__":
    main()
