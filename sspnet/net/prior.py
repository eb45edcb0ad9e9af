"""A learned centre prior mixed into the network's saliency map, with a per-image weight.

Why: people look near the centre of a photo most when nothing in it stands out, and a network
trained on object-rich photos (OSIE, EyeCrowd) is then confidently wrong; the best saliency
models (ML-Net, SAM, DeepGaze, UNISAL) all combine a learned Gaussian prior with the network.
Here the prior is one anisotropic Gaussian laid on each image's own box (not on the
letterboxed canvas), so a portrait or panorama gets the prior of its own frame:

    P(u, v) = exp(-(u - mu_x)^2 / (2 s_x^2) - (v - mu_y)^2 / (2 s_y^2)),  u, v in [-1/2, 1/2]
    SM      = (1 - a) * S + a * peak(S) * P,   a = sigmoid(b + w . f(S) + w_img . g)

f(S) are four statistics of the network map inside the box (mean, standard deviation, peak,
normalised entropy): a flat, diffuse map says "nothing stands out" and raises a. g is the mean
of the deepest token features (optional): what kind of scene it is. Scaling P by the map's peak
keeps the mixture on the map's own scale, so the shift (SM_d - SM_r) of an identical pair is
still exactly zero and maps keep their range.

`centre_weighting` is the other way to use a centre prior, DeepGaze's: the prior as a log-density
added to the network's log-map, i.e. the map *multiplied* by a broad Gaussian on the box. It adds
no mass where the network sees nothing, it only discounts what the network finds near the edges,
where people rarely look in any data set; the additive mixture moves mass to the centre, which
pays on one data set and costs on another (docs/MODEL_CARD.md, leave one data set out).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sspnet.preprocess import Box

__all__ = ["N_MAP_STATS", "SaliencyPrior", "box_gaussian", "box_mask", "centre_weighting", "map_statistics"]

N_MAP_STATS = 4
_EPS = 1e-8


def box_mask(boxes: Sequence[Box] | None, batch: int, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(B, 1, H, W) float mask of each image's box on the canvas (all ones without boxes)."""
    h, w = size
    mask = torch.ones(batch, 1, h, w, device=device)
    if boxes is None:
        return mask
    mask.zero_()
    for i, b in enumerate(boxes):
        mask[i, :, b.top : b.top + b.height, b.left : b.left + b.width] = 1.0
    return mask


def box_gaussian(
    boxes: Sequence[Box] | None, batch: int, size: tuple[int, int], device: torch.device,
    mu: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, 1, H, W) Gaussian laid on each image's box, peak 1 at `mu` (x, y, fractions of the box
    from its middle), `sigma` (x, y) fractions of the box's width and height, zero outside it
    (`mask`: the boxes' `box_mask`, when the caller has it already)."""
    h, w = size
    boxes = list(boxes) if boxes is not None else [Box(0, 0, h, w)] * batch
    ys = torch.arange(h, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5
    sx, sy = sigma.float()
    maps: dict[Box, torch.Tensor] = {}  # one map per distinct box (a codec's candidates share one)
    for b in dict.fromkeys(boxes):  # separable: two 1-D Gaussians, each zero outside the box
        u = (xs - b.left) / b.width - 0.5 - mu[0]
        v = (ys - b.top) / b.height - 0.5 - mu[1]
        gx = torch.exp(-(u**2) / (2 * sx**2)) * ((xs > b.left) & (xs < b.left + b.width))
        gy = torch.exp(-(v**2) / (2 * sy**2)) * ((ys > b.top) & (ys < b.top + b.height))
        maps[b] = gy[:, None] * gx[None, :]
    out = torch.stack([maps[b] for b in boxes])[:, None]
    return out if mask is None else out * mask


def centre_weighting(sm: torch.Tensor, boxes: Sequence[Box] | None, sigma: float) -> torch.Tensor:
    """The maps multiplied by an isotropic Gaussian on each image's box (sigma: fraction of the
    box's width and height; peak 1 at the middle; <= 0 leaves the maps as they are).

        SM(u, v) = S(u, v) * exp(-(u^2 + v^2) / (2 sigma^2)),  u, v in [-1/2, 1/2] across the box

    A log-density centre bias (DeepGaze): log SM = log S + log P. It is deterministic per box, so
    the SSM of an identical pair stays exactly zero, and values only shrink (maps stay in [0, 1])."""
    if sigma <= 0:
        return sm
    s = torch.tensor([sigma, sigma])
    g = box_gaussian(boxes, sm.shape[0], tuple(sm.shape[-2:]), sm.device, torch.zeros(2), s)
    return sm * g.to(sm.dtype)


def map_statistics(sm: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 4): mean, standard deviation, peak and normalised entropy of each map inside its mask.

    The entropy of the map as a distribution, divided by log(pixels in the box), is 1 for a flat
    map and falls as the mass concentrates: the network's own confidence.
    """
    n = mask.sum((1, 2, 3)).clamp_min(1.0)
    x = sm.float() * mask
    mean = x.sum((1, 2, 3)) / n
    std = (((x - mean.view(-1, 1, 1, 1)) * mask) ** 2).sum((1, 2, 3)).div(n).sqrt()
    peak = x.amax((1, 2, 3))
    p = x / x.sum((1, 2, 3), keepdim=True).clamp_min(_EPS)
    entropy = -(p * (p + _EPS).log()).sum((1, 2, 3)) / n.log().clamp_min(1.0)
    return torch.stack([mean, std, peak, entropy], dim=1)


class SaliencyPrior(nn.Module):
    """The prior and its gate; a handful of parameters fitted on human maps (`sspnet.training.priorfit`)."""

    def __init__(self, image_features: int = 0) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(2))  # (x, y) centre, fraction of the box from its middle
        self.log_sigma = nn.Parameter(torch.log(torch.tensor([0.25, 0.25])))  # fraction of width, height
        self.gate_bias = nn.Parameter(torch.tensor(-2.0))  # a = 0.12 before fitting
        self.gate_stats = nn.Parameter(torch.zeros(N_MAP_STATS))
        self.gate_image = nn.Parameter(torch.zeros(image_features)) if image_features else None

    def prior_map(
        self, boxes: Sequence[Box] | None, batch: int, size: tuple[int, int], device: torch.device,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, 1, H, W) Gaussian on each image's box, peak 1 at its centre, zero outside it
        (`mask`: the boxes' `box_mask`, when the caller has it already)."""
        return box_gaussian(boxes, batch, size, device, self.mu, self.log_sigma.exp(), mask)

    def weight(self, sm: torch.Tensor, mask: torch.Tensor, image_feats: torch.Tensor | None) -> torch.Tensor:
        """(B, 1, 1, 1) mixing weight a in (0, 1) for each map."""
        z = self.gate_bias + map_statistics(sm, mask) @ self.gate_stats
        if self.gate_image is not None and image_feats is not None:
            z = z + image_feats.float() @ self.gate_image
        return torch.sigmoid(z).view(-1, 1, 1, 1)

    def forward(
        self, sm: torch.Tensor, boxes: Sequence[Box] | None = None, image_feats: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, size = sm.shape[0], tuple(sm.shape[-2:])
        mask = box_mask(boxes, b, size, sm.device)
        prior = self.prior_map(boxes, b, size, sm.device, mask)
        a = self.weight(sm, mask, image_feats)
        peak = (sm.float() * mask).amax((1, 2, 3), keepdim=True)
        return (1 - a) * sm.float() + a * peak * prior
