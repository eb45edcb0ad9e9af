"""The paper's training protocol (V-B): Adam, step decay, early stopping, best checkpoint kept.

Two modes share one loop:
- `saliency`: single images with human maps train the shared encoder and the pristine decoder
  (eq. 7, L_map); the distorted decoder is then tied to it (the intuitive approach, dual form).
- `shift`: pristine/distorted pairs train everything with the full eq. 9 loss.

Resumable: a training state (model, optimiser, RNG-free schedule position) is written every
`save_every` steps with `torch.save` of tensors and numbers only, and read back with
`weights_only=True`. Shuffling and flips are derived from (seed, epoch, step), so a resumed run
replays exactly the batches an uninterrupted run would have seen.

Data-parallel under `torchrun` (see `sspnet.training.distributed`): each process trains on its shard of
the same epoch order with batches of `batch_size` (so the effective batch is batch_size x the
number of processes), DDP averages the gradients, the validation loss is reduced over all
processes so early stopping is decided identically everywhere, and rank 0 alone writes files.
"""
from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from sspnet.device import autocast
from sspnet.files.outputs import write_bytes_atomic
from sspnet.net.model import SSPNet
from sspnet.preprocess import boxes_from_masks
from sspnet.training import distributed, losses
from sspnet.zoo import model_from_checkpoint, save_checkpoint

MODES = ("saliency", "shift")


@dataclass
class TrainConfig:
    """Defaults are the paper's protocol."""

    mode: str = "saliency"
    epochs: int = 50
    lr: float = 5e-5
    lr_step: int = 10  # epochs between x lr_gamma
    lr_gamma: float = 0.1
    batch_size: int = 4
    patience: int = 5  # epochs without a better validation loss before stopping
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    augment: bool = True  # horizontal flip of images and maps together
    save_every: int = 50  # steps between resumable training states
    max_steps_per_epoch: int | None = None  # caps an epoch (smoke tests, quick runs)
    weight_decay: float = 0.0
    freeze_stem: bool = False  # fix the backbone up to its stride-8 tap (faster on a CPU)
    freeze_backbone: bool = False  # fix the whole backbone (only the encoder and decoders learn)
    grey_prob: float = 0.0  # chance to show a training image in greyscale (robustness to B/W photos)
    colour_jitter: float = 0.0  # brightness, contrast and saturation each scaled by U(1 - j, 1 + j)
    # Distillation (saliency mode): trained checkpoints whose mean map is mixed into each target,
    # `distil` its share of the probability mass (the human map keeps the rest). Validation and
    # early stopping stay on human maps alone.
    teachers: tuple[str, ...] = ()
    distil: float = 0.5
    time_limit: float = 0.0  # wall seconds after which this run (or its resumption) starts no new epoch; 0 = none
    extra: dict = field(default_factory=dict)  # recorded in the checkpoint's info

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got '{self.mode}'")
        if not 0.0 <= self.colour_jitter < 1.0:
            raise ValueError(f"colour_jitter must be in [0, 1), got {self.colour_jitter}")
        if not 0.0 <= self.distil <= 1.0:
            raise ValueError(f"distil must be in [0, 1], got {self.distil}")
        if self.teachers and self.mode != "saliency":
            raise ValueError("teachers distil saliency maps: use them in saliency mode")
        self.teachers = tuple(str(t) for t in self.teachers)


@dataclass
class FitResult:
    best_path: Path
    best_epoch: int
    best_val_loss: float
    history: list[dict]
    stopped_early: bool


def _flip(batch: dict, mask: torch.Tensor) -> dict:
    """Mirror the selected samples' images and maps together (keeps maps aligned)."""
    if not mask.any():
        return batch
    out = dict(batch)
    for k, v in batch.items():
        if torch.is_tensor(v) and v.ndim == 4:
            v = v.clone()
            v[mask] = v[mask].flip(-1)
            out[k] = v
    return out


def _greyscale(batch: dict, mask: torch.Tensor) -> dict:
    """Replace the selected images by their luma (ITU-R BT.601), maps unchanged."""
    if not mask.any():
        return batch
    out = dict(batch)
    for k in ("image", "pristine", "distorted"):
        if k in batch:
            v = batch[k].clone()
            y = (v[mask] * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            v[mask] = y.expand(-1, 3, -1, -1)
            out[k] = v
    return out


def colour_jitter(batch: dict, strength: float, g: torch.Generator) -> dict:
    """Scale each sample's brightness, contrast (around its mean grey) and saturation (around its
    luma) by factors drawn from U(1 - strength, 1 + strength), clipped to [0, 1]; maps unchanged.
    A pristine/distorted pair gets the same factors, so the distortion between them is kept.
    Why: where people look should not hinge on a camera's exposure or colour rendering."""
    keys = [k for k in ("image", "pristine", "distorted") if k in batch]
    if strength <= 0 or not keys:
        return batch
    b = batch[keys[0]].shape[0]
    f = 1.0 + strength * (2.0 * torch.rand(3, b, 1, 1, 1, generator=g) - 1.0)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    out = dict(batch)
    for k in keys:
        x = batch[k] * f[0]
        mean_grey = (x * luma).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
        x = (x - mean_grey) * f[1] + mean_grey
        grey = (x * luma).sum(1, keepdim=True)
        out[k] = ((x - grey) * f[2] + grey).clamp_(0.0, 1.0)
    return out


def _unit_mass(m: torch.Tensor) -> torch.Tensor:
    return m / m.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)


def load_teacher(path: str, student_input: tuple[int, int], device: torch.device) -> SSPNet:
    """A trained checkpoint set up to label the student's canvases: frozen, and looking at each
    canvas resized to its own training canvas, mirrored and not (its test-time views)."""
    teacher = model_from_checkpoint(path)
    scale = teacher.config.input_size[1] / student_input[1]
    teacher.config = replace(teacher.config, flip_saliency=True, saliency_scales=(scale,))
    teacher.requires_grad_(False)
    return teacher.to(device).eval()


@torch.no_grad()
def distilled_target(human: torch.Tensor, x: torch.Tensor, boxes, valid: torch.Tensor | None,
                     teachers: Sequence[SSPNet], share: float) -> torch.Tensor:
    """(1 - share) of the human map's mass plus `share` of the teachers' mean map's (each made a
    distribution over the image's own area first), scaled to max 1 as human maps are. Why: a
    larger network's map carries what 15 observers' fixations only sample, and the mixture keeps
    the student anchored to where people did look."""
    maps = torch.stack([t.saliency(x, "r", boxes, tta=True).float() for t in teachers]).mean(0)
    if valid is not None:
        maps = maps * valid.to(maps.dtype)
    mixed = (1.0 - share) * _unit_mass(human.float()) + share * _unit_mass(maps)
    return mixed / mixed.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)


def step_loss(model: SSPNet, batch: dict, mode: str, device: torch.device,
          teachers: Sequence[SSPNet] = (), share: float = 0.0) -> tuple[torch.Tensor, dict]:
    if mode == "saliency":
        x = batch["image"].to(device, non_blocking=True)
        gt = batch["saliency"].to(device, non_blocking=True)
        boxes = boxes_from_masks(batch["valid"]) if "valid" in batch else None
        if teachers:
            valid = batch["valid"].to(device, non_blocking=True) if "valid" in batch else None
            gt = distilled_target(gt, x, boxes, valid, teachers, share)
        loss = losses.saliency_loss(model.saliency(x, "r", boxes), gt)
        return loss, {"loss": float(loss.detach())}
    p = batch["pristine"].to(device, non_blocking=True)
    d = batch["distorted"].to(device, non_blocking=True)
    out = model(p, d, boxes_from_masks(batch["valid"]) if "valid" in batch else None)
    gt = {k: batch[k].to(device, non_blocking=True) for k in ("sm_d", "sm_r", "ssm")}
    loss, parts = losses.total_loss(out["sm_d"], gt["sm_d"], out["sm_r"], gt["sm_r"], out["ssm"], gt["ssm"])
    return loss, {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}}


@torch.no_grad()
def validation_loss(model: SSPNet, loader: DataLoader, mode: str, device: torch.device) -> float:
    model.eval()
    total, n = 0.0, 0
    for batch in loader:
        with autocast(device):
            loss, _ = step_loss(model, batch, mode, device)
        b = next(v for v in batch.values() if torch.is_tensor(v)).shape[0]
        total += float(loss) * b
        n += b
    return total / max(n, 1)


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


class _Step(nn.Module):
    """One batch's loss as a module's forward: DDP averages gradients only for work done inside
    the forward of the module it wraps, and `step_loss` calls `saliency` or `forward` as the mode needs."""

    def __init__(self, model: SSPNet, mode: str, device: torch.device,
                 teachers: Sequence[SSPNet] = (), share: float = 0.0) -> None:
        super().__init__()
        self.model, self.mode, self.dev = model, mode, device
        self.teachers, self.share = list(teachers), share  # a plain list: not submodules, never trained or saved

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        return step_loss(self.model, batch, self.mode, self.dev, self.teachers, self.share)


def _write_json(path: Path, obj: object) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=1).encode())


def _read_state(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def fit(
    model: SSPNet,
    train_set: Dataset,
    val_set: Dataset,
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    on_epoch: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train with early stopping; resumes from `out_dir/state.pt` when it exists.

    Under `torchrun` every rank calls this with the same arguments and gets the same result; a
    resumed run must use the same number of processes unless it stopped at an epoch boundary.
    """
    for name, ds in (("training", train_set), ("validation", val_set)):
        if len(ds) == 0:  # an empty validation set would score 0.0 and silently pick epoch 1
            raise ValueError(f"the {name} set is empty: early stopping needs images in both training and "
                             "validation (use more images or another split)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ctx = distributed.context(cfg.device)
    device = ctx.device
    say = tqdm.write if ctx.is_main else (lambda _msg: None)
    torch.manual_seed(cfg.seed)
    if cfg.freeze_backbone:
        model.backbone.freeze_trunk()
    elif cfg.freeze_stem:
        model.backbone.freeze_stem()
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    state_path, best_path = out / "state.pt", out / "best.safetensors"
    start_epoch, start_step, best, best_epoch, bad, history = 0, 0, math.inf, -1, 0, []
    partial = (0.0, 0, 0.0)  # (loss sum, steps, seconds) of the interrupted epoch's done steps, all ranks
    st = distributed.broadcast_object(_read_state(state_path) if ctx.is_main else None, ctx)
    if st is not None:
        if st["step"] and int(st.get("world_size", 1)) != ctx.world_size:
            raise ValueError(f"{state_path} stopped inside epoch {st['epoch'] + 1} of a run of "
                             f"{st.get('world_size', 1)} process(es); resume it with that many, not {ctx.world_size}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        start_epoch, start_step = st["epoch"], st["step"]
        best, best_epoch, bad = st["best"], st["best_epoch"], st["bad"]
        history = json.loads(st["history"])
        partial = (float(st.get("running", 0.0)), int(st.get("seen", 0)), float(st.get("seconds", 0.0)))
        say(f"resuming from epoch {start_epoch + 1}, step {start_step}")
    del st
    teachers = [load_teacher(t, model.config.input_size, device) for t in cfg.teachers]
    step_fn: nn.Module = _Step(model, cfg.mode, device, teachers, cfg.distil)
    if ctx.active:  # saliency mode never touches decoder_d: DDP must be told that some parameters go unused
        step_fn = DistributedDataParallel(step_fn, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=cfg.mode == "saliency")

    def save_state(epoch: int, step: int, running: float = 0.0, seen: int = 0, seconds: float = 0.0) -> None:
        running, seen = distributed.all_reduce([running, seen], ctx)  # every rank's steps of this epoch
        (seconds,) = distributed.all_reduce([seconds], ctx, op="max")
        with distributed.main_writes(ctx) as write:
            if write:
                st = {
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "step": step,
                    "best": best, "best_epoch": best_epoch, "bad": bad, "history": json.dumps(history),
                    "running": running, "seen": int(seen), "seconds": seconds, "world_size": ctx.world_size,
                }
                buf = io.BytesIO()
                torch.save(st, buf)
                write_bytes_atomic(state_path, buf.getbuffer())

    val_part = Subset(val_set, distributed.strided(len(val_set), ctx.rank, ctx.world_size)) if ctx.active else val_set
    val_loader = DataLoader(val_part, batch_size=cfg.batch_size, num_workers=cfg.workers)
    steps_total = math.ceil(math.ceil(len(train_set) / ctx.world_size) / cfg.batch_size)
    if cfg.max_steps_per_epoch:
        steps_total = min(steps_total, cfg.max_steps_per_epoch)
    stopped_early = False
    info = {"train": asdict(cfg), "n_train": len(train_set), "n_val": len(val_set)}
    if ctx.active:
        info["world_size"] = ctx.world_size
    for epoch in range(start_epoch, cfg.epochs):
        if bad >= cfg.patience:
            stopped_early = True
            break
        if cfg.time_limit and epoch > start_epoch:  # every rank must stop at the same epoch: the slowest decides
            (spent,) = distributed.all_reduce([time.perf_counter() - started], ctx, op="max")
            if spent >= cfg.time_limit:
                say(f"time limit: {spent:.0f} s >= {cfg.time_limit:.0f} s, no epoch {epoch + 1}")
                break
        for group in opt.param_groups:
            group["lr"] = cfg.lr * cfg.lr_gamma ** (epoch // cfg.lr_step)
        order = distributed.shard(_epoch_order(len(train_set), cfg.seed, epoch), ctx.rank, ctx.world_size)
        skip = start_step * cfg.batch_size if epoch == start_epoch else 0
        loader = DataLoader(
            Subset(train_set, order[skip : steps_total * cfg.batch_size]),
            batch_size=cfg.batch_size, num_workers=cfg.workers, drop_last=False,
            persistent_workers=False, pin_memory=device.type == "cuda",
        )
        step_fn.train()
        first = start_step if epoch == start_epoch else 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", initial=first, total=steps_total, leave=False,
                   disable=not ctx.is_main)
        t0, running, seen, prior = time.perf_counter(), 0.0, 0, 0.0
        if epoch == start_epoch and start_step:  # the epoch's record also counts the steps before the resume
            running, seen, prior = partial if ctx.is_main else (0.0, 0, partial[2])
        for step, batch in enumerate(bar, start=first):
            if cfg.augment:  # flips differ between ranks; rank 0 draws what a single process draws
                g = torch.Generator().manual_seed(cfg.seed * 7_919 + epoch * 100_003 + step + ctx.rank * 1_000_003)
                b = next(v for v in batch.values() if torch.is_tensor(v)).shape[0]
                batch = _flip(batch, torch.rand(b, generator=g) < 0.5)
                if cfg.grey_prob > 0:
                    batch = _greyscale(batch, torch.rand(b, generator=g) < cfg.grey_prob)
                if cfg.colour_jitter > 0:
                    batch = colour_jitter(batch, cfg.colour_jitter, g)
            with autocast(device):
                loss, parts = step_fn(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += parts["loss"]
            seen += 1
            bar.set_postfix(loss=f"{running / seen:.3f}")
            if (step + 1) % cfg.save_every == 0 and step + 1 < steps_total:
                save_state(epoch, step + 1, running, seen, prior + time.perf_counter() - t0)
        distributed.sync_buffers(model, ctx)  # one set of BatchNorm statistics to validate and save
        running, seen = distributed.all_reduce([running, seen], ctx)
        (train_time,) = distributed.all_reduce([prior + time.perf_counter() - t0], ctx, op="max")
        val = validation_loss(model, val_loader, cfg.mode, device)
        if ctx.active:  # each rank scored its share: the mean over all images, the same on every rank
            total, n = distributed.all_reduce([val * len(val_part), len(val_part)], ctx)
            val = total / max(n, 1)
        record = {
            "epoch": epoch + 1, "train_loss": running / max(seen, 1), "val_loss": val,
            "lr": opt.param_groups[0]["lr"], "seconds": train_time,
            "images_per_s": seen * cfg.batch_size / max(train_time, 1e-9),
        }
        history.append(record)
        if val < best:
            best, best_epoch, bad = val, epoch + 1, 0
            if cfg.mode == "saliency":
                model.tie_decoders()  # on every rank, so all keep identical weights
            best_info = {**info, "best_epoch": best_epoch, "val_loss": best}
            with distributed.main_writes(ctx) as write:
                if write:
                    save_checkpoint(model, best_path, best_info)
                    # the same config and run record, readable without opening the weights
                    _write_json(best_path.with_suffix(".json"), {"config": model.config.to_dict(), "info": best_info})
        else:
            bad += 1
        say(
            f"epoch {epoch + 1}: train {record['train_loss']:.4f}  val {val:.4f}  "
            f"({record['images_per_s']:.1f} img/s){'  *best' if best_epoch == epoch + 1 else ''}"
        )
        if on_epoch:
            on_epoch(record)
        save_state(epoch + 1, 0)
    else:
        stopped_early = bad >= cfg.patience
    with distributed.main_writes(ctx) as write:
        if write:
            _write_json(out / "history.json", history)
    return FitResult(best_path, best_epoch, best, history, stopped_early)
