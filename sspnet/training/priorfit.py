"""Fit the output stage of a trained SSPNet (output blur, centre prior and its gate) on human maps.

Why a separate fit: the prior has a handful of parameters and the network is frozen, so the
network's raw maps are computed once (`collect`) and every candidate design is fitted and
scored in seconds (`fit_prior`, `score`). That makes it cheap to choose the design the honest
way, on another data set than the one the network was trained on (leave one data set out,
`sspnet lodo`), and then refit the chosen design for the shipped model (`sspnet fit-prior`).

Fitting runs at a quarter of the canvas resolution (96x72 for 384x288): the prior and the blur
are smooth, and the parameters are in fractions of the image box, so they carry over to full
resolution (`sspnet eval` then scores the fitted model at full resolution).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sspnet import metrics
from sspnet.device import autocast
from sspnet.net.decoder import gaussian_blur
from sspnet.net.model import SSPNet
from sspnet.net.prior import SaliencyPrior
from sspnet.preprocess import Box, boxes_from_masks
from sspnet.training import losses

__all__ = ["Collected", "collect", "fit_prior", "predict", "score", "with_prior"]

FIT_SCALE = 4  # maps are fitted and scored at 1/FIT_SCALE of the canvas


@dataclass
class Collected:
    """Raw (pre-blur, pre-prior) pristine-decoder maps of a frozen model on a set of images."""

    raw: torch.Tensor  # (N, 1, h, w) float32, sigmoid maps at 1/FIT_SCALE of the canvas
    raw_flip: torch.Tensor  # same, predicted on the mirrored image and mirrored back
    feats: torch.Tensor  # (N, C) mean of the deepest tokens
    gt: torch.Tensor  # (N, 1, h, w) human maps (eq. 1)
    boxes: list[Box]  # at the reduced resolution
    names: list[str]

    def subset(self, idx: Sequence[int]) -> Collected:
        i = torch.as_tensor(list(idx), dtype=torch.long)
        return Collected(self.raw[i], self.raw_flip[i], self.feats[i], self.gt[i],
                         [self.boxes[j] for j in idx], [self.names[j] for j in idx])


def shrink(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x.float(), FIT_SCALE)


def shrink_box(b: Box) -> Box:
    s = FIT_SCALE
    return Box(b.top // s, b.left // s, max(1, b.height // s), max(1, b.width // s))


@torch.inference_mode()
def collect(model: SSPNet, dataset, batch_size: int = 8, progress: bool = True) -> Collected:
    """Run the frozen network once over a SaliencyDataset (augment off), on each image and its mirror."""
    model.eval()
    device = model.device
    raw, raw_flip, feats, gt, boxes, names = [], [], [], [], [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    for batch in tqdm(loader, desc="network maps", disable=not progress):
        x = batch["image"].to(device)
        size = tuple(x.shape[-2:])
        with autocast(device):
            f = model.encode(torch.cat([x, x.flip(-1)]))
            sm = model.decoder_r(f, size).float()
        a, b = sm.split(x.shape[0])
        raw.append(shrink(a).cpu())
        raw_flip.append(shrink(b.flip(-1)).cpu())
        feats.append(f[2].float().mean((2, 3))[: x.shape[0]].cpu())
        gt.append(shrink(batch["saliency"]))
        boxes += [shrink_box(bx) for bx in boxes_from_masks(batch["valid"])]
        names += [f"{d}/{n}" for d, n in zip(batch["dataset"], batch["name"])]
    return Collected(torch.cat(raw), torch.cat(raw_flip), torch.cat(feats), torch.cat(gt), boxes, names)


def predict(
    c: Collected, blur: float, prior: SaliencyPrior | None, flip: bool = False, batch: int = 64
) -> torch.Tensor:
    """The model's output maps for the collected images under one output-stage design.

    `blur` is in canvas pixels (as `ModelConfig.output_blur`); `flip` averages the map of each
    image with that of its mirror (test-time augmentation, twice the network cost)."""
    out = []
    for s in range(0, len(c.names), batch):
        sm = c.raw[s : s + batch]
        if flip:
            sm = 0.5 * (sm + c.raw_flip[s : s + batch])
        sm = gaussian_blur(sm, blur / FIT_SCALE)
        if prior is not None:
            sm = prior(sm, c.boxes[s : s + batch], c.feats[s : s + batch])
        out.append(sm)
    return torch.cat(out)


def fit_prior(
    c: Collected, blur: float, image_features: bool = False, flip: bool = False, steps: int = 200,
    lr: float = 0.05, weight_decay: float = 1e-3, seed: int = 0,
) -> SaliencyPrior:
    """Fit a prior (and its gate) by the training loss (5 KLD - 2 CC - 1 SIM) on the collected
    images, network frozen; minibatches of 64, Adam."""
    g = torch.Generator().manual_seed(seed)
    prior = SaliencyPrior(c.feats.shape[1] if image_features else 0)
    opt = torch.optim.Adam(prior.parameters(), lr=lr)
    n = len(c.names)
    maps = predict(c, blur, None, flip)  # the network side is fixed: blur once, not every step
    for _ in range(steps):
        idx = torch.randint(0, n, (min(64, n),), generator=g)
        pred = prior(maps[idx], [c.boxes[int(i)] for i in idx], c.feats[idx])
        loss = losses.saliency_loss(pred, c.gt[idx])
        if prior.gate_image is not None:
            loss = loss + weight_decay * prior.gate_image.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return prior.eval().requires_grad_(False)


def score(c: Collected, pred: torch.Tensor) -> dict[str, float]:
    """Mean CC, SIM and KLD (`sspnet.metrics`) of predicted maps against the human maps, each cut
    to its image box."""
    rows = {"cc": [], "sim": [], "kld": []}
    for i, b in enumerate(c.boxes):
        p = pred[i, 0, b.top : b.top + b.height, b.left : b.left + b.width].numpy()
        t = c.gt[i, 0, b.top : b.top + b.height, b.left : b.left + b.width].numpy()
        rows["cc"].append(metrics.cc(p, t))
        rows["sim"].append(metrics.sim(p, t))
        rows["kld"].append(metrics.kld(p, t))
    return {k: float(np.mean(v)) for k, v in rows.items()}


def with_prior(model: SSPNet, blur: float, prior: SaliencyPrior | None) -> SSPNet:
    """A copy of the model's config and weights with this output stage (blur and prior) in it."""
    config = replace(model.config, output_blur=float(blur), prior=prior is not None,
                     prior_image_features=prior is not None and prior.gate_image is not None)
    new = SSPNet(config)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("prior.")}
    new.load_state_dict(state, strict=False)
    if prior is not None:
        new.prior.load_state_dict(prior.state_dict())
    new.info = dict(getattr(model, "info", {}))  # type: ignore[attr-defined]
    return new.to(model.device).eval()


def fit_output_stage(
    model: SSPNet, collected: Collected, blurs: Sequence[float], use_prior: bool = True,
    image_features: bool = False, steps: int = 300,
) -> tuple[SSPNet, dict]:
    """The model with the output blur (and fitted prior) that maximise mean CC on `collected`.

    Returns the new model and a report: every blur tried with its CC/SIM/KLD, the choice."""
    tried = []
    best = None
    for blur in tqdm(blurs, desc="fitting per output blur"):
        prior = fit_prior(collected, blur, image_features, steps=steps) if use_prior else None
        s = score(collected, predict(collected, blur, prior))
        tried.append({"blur": float(blur), **s})
        if best is None or s["cc"] > best[0]:
            best = (s["cc"], float(blur), prior)
    assert best is not None, "no blur to try"
    _, blur, prior = best
    report = {"tried": tried, "output_blur": blur, "prior": prior is not None, "images": len(collected.names)}
    if prior is not None:
        report |= {"mu": prior.mu.tolist(), "sigma": prior.log_sigma.exp().tolist(),
                   "gate_bias": float(prior.gate_bias), "gate_stats": prior.gate_stats.tolist()}
    return with_prior(model, blur, prior), report
