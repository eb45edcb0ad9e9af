"""Differentiable training losses of SSPNet (paper eq. 3-9).

Maps are tensors of shape (B, 1, H, W) or (B, H, W), non-negative (sigmoid outputs,
eq. 1/2 ground truth). Every term is computed per sample and averaged over the batch.
Reductions run in float32 even under bf16/fp16 autocast (inputs are cast with
``.float()``; autocast does not lower sums, logs or divisions).

Unlike the evaluation metrics (``sspnet.metrics``, MIT conventions), the losses follow
the paper's equations: inside KLD and SIM the maps are only normalised to sum 1, with no
min-max scaling, and eps = 1e-8 (paper eq. 4; MATLAB's 2.2e-16 would vanish next to
float32 map values). That eps makes KLD of two identical maps about log(1 - N eps),
i.e. -1e-3 at 384x288, not 0: a constant offset, harmless for optimisation.

Degenerate maps (an all-zero ground-truth SSM means "no shift"; a prediction can also be
all-zero after the ReLU of eq. 2). Losses and their gradients stay finite:

- sum normalisation is ``x / max(sum(x), eps) + (1 - sum(x) / max(sum(x), eps)) / N``:
  exactly ``x / sum(x)`` for any map with sum >= eps, and below that the missing mass
  is spread uniformly, so an all-zero map becomes the uniform distribution 1/N (the
  same convention as the metrics). So KLD(0, 0) ~ 0, SIM(0, 0) = 1, and an all-zero
  ground truth pulls the prediction towards a flat map, which the MSE term of L_s then
  pulls to zero.
- CC uses a safe std, ``cov / (sqrt(var_p + eps) * sqrt(var_g + eps))``: 0 when either
  map is constant (correlation with a flat map is undefined), no division by 0 or
  infinite derivative of sqrt at 0. Its relative bias is about eps / (2 var), below 1e-4
  for maps whose std exceeds 1e-2 of their [0, 1] range.
- Gradients are finite but, as for any scale-free loss, grow like 1 / sum(pred): at an
  exactly all-zero prediction they are of order 1 / eps. SSPNet never feeds one back:
  sigmoid outputs are positive and the ReLU of eq. 2 passes no gradient where SSM = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

EPS: float = 1e-8  # paper eq. 4


@dataclass(frozen=True)
class LossWeights:
    """Weights of eq. 3, 8 and 9; the defaults are the paper's.

    L_map = kld*KLD + cc*CC + sim*SIM               (lambda_1..3 = 5, -2, -1)
    L_s   = shift_map*L_map(s) + shift_mse*MSE(s)   (alpha = 2, beta = 0.5)
    L     = distorted*L_map(d) + pristine*L_map(r) + shift*L_s   (gamma_1..3 = 0.5, 0.5, 1)
    """

    kld: float = 5.0
    cc: float = -2.0
    sim: float = -1.0
    shift_map: float = 2.0
    shift_mse: float = 0.5
    distorted: float = 0.5
    pristine: float = 0.5
    shift: float = 1.0

    @property
    def map_weights(self) -> tuple[float, float, float]:
        return (self.kld, self.cc, self.sim)


def _flatten(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N) float32 views of a batch of single-channel maps; shape mistakes fail loudly."""
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt differ in shape: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    if pred.ndim == 4 and pred.shape[1] != 1:
        raise ValueError(f"expected one channel, got shape {tuple(pred.shape)}")
    if pred.ndim not in (3, 4):
        raise ValueError(f"expected (B, 1, H, W) or (B, H, W), got shape {tuple(pred.shape)}")
    return pred.float().flatten(1), gt.float().flatten(1)


def _distribution(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Rows of x normalised to sum 1; a row summing below eps is topped up with uniform mass."""
    total = x.sum(dim=1, keepdim=True)
    denom = total.clamp_min(eps)
    return x / denom + (1.0 - total / denom) / x.shape[1]


def _kld(p: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    p, g = _distribution(p, eps), _distribution(g, eps)
    return (g * torch.log(eps + g / (eps + p))).sum(dim=1)


def _cc(p: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    a = p - p.mean(dim=1, keepdim=True)
    b = g - g.mean(dim=1, keepdim=True)
    var_a = (a * a).mean(dim=1)
    var_b = (b * b).mean(dim=1)
    cov = (a * b).mean(dim=1)
    return cov / (torch.sqrt(var_a + eps) * torch.sqrt(var_b + eps))


def _sim(p: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.minimum(_distribution(p, eps), _distribution(g, eps)).sum(dim=1)


def kld_loss(pred: torch.Tensor, gt: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Eq. 4: KLD = sum_i g_i log(eps + g_i / (eps + p_i)) on sum-1 maps, batch mean (minimise)."""
    p, g = _flatten(pred, gt)
    return _kld(p, g, eps).mean()


def cc_loss(pred: torch.Tensor, gt: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Eq. 5: Pearson CC = cov(p, g) / (std(p) std(g)), batch mean. Returns CC: weight it negatively."""
    p, g = _flatten(pred, gt)
    return _cc(p, g, eps).mean()


def sim_loss(pred: torch.Tensor, gt: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Eq. 6: SIM = sum_i min(p_i, g_i) on sum-1 maps (no min-max), batch mean. Returns SIM."""
    p, g = _flatten(pred, gt)
    return _sim(p, g, eps).mean()


def _map_terms(pred: torch.Tensor, gt: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p, g = _flatten(pred, gt)
    return _kld(p, g, eps).mean(), _cc(p, g, eps).mean(), _sim(p, g, eps).mean()


def map_loss(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weights: tuple[float, float, float] = (5.0, -2.0, -1.0),
    eps: float = EPS,
) -> torch.Tensor:
    """Eq. 3/7: L_map = 5 KLD - 2 CC - 1 SIM (weights = lambda_1..3), minimised."""
    kld, cc, sim = _map_terms(pred, gt, eps)
    return weights[0] * kld + weights[1] * cc + weights[2] * sim


def saliency_loss(pred: torch.Tensor, gt: torch.Tensor, weights: LossWeights = LossWeights()) -> torch.Tensor:
    """L_map alone: for training a saliency branch on single images with human maps."""
    return map_loss(pred, gt, weights.map_weights)


def _mse(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    p, g = _flatten(pred, gt)
    return ((p - g) ** 2).mean(dim=1).mean()


def shift_loss(pred_ssm: torch.Tensor, gt_ssm: torch.Tensor, weights: LossWeights = LossWeights()) -> torch.Tensor:
    """Eq. 8: L_s = 2 L_map + 0.5 MSE; the MSE keeps the SSM's absolute level (L_map is scale-free)."""
    return weights.shift_map * map_loss(pred_ssm, gt_ssm, weights.map_weights) + weights.shift_mse * _mse(
        pred_ssm, gt_ssm
    )


def total_loss(
    sm_d: torch.Tensor,
    gt_d: torch.Tensor,
    sm_r: torch.Tensor,
    gt_r: torch.Tensor,
    ssm: torch.Tensor,
    gt_ssm: torch.Tensor,
    weights: LossWeights = LossWeights(),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 9: L = 0.5 L_map(d) + 0.5 L_map(r) + 1 L_s, and its parts for logging.

    The parts are detached 0-d tensors (no device sync here; call ``float()`` to log):
    ``total``, ``map_d``, ``map_r``, ``shift`` and the raw terms ``kld_*``, ``cc_*``,
    ``sim_*`` for ``*`` in d, r, s, and ``mse_s``.
    """
    w = weights.map_weights
    parts: dict[str, torch.Tensor] = {}
    maps: dict[str, torch.Tensor] = {}
    for key, pred, gt in (("d", sm_d, gt_d), ("r", sm_r, gt_r), ("s", ssm, gt_ssm)):
        kld, cc, sim = _map_terms(pred, gt, EPS)
        maps[key] = w[0] * kld + w[1] * cc + w[2] * sim
        parts[f"kld_{key}"], parts[f"cc_{key}"], parts[f"sim_{key}"] = kld, cc, sim
    mse = _mse(ssm, gt_ssm)
    shift = weights.shift_map * maps["s"] + weights.shift_mse * mse
    loss = weights.distorted * maps["d"] + weights.pristine * maps["r"] + weights.shift * shift
    parts.update(total=loss, map_d=maps["d"], map_r=maps["r"], shift=shift, mse_s=mse)
    return loss, {k: v.detach() for k, v in parts.items()}
