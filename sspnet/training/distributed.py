"""Data-parallel plumbing for training under `torchrun`: which process am I, which shard is mine,
and the few collectives the training loop needs.

Why a module of its own: the loop in `train.py` stays one code path. Outside `torchrun` every
function here is a no-op on a single-process context, so single-process training is unchanged.
Under `torchrun` (RANK and WORLD_SIZE in the environment) the default process group is created
once per process: gloo when training on the CPU, NCCL on CUDA, each rank on GPU LOCAL_RANK.
"""
from __future__ import annotations

import atexit
import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from sspnet.device import resolve_device


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank, world size and the device it trains on."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    active: bool = False  # a process group is up (even of one process, under torchrun)

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and prints."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when `torchrun` (or a compatible launcher) set the ranks in the environment."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_main_process() -> bool:
    """Rank 0, or a single process: the one that writes shared files (split.json, summaries) and prints."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _device_for_rank(device: str | torch.device) -> torch.device:
    """The requested device, with CUDA pinned to this node's GPU LOCAL_RANK."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", _local_rank())
        torch.cuda.set_device(dev)
    return dev


def context(device: str | torch.device = "auto") -> DistContext:
    """This process's context; creates the process group on first use under `torchrun`.

    A group created here lives until the process exits (k-fold training calls this once per
    fold; re-creating the default group on the launcher's store is not reliable), and is
    destroyed at exit so NCCL does not warn about a leaked group. A group the caller created
    is used as it is.
    """
    if not (dist.is_available() and (dist.is_initialized() or launched_by_torchrun())):
        return DistContext(device=resolve_device(device))
    dev = _device_for_rank(device)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        atexit.register(_destroy)
    return DistContext(device=dev, rank=dist.get_rank(), world_size=dist.get_world_size(), active=True)


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(order: Sequence[int], rank: int, world_size: int) -> list[int]:
    """This rank's part of an epoch order, as torch's DistributedSampler cuts it.

    The order is padded by repeating it from the start to a multiple of `world_size`, then
    rank r takes positions r, r + W, r + 2W, ...: shards are disjoint (but for the padding),
    cover the order, and all have the same length, so every rank runs the same number of steps.
    With one process the order comes back unchanged.
    """
    if world_size == 1:
        return list(order)
    n = len(order)
    total = math.ceil(n / world_size) * world_size
    padded = (list(order) * math.ceil(total / max(n, 1)))[:total]
    return padded[rank::world_size]


def strided(n: int, rank: int, world_size: int) -> list[int]:
    """Indices rank, rank + W, ... of range(n), without padding: for sums reduced over ranks
    (the validation loss), where a repeated item would bias the mean."""
    return list(range(rank, n, world_size))


def all_reduce(values: Sequence[float], ctx: DistContext, op: str = "sum") -> list[float]:
    """Element-wise sum or max of `values` over all ranks (float64); the values themselves alone."""
    if not ctx.active:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
    return t.tolist()


def broadcast_object(obj: object, ctx: DistContext) -> object:
    """Rank 0's `obj` on every rank (only rank 0 needs to read a file; no shared disk assumed)."""
    if not ctx.active:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0, device=ctx.device if ctx.device.type == "cuda" else None)
    return box[0]


def sync_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank.

    DDP broadcasts them at the start of each forward, so after an epoch each rank still holds
    the statistics of its own last batch; validation and the saved weights need one set.
    """
    if not ctx.active:
        return
    for buf in module.buffers():
        dist.broadcast(buf.data, src=0)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (e.g. until rank 0 has written a checkpoint)."""
    if ctx.active:
        dist.barrier()


@contextlib.contextmanager
def main_writes(ctx: DistContext) -> Iterator[bool]:
    """`with main_writes(ctx) as write: if write: ...`: rank 0 writes, every rank leaves together,
    so no rank reads a file that rank 0 has not finished."""
    try:
        yield ctx.is_main
    finally:
        barrier(ctx)


__all__ = [
    "DistContext",
    "all_reduce",
    "barrier",
    "broadcast_object",
    "context",
    "is_main_process",
    "launched_by_torchrun",
    "main_writes",
    "shard",
    "strided",
    "sync_buffers",
]
