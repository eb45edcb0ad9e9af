"""Choose the test-time views of SSPNet's saliency on its own on data sets the network never saw.

For each run of `sspnet train --leave-one-dataset-out` (RUNS/test-<name>/), the decoder map of
every view (the canvas resized by each factor of --scales to multiples of 32, mirrored or not) is
collected once on the run's validation images and on its left-out set, through
`SSPNet.view_raw`, the code the shipped model runs. A design is a set of scales with or without
the mirror: the mean of its views, under the output blur chosen on validation (as the shipped
model's was) and the log-density centre bias of --centre-sigma, scored on the left-out set at a
quarter of the canvas resolution (as `prior_study.py`); `--grey` shows every image in greyscale.
"passes" is the design's network cost per
image in single passes at scale 1 (a view at scale s costs about s^2). `--sigmas` then scores the
best design (or `--design`) under each centre-bias sigma (0 = off), with the gain over off per
direction; `--cache DIR` keeps the collected views so that a rerun only rescores.

    python benchmarks/tta_study.py RUNS --data ../shared/datasets/osie --data ../shared/datasets/eyecrowd
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from sspcodec.bench.outputblur import best_blur
from sspnet.data import GreyscaleView, SaliencyDataset
from sspnet.net.model import View, test_time_views
from sspnet.net.prior import centre_weighting
from sspnet.preprocess import Box, boxes_from_masks
from sspnet.training import priorfit
from sspnet.training.experiments import image_key, read_saliency_items
from sspnet.zoo import load_model


@torch.inference_mode()
def view_maps(model, dataset, views: list[View]) -> tuple[dict[View, torch.Tensor], priorfit.Collected]:
    """Each view's raw decoder maps at 1/FIT_SCALE of the canvas, and the images' ground truth."""
    model.eval()
    out: dict[View, list[torch.Tensor]] = {v: [] for v in views}
    gt, boxes, names = [], [], []
    for batch in tqdm(DataLoader(dataset, batch_size=8, shuffle=False), desc="views"):
        x = batch["image"]
        for v in views:
            out[v].append(priorfit.shrink(model.view_raw(x, "r", *v)).float())
        gt.append(priorfit.shrink(batch["saliency"]))
        boxes += [priorfit.shrink_box(b) for b in boxes_from_masks(batch["valid"])]
        names += [f"{d}/{n}" for d, n in zip(batch["dataset"], batch["name"])]
    g = torch.cat(gt)
    empty = torch.zeros(len(names), 0)
    return {v: torch.cat(m) for v, m in out.items()}, priorfit.Collected(g, g, empty, g, boxes, names)


def design_maps(maps: dict[View, torch.Tensor], base: priorfit.Collected, scales, mirror: bool) -> priorfit.Collected:
    raw = torch.stack([maps[v] for v in test_time_views(scales, mirror)]).mean(0)
    return priorfit.Collected(raw, raw, base.feats, base.gt, base.boxes, base.names)


def designs(scales: list[float], max_views: int) -> list[tuple[tuple[float, ...], bool]]:
    out = []
    for k in range(1, max_views + 1):
        for combo in itertools.combinations(scales, k):
            out += [(combo, False), (combo, True)]
    return out


Parts = dict[str, tuple[dict[View, torch.Tensor], priorfit.Collected]]


def _name(view: View) -> str:
    """A view's key in the cache files ("1.5:1" = 1.5x, mirrored)."""
    return f"{view[0]:g}:{view[1]:d}"


def collect(run: Path, items, scales: list[float], limit: int, grey: bool, cache: Path | None) -> Parts:
    """The views of a run's validation and left-out images (from `cache` when it has them)."""
    split = json.loads((run / "split.json").read_text())
    pos = {image_key(it): i for i, it in enumerate(items)}
    model = load_model(str(run / "best.safetensors"), "cpu")
    views = test_time_views(scales, True)
    parts: Parts = {}
    for part in ("val", "test"):
        keys = split[part][:limit] if limit else split[part]
        file = cache / f"{run.name}-{part}{'-grey' if grey else ''}-{len(keys)}.pt" if cache else None
        stored = torch.load(file, weights_only=True) if file and file.exists() else {"views": {}}
        if all(_name(v) in stored["views"] for v in views):
            maps = {v: stored["views"][_name(v)] for v in views}
            g = stored["gt"]
            base = priorfit.Collected(g, g, torch.zeros(len(g), 0), g, [Box(*b) for b in stored["boxes"]],
                                      stored["names"])
        else:
            ds = SaliencyDataset([items[pos[k]] for k in keys], size=model.config.input_size)
            maps, base = view_maps(model, GreyscaleView(ds) if grey else ds, views)
            if file:
                file.parent.mkdir(parents=True, exist_ok=True)
                boxes = [(b.top, b.left, b.height, b.width) for b in base.boxes]
                torch.save({"views": {_name(v): m for v, m in maps.items()}, "gt": base.gt,
                            "boxes": boxes, "names": base.names}, file)
        parts[part] = (maps, base)
    return parts


def score_design(parts: Parts, combo, mirror: bool, centre_sigma: float) -> dict:
    """Validation and left-out scores of one design, the output blur chosen on validation."""
    val, test = (design_maps(*parts[p], combo, mirror) for p in ("val", "test"))
    blur = best_blur(val, False)
    row: dict = {"blur": blur, "passes": (1 + mirror) * sum(s * s for s in combo)}
    for name, c in (("val", val), ("test", test)):
        row[name] = priorfit.score(c, centre_weighting(priorfit.predict(c, blur, None, False), c.boxes, centre_sigma))
    return row


def label(combo, mirror: bool) -> str:
    return "+".join(f"{s:g}" for s in combo) + (", mirrored too" if mirror else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="folder with test-<name>/ runs of --leave-one-dataset-out")
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.25, 1.5])
    ap.add_argument("--max-views", type=int, default=2, help="most scales in one design")
    ap.add_argument("--centre-sigma", type=float, default=0.6, help="the shipped config's (0 = off)")
    ap.add_argument("--limit", type=int, default=0, help="first N images of each part (a smoke run; 0 = all)")
    ap.add_argument("--grey", action="store_true", help="show every image in greyscale")
    ap.add_argument("--sigmas", type=float, nargs="*", default=[], help="centre-bias sigmas to sweep (0 = off)")
    ap.add_argument("--design", help="the design the sweep scores (a row's label); default: the best")
    ap.add_argument("--cache", type=Path,
                    help="keep the collected views here (a rerun only rescores; empty it when the runs change)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the table as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    items = read_saliency_items(a.data)
    parts = {run.name: collect(run, items, a.scales, a.limit, a.grey, a.cache) for run in sorted(a.runs.glob("test-*"))}
    results = {r: {label(*d): score_design(p, *d, a.centre_sigma) for d in designs(a.scales, a.max_views)}
               for r, p in parts.items()}
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

    if a.sigmas:
        best = {label(*d): d for d in designs(a.scales, a.max_views)}
        name = a.design or max(best, key=lambda k: np.mean([results[r][k]["test"]["cc"] for r in runs]))
        sweep = {r: {sg: score_design(parts[r], *best[name], sg) for sg in a.sigmas} for r in runs}
        results["sigma sweep"] = {"design": name} | {r: {f"{k:g}": v for k, v in sw.items()} for r, sw in sweep.items()}
        print(f"\ncentre-bias sigma under the design '{name}' (ΔCC against sigma {a.sigmas[0]:g})")
        print("| sigma | " + " | ".join(f"{r}: left-out CC / SIM / KLD" for r in runs) + " | ΔCC per run |")
        print("|--:|" + "--:|" * (len(runs) + 1))
        for sg in a.sigmas:
            cells = [f"{sweep[r][sg]['test']['cc']:.3f} / {sweep[r][sg]['test']['sim']:.3f} / "
                     f"{sweep[r][sg]['test']['kld']:.3f}" for r in runs]
            d = " / ".join(f"{sweep[r][sg]['test']['cc'] - sweep[r][a.sigmas[0]]['test']['cc']:+.3f}" for r in runs)
            print(f"| {sg:g} | " + " | ".join(cells) + f" | {d} |")
    if a.out:
        a.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
