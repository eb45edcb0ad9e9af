"""Choose SSPNet's output stage on data sets the network never saw (leave one data set out).

For each run of `sspnet train --leave-one-dataset-out` (RUNS/test-<name>/), the frozen network's
maps are collected once on its own training/validation images and on the left-out set; every
design (output blur, flip averaging, centre prior with a gate reading the map or also the scene,
fitted on the validation or the training images) is then fitted on the training side only and
scored on the left-out set. The design with the best mean CC over both directions is the one to
ship; KLD and SIM are printed next to it, with a centre Gaussian fitted on the training maps.
The log-density centre bias (`sspnet.net.prior.centre_weighting`, the map times a broad Gaussian) is
scored at every sigma of CENTRE_SIGMAS; `--grey` shows every image in greyscale (a probe of
photos without colour), `--quick` skips the additive prior's fits (no training-set maps; the
centre Gaussian is then fitted on the validation maps).

    python benchmarks/prior_study.py RUNS --data ../shared/datasets/osie --data ../shared/datasets/eyecrowd
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from sspcodec.bench.outputblur import best_blur
from sspnet.baselines import CenterBias
from sspnet.data import GreyscaleView, SaliencyDataset
from sspnet.net.prior import centre_weighting
from sspnet.training import priorfit
from sspnet.training.experiments import image_key, read_saliency_items
from sspnet.zoo import load_model

CENTRE_SIGMAS = (0.4, 0.5, 0.6, 0.7, 0.85)


def centre_maps(c: priorfit.Collected, bias: CenterBias) -> torch.Tensor:
    out = torch.zeros_like(c.gt)
    for i, b in enumerate(c.boxes):
        out[i, 0, b.top : b.top + b.height, b.left : b.left + b.width] = torch.from_numpy(
            bias.predict((b.height, b.width)).astype(np.float32))
    return out


def study(
    run: Path, items, steps: int, grey: bool = False, quick: bool = False
) -> tuple[dict[str, dict[str, float]], priorfit.Collected, float]:
    """The design rows of one run, its left-out set's maps and the output blur chosen on validation."""
    split = json.loads((run / "split.json").read_text())
    pos = {image_key(it): i for i, it in enumerate(items)}
    model = load_model(str(run / "best.safetensors"), "cpu")
    size = model.config.input_size
    parts = {}
    for name in ("val", "test") if quick else ("train", "val", "test"):
        subset = SaliencyDataset([items[pos[k]] for k in split[name]], size=size)
        parts[name] = priorfit.collect(model, GreyscaleView(subset) if grey else subset, progress=True)
    test = parts["test"]
    rows: dict[str, dict[str, float]] = {}
    fit_on = parts["val" if quick else "train"]
    bias = CenterBias.fit([fit_on.gt[i, 0].numpy() for i in range(len(fit_on.names))])
    rows[f"centre Gaussian (fit on {'val' if quick else 'train'} maps)"] = priorfit.score(test, centre_maps(test, bias))
    blurs = {flip: best_blur(parts["val"], flip) for flip in (False, True)}
    for flip in (False, True):
        tag = " + flip" if flip else ""
        blur = blurs[flip]
        net = priorfit.predict(test, blur, None, flip)
        rows[f"network, blur chosen on val{tag}"] = priorfit.score(test, net) | {"blur": blur}
        for sigma in CENTRE_SIGMAS:
            rows[f"network x centre Gaussian, sigma {sigma:g}{tag}"] = priorfit.score(
                test, centre_weighting(net, test.boxes, sigma))
        for fit_on in () if quick else ("val", "train"):
            for image_features in (False, True):
                prior = priorfit.fit_prior(parts[fit_on], blur, image_features, flip, steps=steps)
                label = f"prior, gate {'map+scene' if image_features else 'map'}, fit on {fit_on}{tag}"
                rows[label] = priorfit.score(test, priorfit.predict(test, blur, prior, flip))
                rows[label]["alpha"] = float(priorfit_alpha(test, blur, prior, flip))
    return rows, test, blurs[False]


def cross_fit(tests: dict[str, tuple[priorfit.Collected, float]], steps: int) -> dict[str, dict[str, float]]:
    """The additive prior fitted on another run's left-out images (maps of a network that is
    transferring, as the shipped one does on new photos) and scored on this run's: does how much
    prior pays carry over from one data set to another?"""
    out = {}
    for name, (test, blur) in tests.items():
        fit_on = [c for other, (c, _) in tests.items() if other != name]  # the other run(s), pooled
        prior = priorfit.fit_prior(fit_on[0] if len(fit_on) == 1 else _pooled(fit_on), blur, steps=steps)
        out[name] = priorfit.score(test, priorfit.predict(test, blur, prior))
        out[name]["alpha"] = priorfit_alpha(test, blur, prior, False)
    return out


def _pooled(parts: list[priorfit.Collected]) -> priorfit.Collected:
    return priorfit.Collected(*(torch.cat([getattr(c, f) for c in parts]) for f in ("raw", "raw_flip", "feats", "gt")),
                              [b for c in parts for b in c.boxes], [n for c in parts for n in c.names])


def priorfit_alpha(c: priorfit.Collected, blur: float, prior, flip: bool) -> float:
    """Mean mixing weight the gate gives the left-out images (how much prior they get)."""
    from sspnet.net.prior import box_mask

    sm = priorfit.predict(c, blur, None, flip)  # the network's maps before the prior
    mask = box_mask(c.boxes, len(c.names), tuple(sm.shape[-2:]), sm.device)
    return float(prior.weight(sm, mask, c.feats).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="folder with test-<name>/ runs of --leave-one-dataset-out")
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the table as JSON here")
    ap.add_argument("--grey", action="store_true", help="show every image in greyscale")
    ap.add_argument("--quick", action="store_true", help="skip the additive prior's fits (no training-set maps)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    items = read_saliency_items(a.data)
    results, tests = {}, {}
    for run in sorted(a.runs.glob("test-*")):
        results[run.name], test, blur = study(run, items, a.steps, a.grey, a.quick)
        tests[run.name] = (test, blur)
        if a.out:
            a.out.write_text(json.dumps(results, indent=1))
    if len(tests) > 1:
        for name, row in cross_fit(tests, a.steps).items():
            results[name]["prior, gate map, fit on the other run's left-out set"] = row
        if a.out:
            a.out.write_text(json.dumps(results, indent=1))
    labels = list(next(iter(results.values())))
    print("| design | " + " | ".join(f"{r} CC / SIM / KLD" for r in results) + " | mean CC | mean KLD |")
    print("|---|" + "---|" * (len(results) + 2))
    for lab in labels:
        cells = [f"{results[r][lab]['cc']:.3f} / {results[r][lab]['sim']:.3f} / {results[r][lab]['kld']:.3f}"
                 for r in results]
        mcc = np.mean([results[r][lab]["cc"] for r in results])
        mkld = np.mean([results[r][lab]["kld"] for r in results])
        print(f"| {lab} | " + " | ".join(cells) + f" | {mcc:.3f} | {mkld:.3f} |")


if __name__ == "__main__":
    main()
