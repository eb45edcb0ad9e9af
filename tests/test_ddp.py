"""`sspnet.training.train.fit` under torchrun: two CPU processes with gloo on the tiny model and data.

One `torchrun --standalone --nproc-per-node 2` launch runs this file as a script (the worker
at the bottom); each rank trains, crashes and resumes, trains in shift mode, and dumps what it
saw, what it wrote and its final weights into its own folder. The tests read those dumps: the
ranks must end with identical weights, see disjoint shards, and only rank 0 may write the run
folders. The sharding arithmetic and the world-size check are tested in this process.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from helpers_data import TINY_CANVAS, tiny_model_config, write_blob_dataset, write_shift_layout
from safetensors.torch import load_file, save_file
from test_train import crashing_loss

import sspnet.training.train as train_mod
from sspnet.data import SaliencyDataset, ShiftDataset, read_fixation_dataset, read_shift_dataset
from sspnet.net.model import build_model
from sspnet.training import distributed
from sspnet.training.train import TrainConfig, fit

HERE = Path(__file__).resolve()
CRASH_AT = 3  # 0-based training step over run B (2 steps per epoch per rank): epoch 2, step 1
RUN_FILES = {"state.pt", "best.safetensors", "best.json", "history.json"}


def tiny_model(seed: int):
    torch.manual_seed(seed)
    return build_model(tiny_model_config())


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, lr=1e-3, batch_size=2, workers=0, device="cpu", seed=3, patience=5, save_every=1)
    return TrainConfig(**{**base, **kw})


def saliency_sets(root: Path) -> tuple[SaliencyDataset, SaliencyDataset]:
    """6 training images (3 per rank: one batch of 2 and one of 1) and 3 validation images
    (an uneven split over 2 ranks, so the reduced validation loss must weight by images)."""
    items = read_fixation_dataset(root)
    return SaliencyDataset(items[:6], size=TINY_CANVAS), SaliencyDataset(items[6:9], size=TINY_CANVAS)


# ----------------------------------------------------------------------------- in this process


@pytest.mark.parametrize("n,world", [(6, 2), (7, 2), (5, 3), (1, 2), (9, 1)])
def test_shard_is_disjoint_equal_and_covers(n, world) -> None:
    order = list(range(100, 100 + n))
    parts = [distributed.shard(order, r, world) for r in range(world)]
    assert len({len(p) for p in parts}) == 1 and len(parts[0]) == math.ceil(n / world)  # same steps everywhere
    flat = [i for p in parts for i in p]
    assert set(flat) == set(order)  # every image is seen
    assert len(flat) - len(set(flat)) == len(flat) - n  # the only repeats are the padding
    if world == 1:
        assert parts[0] == order  # a single process trains on the order as it is


def test_strided_partitions_without_padding() -> None:
    parts = [distributed.strided(7, r, 3) for r in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(7))


def test_single_process_context_is_inactive(monkeypatch) -> None:
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    ctx = distributed.context("cpu")
    assert (ctx.rank, ctx.world_size, ctx.active, ctx.is_main) == (0, 1, False, True)
    assert distributed.all_reduce([1.5, 2.0], ctx) == [1.5, 2.0]
    assert distributed.broadcast_object({"a": 1}, ctx) == {"a": 1}
    assert distributed.is_main_process()
    monkeypatch.setenv("RANK", "1")  # a launched rank before its process group exists
    assert not distributed.is_main_process()


def test_resume_refuses_another_world_size_mid_epoch(tmp_path, monkeypatch) -> None:
    """A state saved inside an epoch by 2 processes cannot be resumed by 1: the shards differ."""
    monkeypatch.setenv("SSPNET_CACHE", str(tmp_path / "cache"))
    train_set, val_set = saliency_sets(write_blob_dataset(tmp_path / "blobs", n=9))
    real_loss = train_mod.step_loss
    monkeypatch.setattr(train_mod, "step_loss", crashing_loss(real_loss, 1, RuntimeError("simulated kill")))
    with pytest.raises(RuntimeError, match="simulated kill"):
        fit(tiny_model(0), train_set, val_set, tiny_cfg(epochs=1), tmp_path / "run")
    monkeypatch.setattr(train_mod, "step_loss", real_loss)
    state_path = tmp_path / "run" / "state.pt"
    st = torch.load(state_path, weights_only=True)
    assert (st["epoch"], st["step"], st["world_size"]) == (0, 1, 1)
    st["world_size"] = 2
    torch.save(st, state_path)
    with pytest.raises(ValueError, match="of 2 process"):
        fit(tiny_model(0), train_set, val_set, tiny_cfg(epochs=1), tmp_path / "run")


# ----------------------------------------------------------------------------- two gloo ranks


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Launch the worker on 2 ranks once; return {rank: its report} and the work folder."""
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    work = tmp_path_factory.mktemp("ddp")
    data = write_blob_dataset(work / "blobs", n=9)
    write_shift_layout(data, work / "shift", limit=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SSPNET_CACHE": str(work / "cache"), "PYTHONUNBUFFERED": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(HERE),
           str(work)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    reports = {r: json.loads((work / f"rank{r}" / "report.json").read_text()) for r in (0, 1)}
    return work, reports


def _weights(work: Path, rank: int, run: str) -> dict[str, torch.Tensor]:
    return load_file(str(work / f"rank{rank}" / f"{run}.safetensors"))


@pytest.mark.slow  # all share one torchrun launch of two processes (~15 s)
class TestTwoGlooRanks:
    """What the two ranks of the launch dumped."""

    @pytest.mark.parametrize("run", ["a", "b", "shift"])
    def test_both_ranks_end_with_identical_weights(self, ddp_run, run) -> None:
        work, _ = ddp_run
        w0, w1 = _weights(work, 0, run), _weights(work, 1, run)
        assert w0.keys() == w1.keys() and w0
        for k in w0:
            assert torch.equal(w0[k], w1[k]), k  # averaged gradients, rank 0's BatchNorm statistics

    def test_training_moved_the_weights_and_state_matches_ranks(self, ddp_run) -> None:
        work, _ = ddp_run
        init, final = _weights(work, 0, "init"), _weights(work, 0, "a")
        assert any(not torch.equal(init[k], final[k]) for k in init if k.startswith("reduce."))
        state = torch.load(work / "a" / "state.pt", map_location="cpu", weights_only=True)
        assert (state["epoch"], state["step"], state["world_size"]) == (2, 0, 2)
        for k, v in final.items():
            assert torch.equal(state["model"][k], v), k

    def test_ranks_train_on_disjoint_shards_with_equal_steps(self, ddp_run) -> None:
        _, reports = ddp_run
        seen = {r: reports[r]["seen_a"] for r in (0, 1)}  # image names per training step, run A
        assert [len(s) for s in seen.values()] == [4, 4]  # 2 epochs x 2 steps on both ranks
        for epoch in range(2):
            names = {r: [n for step in seen[r][2 * epoch : 2 * epoch + 2] for n in step] for r in (0, 1)}
            assert len(names[0]) == len(names[1]) == 3
            assert not set(names[0]) & set(names[1])  # a disjoint shard each
            assert len(set(names[0]) | set(names[1])) == 6  # together, the whole training set once

    def test_history_and_early_stopping_inputs_agree(self, ddp_run) -> None:
        work, reports = ddp_run
        h0, h1 = reports[0]["history_a"], reports[1]["history_a"]
        assert h0 == h1 and [h["epoch"] for h in h0] == [1, 2]
        assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in h0)
        assert reports[0]["best_a"] == reports[1]["best_a"]
        assert json.loads((work / "a" / "history.json").read_text()) == h0
        assert json.loads((work / "a" / "best.json").read_text())["info"]["world_size"] == 2

    def test_resume_under_ddp_matches_uninterrupted_run(self, ddp_run) -> None:
        """Run B crashed at step CRASH_AT on both ranks and was resumed: it ends where run A did."""
        work, reports = ddp_run
        assert reports[0]["crashed_b"] and reports[1]["crashed_b"]
        a, b = _weights(work, 0, "a"), _weights(work, 0, "b")
        for k in a:
            assert torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=1e-6), k
        for ha, hb in zip(reports[0]["history_a"], reports[0]["history_b"], strict=True):
            for key in ("epoch", "train_loss", "val_loss", "lr"):
                assert hb[key] == pytest.approx(ha[key], abs=1e-6), key
        assert reports[0]["rerun_history"] == reports[0]["history_a"]  # a finished run trains nothing more

    def test_time_limit_stops_every_rank_at_the_same_epoch(self, ddp_run) -> None:
        _, reports = ddp_run
        assert [[h["epoch"] for h in reports[r]["history_c"]] for r in (0, 1)] == [[1], [1]]

    def test_only_rank_zero_writes_run_files(self, ddp_run) -> None:
        work, reports = ddp_run
        assert reports[1]["writes"] == []
        assert reports[0]["is_main_process"] and not reports[1]["is_main_process"]
        written = {Path(p).name for p in reports[0]["writes"]}
        assert written == RUN_FILES
        for run in ("a", "b", "run-shift"):
            assert {p.name for p in (work / run).iterdir()} == RUN_FILES, run


# ----------------------------------------------------------------------------- the worker


def _dump(path: Path, model) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(path))


def worker(work: Path) -> None:
    """One rank: runs A (clean), B (crash, resume), a rerun of A and a shift run; writes a report."""
    rank = int(os.environ["RANK"])
    torch.set_num_threads(1)
    me = work / f"rank{rank}"
    me.mkdir()
    report: dict = {"writes": [], "seen_a": []}
    real_write, real_save, real_loss = train_mod.write_bytes_atomic, train_mod.save_checkpoint, train_mod.step_loss

    def logged_write(path, data, **kw):
        report["writes"].append(str(path))
        return real_write(path, data, **kw)

    def logged_save(model, path, info=None, half=False):
        report["writes"].append(str(path))
        return real_save(model, path, info, half)

    train_mod.write_bytes_atomic, train_mod.save_checkpoint = logged_write, logged_save
    train_set, val_set = saliency_sets(work / "blobs")

    def seen_loss(model, batch, mode, device, *rest):
        if model.training:
            report["seen_a"].append(list(batch["name"]))
        return real_loss(model, batch, mode, device, *rest)

    model = tiny_model(rank)  # different on purpose: DDP must start every rank from rank 0's weights
    if rank == 0:
        _dump(me / "init.safetensors", model)
    train_mod.step_loss = seen_loss
    result = fit(model, train_set, val_set, tiny_cfg(), work / "a")
    _dump(me / "a.safetensors", model)
    report.update(history_a=result.history, best_a=[result.best_epoch, result.best_val_loss])

    train_mod.step_loss = crashing_loss(real_loss, CRASH_AT, RuntimeError("simulated kill"))
    try:
        fit(tiny_model(rank), train_set, val_set, tiny_cfg(), work / "b")
        report["crashed_b"] = False
    except RuntimeError as exc:
        report["crashed_b"] = str(exc) == "simulated kill"
    train_mod.step_loss = real_loss
    model = tiny_model(100 + rank)
    report["history_b"] = fit(model, train_set, val_set, tiny_cfg(), work / "b").history
    _dump(me / "b.safetensors", model)
    report["rerun_history"] = fit(tiny_model(7), train_set, val_set, tiny_cfg(), work / "a").history
    # a time limit every rank must agree on (else one rank waits for the other forever)
    report["history_c"] = fit(tiny_model(rank), train_set, val_set, tiny_cfg(epochs=3, time_limit=1e-6),
                              work / "c").history

    scenes = read_shift_dataset(work / "shift")
    model = tiny_model(rank)
    fit(model, ShiftDataset(scenes[:2], size=TINY_CANVAS), ShiftDataset(scenes[2:], size=TINY_CANVAS),
        tiny_cfg(mode="shift", epochs=1), work / "run-shift")
    _dump(me / "shift.safetensors", model)
    report["is_main_process"] = distributed.is_main_process()
    (me / "report.json").write_text(json.dumps(report))


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
