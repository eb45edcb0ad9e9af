"""Choose how SSPNet's shift map is spread (`shift_blur`, `shift_spread`) against human-style maps.

No human data of distorted images is in ../shared, so two proxies bracket the choice, both on
images of the data set a leave-one-dataset-out network never saw (RUNS/test-<name>/):

* observer split (real people): the image's observers are split in two halves, A (even) and
  B (odd); the "human shift map" is eq. 2 on their eq. 1 maps, (SM_B - SM_A)_+. With 7-8
  observers per half this is what a few-observer human shift map is made of: where one group
  looked and the other did not. No distortion is involved, so this proxy rewards maps that look
  like human attention and punishes sparse pixel-level maps (KLD explodes where the prediction
  has no mass).
* synthetic pairs (`sspnet.data.shift_layout.synthetic`): SM_d = SM_r + alpha * visibility of
  the distortion; rewards maps that keep *where the distortion is*. Not human data.

Distortions: JPEG q10 (Pillow, libjpeg), Gaussian blur (sigma 3 px of the canvas), recolouring
(hue rotated by 90 degrees). Predicted SSMs go through `SSPNet.shift` of the model under each
setting; rows also score a centre Gaussian and the blurred pixel difference. `--centre-sigma S`
adds every setting again on maps under the log-density centre bias (`ModelConfig.centre_sigma`).

    python benchmarks/shift_study.py RUNS --data ../shared/datasets/osie --data ../shared/datasets/eyecrowd
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from sspnet import maps, metrics
from sspnet.baselines import CenterBias
from sspnet.data import get_saliency_map
from sspnet.data.shift_layout.synthetic import synthesize_distorted_saliency
from sspnet.files.images import read_image
from sspnet.net.prior import centre_weighting
from sspnet.preprocess import letterbox
from sspnet.training.experiments import image_key, read_saliency_items
from sspnet.zoo import load_model

SETTINGS = [(0.0, 0.0), (12.0, 0.0), (6.0, 2.0), (12.0, 1.0), (12.0, 2.0), (12.0, 4.0), (24.0, 1.0), (24.0, 2.0),
            (24.0, 4.0), (24.0, 8.0)]


def distort(rgb: np.ndarray, kind: str) -> np.ndarray:
    if kind == "jpeg10":
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=10)
        return np.asarray(Image.open(buf).convert("RGB"))
    if kind == "blur":
        return cv2.GaussianBlur(rgb, (0, 0), 3.0)
    if kind == "recolour":
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + 45) % 180).astype(np.uint8)  # OpenCV hue is 0..179
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    raise ValueError(kind)


def scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    return {"cc": metrics.cc(pred, gt), "sim": metrics.sim(pred, gt), "kld": metrics.kld(pred, gt)}


def study(run: Path, items, n_images: int, centre_sigma: float = 0.0) -> dict[str, dict[str, list[float]]]:
    split = json.loads((run / "split.json").read_text())
    pos = {image_key(it): i for i, it in enumerate(items)}
    model = load_model(str(run / "best.safetensors"), "cpu")
    size = model.config.input_size
    train_maps = [letterbox(get_saliency_map(items[pos[k]]), size)[0] for k in split["train"][::4]]
    centre = CenterBias.fit(train_maps).predict(size).astype(np.float32)
    rows: dict[str, dict[str, list[float]]] = {}

    def add(label: str, proxy: str, s: dict[str, float]) -> None:
        for k, v in s.items():
            rows.setdefault(f"{label} | {proxy}", {}).setdefault(k, []).append(v)

    base = replace(model.config, shift_from_normalized=True)  # as the zoo runs saliency-only models
    for key in split["test"][:n_images]:
        item = items[pos[key]]
        rgb = read_image(item.image_path)
        pristine, _ = letterbox(rgb, size)
        fix, obs = item.fixations.xy, item.fixations.observer
        half = np.isin(obs, np.unique(obs)[1::2])
        sm_a = maps.saliency_map(fix[~half], item.shape)
        sm_b = maps.saliency_map(fix[half], item.shape)
        human = letterbox(maps.shift_map(sm_b, sm_a), size)[0]
        sm_r_gt = letterbox(get_saliency_map(item), size)[0]
        as_input = lambda a: torch.from_numpy(a[None]).permute(0, 3, 1, 2).float().div(255)  # noqa: E731
        with torch.inference_mode():
            sm_r = model.saliency(as_input(pristine), "r")
        for kind in ("jpeg10", "blur", "recolour"):
            dist, _ = letterbox(distort(rgb, kind), size)
            synth_d = synthesize_distorted_saliency(sm_r_gt, pristine, dist, level=3)
            synth = maps.shift_map(synth_d, sm_r_gt)
            with torch.inference_mode():
                sm_d = model.saliency(as_input(dist), "d")
            weighted = [((sm_d, sm_r), "")]  # the maps as they are, then under the centre bias
            if centre_sigma > 0:
                pair = tuple(centre_weighting(m, None, centre_sigma) for m in (sm_d, sm_r))
                weighted.append((pair, f" x centre {centre_sigma:g}"))
            for (blur, spread), ((d, r), tag) in itertools.product(SETTINGS, weighted):
                model.config = replace(base, shift_blur=blur, shift_spread=spread)
                ssm = model.shift(d, r)[0, 0].float().numpy()
                if not np.isfinite(ssm).all() or ssm.max() <= 0:
                    continue
                label = f"SSM blur {blur:g} spread {spread:g}{tag}"
                add(label, "observer split", scores(ssm, human))
                add(label, "synthetic", scores(ssm, synth))
            model.config = base
            diff = cv2.GaussianBlur(np.abs(dist.astype(np.float32) - pristine).mean(2), (0, 0), 6.0)
            for label, m in (("centre Gaussian", centre), ("blurred pixel difference", diff)):
                add(label, "observer split", scores(m, human))
                add(label, "synthetic", scores(m, synth))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--images", type=int, default=60, help="left-out images per run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--centre-sigma", type=float, default=0.0, help="also score maps under this centre weighting")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    items = read_saliency_items(a.data)
    allrows: dict[str, dict[str, list[float]]] = {}
    for run in sorted(a.runs.glob("test-*")):
        for k, v in study(run, items, a.images, a.centre_sigma).items():
            for m, vals in v.items():
                allrows.setdefault(k, {}).setdefault(m, []).extend(vals)
    summary = {k: {m: float(np.mean(v)) for m, v in d.items()} | {"n": len(d["cc"])} for k, d in allrows.items()}
    if a.out:
        a.out.write_text(json.dumps(summary, indent=1))
    print("| map | proxy | CC | SIM | KLD | pairs |\n|---|---|--:|--:|--:|--:|")
    for k, s in summary.items():
        label, proxy = k.split(" | ")
        print(f"| {label} | {proxy} | {s['cc']:.3f} | {s['sim']:.3f} | {s['kld']:.3f} | {s['n']} |")


if __name__ == "__main__":
    main()
