"""sspnet.training.losses: values against the metrics / formulas, degenerate maps, batching, weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sspnet import metrics
from sspnet.training import losses

torch.set_num_threads(1)
SHAPE = (2, 1, 12, 16)


def batch(seed: int, shape: tuple[int, ...] = SHAPE) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(shape, generator=g) ** 3
    pred = (gt + 0.3 * torch.rand(shape, generator=g)).clamp_min(0)
    return pred, gt


def np_kld(p: np.ndarray, g: np.ndarray, eps: float = 1e-8) -> float:
    p, g = p / p.sum(), g / g.sum()
    return float(np.sum(g * np.log(eps + g / (eps + p))))


@pytest.mark.parametrize("seed", range(4))
def test_terms_match_metrics_per_sample(seed: int) -> None:
    pred, gt = batch(seed)
    for b in range(SHAPE[0]):
        p, g = pred[b : b + 1], gt[b : b + 1]
        pn, gn = p[0, 0].double().numpy(), g[0, 0].double().numpy()
        assert losses.cc_loss(p, g).item() == pytest.approx(metrics.cc(pn, gn), abs=1e-5)
        assert losses.kld_loss(p, g).item() == pytest.approx(np_kld(pn, gn), abs=1e-5)
        # loss KLD differs from the MIT metric only by eps (1e-8 vs 2.2e-16)
        assert losses.kld_loss(p, g).item() == pytest.approx(metrics.kld(pn, gn), abs=1e-3)
        # SIM loss has no min-max step: equal to the MIT metric when both minima are 0
        p0, g0 = p.clone(), g.clone()
        p0[..., 0, 0] = 0
        g0[..., 0, 0] = 0
        pn0, gn0 = p0[0, 0].double().numpy(), g0[0, 0].double().numpy()
        assert losses.sim_loss(p0, g0).item() == pytest.approx(metrics.sim(pn0, gn0), abs=1e-5)
        assert losses.sim_loss(p, g).item() == pytest.approx(np.minimum(pn / pn.sum(), gn / gn.sum()).sum(), abs=1e-5)


def test_batch_mean_and_shapes() -> None:
    pred, gt = batch(1, (3, 1, 12, 16))
    for fn in (losses.kld_loss, losses.cc_loss, losses.sim_loss, losses.map_loss, losses.shift_loss):
        whole = fn(pred, gt)
        per = torch.stack([fn(pred[i : i + 1], gt[i : i + 1]) for i in range(3)])
        assert whole.item() == pytest.approx(per.mean().item(), abs=1e-5)
        assert fn(pred[:, 0], gt[:, 0]).item() == pytest.approx(whole.item(), abs=1e-6)  # (B, H, W)


def test_shape_errors() -> None:
    pred, gt = batch(0)
    with pytest.raises(ValueError):
        losses.map_loss(pred, gt[:, :, :-1])
    with pytest.raises(ValueError):
        losses.map_loss(pred.expand(2, 3, 12, 16), gt.expand(2, 3, 12, 16))
    with pytest.raises(ValueError):
        losses.map_loss(pred[0, 0], gt[0, 0])


def test_weights() -> None:
    pred, gt = batch(2)
    kld, cc, sim = losses.kld_loss(pred, gt), losses.cc_loss(pred, gt), losses.sim_loss(pred, gt)
    mse = torch.mean((pred - gt) ** 2)
    lmap = 5 * kld - 2 * cc - sim
    assert losses.map_loss(pred, gt).item() == pytest.approx(lmap.item(), rel=1e-6)
    assert losses.saliency_loss(pred, gt).item() == pytest.approx(lmap.item(), rel=1e-6)
    assert losses.map_loss(pred, gt, (1.0, 0.0, 0.0)).item() == pytest.approx(kld.item(), rel=1e-6)
    assert losses.shift_loss(pred, gt).item() == pytest.approx((2 * lmap + 0.5 * mse).item(), rel=1e-6)

    d, gd = batch(3)
    r, gr = batch(4)
    total, parts = losses.total_loss(d, gd, r, gr, pred, gt)
    expected = 0.5 * losses.map_loss(d, gd) + 0.5 * losses.map_loss(r, gr) + losses.shift_loss(pred, gt)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["total"].item() == pytest.approx(total.item())
    assert parts["shift"].item() == pytest.approx(losses.shift_loss(pred, gt).item(), rel=1e-6)
    assert parts["cc_r"].item() == pytest.approx(losses.cc_loss(r, gr).item(), rel=1e-6)
    assert parts["mse_s"].item() == pytest.approx(mse.item(), rel=1e-6)
    assert not any(v.requires_grad for v in parts.values())

    w = losses.LossWeights(distorted=0.0, pristine=0.0, shift=1.0, shift_map=0.0, shift_mse=1.0)
    total_w, _ = losses.total_loss(d, gd, r, gr, pred, gt, weights=w)
    assert total_w.item() == pytest.approx(mse.item(), rel=1e-6)
    with pytest.raises(AttributeError):
        w.kld = 1.0  # frozen


def _grads_finite(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    pred = pred.clone().requires_grad_(True)
    total, parts = losses.total_loss(pred, gt, pred, gt, pred, gt)
    total.backward()
    assert torch.isfinite(total)
    assert all(torch.isfinite(v) for v in parts.values())
    assert torch.isfinite(pred.grad).all()
    return total


@pytest.mark.parametrize("case", ["zero_gt", "zero_pred", "both_zero", "const_pred", "const_gt"])
def test_degenerate_maps_finite_loss_and_grad(case: str) -> None:
    pred, gt = batch(5)
    zero = torch.zeros_like(gt)
    pred, gt = {
        "zero_gt": (pred, zero),
        "zero_pred": (zero, gt),
        "both_zero": (zero, zero),
        "const_pred": (torch.full_like(pred, 0.3), gt),
        "const_gt": (pred, torch.full_like(gt, 0.3)),
    }[case]
    _grads_finite(pred, gt)


def test_degenerate_conventions() -> None:
    """All-zero maps are uniform distributions; CC with a constant map is 0."""
    pred, gt = batch(6)
    zero = torch.zeros_like(gt)
    n = gt[0].numel()
    # eq. 4's eps biases KLD of identical maps to about log(1 - N eps) ~ -N eps
    assert losses.kld_loss(zero, zero).item() == pytest.approx(np.log1p(-n * 1e-8), abs=1e-7)
    assert losses.sim_loss(zero, zero).item() == pytest.approx(1.0, abs=1e-6)
    assert losses.cc_loss(zero, zero).item() == 0.0
    assert losses.cc_loss(pred, zero).item() == 0.0
    const = torch.full_like(gt, 0.5)
    assert losses.kld_loss(const, zero).item() == pytest.approx(losses.kld_loss(zero, zero).item(), abs=1e-7)
    assert losses.sim_loss(pred, zero).item() == pytest.approx(losses.sim_loss(pred, const).item(), abs=1e-6)
    # a flat, zero prediction is the optimum of the shift loss for "no shift"
    assert losses.shift_loss(zero, zero).item() < losses.shift_loss(pred, zero).item()


def test_float32_reductions_under_bf16() -> None:
    pred, gt = batch(7)
    ref = losses.map_loss(pred, gt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = losses.map_loss(pred.bfloat16(), gt.bfloat16())
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(ref.item(), abs=0.05)


def test_gradient_improves_prediction() -> None:
    """A few gradient steps on the logits reduce the loss: the loss is usable for training."""
    _, gt = batch(8)
    logits = torch.zeros_like(gt, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    first = None
    for _ in range(20):
        opt.zero_grad()
        loss = losses.shift_loss(torch.sigmoid(logits), gt)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first
