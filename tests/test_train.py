"""Training loop, experiment drivers and CLI on tiny on-disk data (48x64 canvases).

Everything runs on the CPU in one thread (a second thread only adds contention on a busy
2-core machine); the whole file takes a few tens of seconds.
"""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from helpers_data import TINY_CANVAS, tiny_model_config, write_blob_dataset, write_shift_layout
from PIL import Image
from typer.testing import CliRunner

import sspnet.training.train as train_mod
from sspnet.baselines import CenterBias
from sspnet.cli import app
from sspnet.data import (
    DatasetError,
    SaliencyDataset,
    ShiftDataset,
    get_saliency_map,
    read_fixation_dataset,
    read_shift_dataset,
)
from sspnet.evaluate import run_saliency_eval
from sspnet.net.model import build_model, count_parameters
from sspnet.training.experiments import eval_saliency, eval_shift, split_holdout, train_saliency, train_shift
from sspnet.training.train import TrainConfig, fit
from sspnet.zoo import load_model, read_checkpoint

TINY = tiny_model_config()
COMMANDS = ["train", "predict", "eval", "build-shift", "info"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def cache_env(tmp_path_factory, monkeypatch):
    """Ground-truth maps go to a temporary cache, never to ~/.cache/sspnet."""
    monkeypatch.setenv("SSPNET_CACHE", str(tmp_path_factory.getbasetemp() / "sspnet-cache"))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_blob_dataset(tmp_path_factory.mktemp("data") / "blobs", n=12)


@pytest.fixture(scope="module")
def items(data_root):
    return read_fixation_dataset(data_root)


@pytest.fixture(scope="module")
def shift_root(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("shift") / "layout"
    write_shift_layout(data_root, out, limit=3)
    return out


@pytest.fixture(scope="module")
def sets(items, tmp_path_factory):
    """(train, val, test) SaliencyDatasets: 6 / 2 / 4 images."""
    cache = tmp_path_factory.mktemp("cache")
    make = lambda part: SaliencyDataset(part, size=TINY_CANVAS, cache_dir=cache)  # noqa: E731
    return make(items[:6]), make(items[6:8]), make(items[8:])


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(TINY)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, lr=1e-3, batch_size=2, workers=0, device="cpu", seed=3, patience=5)
    return TrainConfig(**{**base, **kw})


def decoders_equal(state: dict) -> bool:
    keys = [k for k in state if k.startswith("decoder_r.")]
    assert keys
    return all(torch.equal(state[k], state["decoder_d." + k[len("decoder_r."):]]) for k in keys)


# ----------------------------------------------------------------------------- saliency mode


@pytest.fixture(scope="module")
def saliency_run(sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    model = tiny_model()
    assert not decoders_equal(model.state_dict())  # independent initialisations before training
    result = fit(model, sets[0], sets[1], cfg(), out)
    return out, result


def test_fit_writes_run_folder_and_losses_are_finite(saliency_run) -> None:
    out, result = saliency_run
    for name in ("best.safetensors", "best.json", "state.pt", "history.json"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert history == result.history and [h["epoch"] for h in history] == [1, 2]
    for h in history:
        assert math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) and h["images_per_s"] > 0
    assert history[1]["train_loss"] < history[0]["train_loss"]  # it learns something
    assert result.best_path == out / "best.safetensors" and not result.stopped_early
    record = json.loads((out / "best.json").read_text())
    assert record["info"]["best_epoch"] == result.best_epoch and "backbone" in record["config"]
    assert result.best_val_loss == min(h["val_loss"] for h in history)
    assert result.best_epoch == 1 + int(np.argmin([h["val_loss"] for h in history]))


def test_rerun_of_finished_run_trains_nothing(saliency_run, sets) -> None:
    out, result = saliency_run
    again = fit(tiny_model(seed=9), sets[0], sets[1], cfg(), out)
    assert again.history == result.history
    assert (again.best_epoch, again.best_val_loss) == (result.best_epoch, result.best_val_loss)


def test_checkpoint_loads_and_evaluates_with_centre_bias(saliency_run, items, tmp_path) -> None:
    _out, result = saliency_run
    model = load_model(str(result.best_path), device="cpu")
    assert model.config.input_size == TINY_CANVAS and not model.training
    assert model.info["best_epoch"] == result.best_epoch and model.info["train"]["mode"] == "saliency"
    rgb = np.asarray(Image.open(items[0].image_path).convert("RGB"))
    sm = model.predict_saliency(rgb)
    assert sm.shape == rgb.shape[:2] and np.isfinite(sm).all()

    test = items[8:]
    bias = CenterBias.fit([get_saliency_map(i) for i in items[:6]])
    summary = run_saliency_eval(model, test, {"centre-bias": bias}, tmp_path, progress=False)
    assert {row["model"] for row in summary} == {"sspnet", "centre-bias"}
    with open(tmp_path / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(test)
    assert {r["model"] for r in rows} == {"sspnet", "centre-bias"}
    assert all(math.isfinite(float(r["cc"])) for r in rows)
    text = (tmp_path / "results.md").read_text()
    assert "centre-bias" in text and "Significance" in text


def test_saliency_mode_ties_decoders(saliency_run, items) -> None:
    _out, result = saliency_run
    _, _info, state = read_checkpoint(result.best_path)
    assert decoders_equal(state)
    model = load_model(str(result.best_path), device="cpu")
    rgb = np.asarray(Image.open(items[1].image_path).convert("RGB"))
    pred = model.predict_shift(rgb, rgb)
    assert float(np.abs(pred.ssm).max()) == 0.0  # identical pair -> exactly no shift
    np.testing.assert_array_equal(pred.sm_pristine, pred.sm_distorted)


# ----------------------------------------------------------------------------- resume


def _state(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def crashing_loss(real_loss, at: int, exc: BaseException):
    """`sspnet.training.train.step_loss` that raises `exc` at training step `at` (0-based over the run): a kill."""
    calls = {"n": 0}

    def loss(model, batch, mode, device, *rest):
        if model.training:
            if calls["n"] == at:
                raise exc
            calls["n"] += 1
        return real_loss(model, batch, mode, device, *rest)

    return loss


@pytest.mark.slow  # three training runs per case
@pytest.mark.parametrize("crash_at", [2, 4], ids=["epoch1-step2", "epoch2-step1"])
def test_resume_after_crash_matches_uninterrupted_run(sets, tmp_path, monkeypatch, crash_at) -> None:
    """Kill run B during training step `crash_at` (0-based over the run; 3 steps per epoch),
    resume it from its last state.pt: every weight, BatchNorm statistic and Adam moment must
    match run A's to max abs diff 1e-6, and so must the recorded history."""
    train_set, val_set = sets[0], sets[1]
    c = cfg(save_every=1)  # a resumable state after every step
    run_a = fit(tiny_model(), train_set, val_set, c, tmp_path / "a")

    real_loss = train_mod.step_loss
    monkeypatch.setattr(train_mod, "step_loss", crashing_loss(real_loss, crash_at, KeyboardInterrupt("simulated kill")))
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), train_set, val_set, c, tmp_path / "b")
    partial = _state(tmp_path / "b" / "state.pt")
    assert (partial["epoch"], partial["step"]) == divmod(crash_at, 3)
    assert not (tmp_path / "b" / "history.json").exists()
    monkeypatch.setattr(train_mod, "step_loss", real_loss)

    run_b = fit(tiny_model(seed=123), train_set, val_set, c, tmp_path / "b")  # other init: must be overwritten
    a, b = _state(tmp_path / "a" / "state.pt"), _state(tmp_path / "b" / "state.pt")
    assert (b["epoch"], b["step"]) == (2, 0)
    for k, v in a["model"].items():
        diff = (v.double() - b["model"][k].double()).abs().max().item() if v.is_floating_point() else 0
        assert diff < 1e-6 and (v.is_floating_point() or torch.equal(v, b["model"][k])), k
    for pid, sa in a["optimizer"]["state"].items():
        for name, t in sa.items():
            assert torch.allclose(t, b["optimizer"]["state"][pid][name], rtol=0, atol=1e-6), (pid, name)
    assert (run_b.best_epoch, run_b.stopped_early) == (run_a.best_epoch, run_a.stopped_early)
    assert run_b.best_val_loss == pytest.approx(run_a.best_val_loss, abs=1e-6)
    for ha, hb in zip(run_a.history, run_b.history, strict=True):
        for key in ("epoch", "train_loss", "val_loss", "lr"):
            assert hb[key] == pytest.approx(ha[key], abs=1e-6), key


# ----------------------------------------------------------------------------- early stopping


def test_early_stopping_after_patience(sets, tmp_path, monkeypatch) -> None:
    """lr = 0 and a validation loss that never improves: best at epoch 1, stop after
    patience more epochs. (The validation loss is pinned because BatchNorm statistics still
    move in train mode with lr = 0, so the real loss is not exactly constant.)"""
    monkeypatch.setattr(train_mod, "validation_loss", lambda *a, **k: 1.0)
    seen = []
    result = fit(tiny_model(), sets[0], sets[1], cfg(epochs=10, lr=0.0, patience=2, max_steps_per_epoch=1),
                 tmp_path, on_epoch=seen.append)
    assert result.stopped_early
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and len(seen) == 3
    assert (result.best_epoch, result.best_val_loss) == (1, 1.0)
    # resuming a run that stopped early does not train further
    again = fit(tiny_model(), sets[0], sets[1], cfg(epochs=10, lr=0.0, patience=2, max_steps_per_epoch=1), tmp_path)
    assert again.stopped_early and len(again.history) == 3


def test_max_steps_caps_epoch(sets, tmp_path) -> None:
    result = fit(tiny_model(), sets[0], sets[1], cfg(epochs=1, max_steps_per_epoch=1, augment=False), tmp_path)
    (h,) = result.history
    assert h["images_per_s"] > 0 and math.isfinite(h["train_loss"])
    assert json.loads((tmp_path / "history.json").read_text())[0]["epoch"] == 1


# ----------------------------------------------------------------------------- distillation, time limit


def test_distilled_target_splits_the_mass() -> None:
    """share 0: the human map (max 1); share 1: the teachers' mean map; in between the two
    distributions mixed by mass; nothing outside the image's area."""

    class Fixed(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def saliency(self, x, which, boxes, tta):
            assert tta and which == "r"
            return self.m

    human = torch.zeros(1, 1, 4, 4)
    human[0, 0, 0, 0] = 0.5
    valid = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    valid[..., 3] = False
    t1, t2 = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    t1[0, 0, 2, 2], t2[0, 0, 2, 2], t2[0, 0, 1, 3] = 1.0, 1.0, 5.0  # (1, 3) lies outside the area
    x = torch.zeros(1, 3, 4, 4)
    only_human = train_mod.distilled_target(human, x, None, valid, [Fixed(t1)], 0.0)
    assert torch.equal(only_human, human / 0.5)
    mixed = train_mod.distilled_target(human, x, None, valid, [Fixed(t1), Fixed(t2)], 0.25)
    assert mixed[0, 0, 0, 0] == 1.0 and mixed[0, 0, 2, 2] == pytest.approx(0.25 / 0.75)
    assert mixed[..., 3].abs().sum() == 0
    assert torch.equal(train_mod.distilled_target(human, x, None, valid, [Fixed(t1)], 1.0), t1)


def test_fit_distils_from_a_teacher_at_its_own_canvas(saliency_run, sets, tmp_path) -> None:
    """A trained checkpoint as teacher: it looks at the student's canvases at its own canvas
    size, mirrored and not, and the student trains on the mixed targets (finite losses,
    validation still on human maps)."""
    from dataclasses import replace

    out, _ = saliency_run
    teacher = train_mod.load_teacher(str(out / "best.safetensors"), (TINY_CANVAS[0] // 2, TINY_CANVAS[1] // 2),
                                     torch.device("cpu"))
    assert teacher.config.flip_saliency and teacher.config.saliency_scales == (2.0,)
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    c = cfg(epochs=1, max_steps_per_epoch=2, teachers=(str(out / "best.safetensors"),), distil=0.5)
    result = fit(tiny_model(), sets[0], sets[1], c, tmp_path)
    assert math.isfinite(result.history[0]["train_loss"]) and result.best_path.is_file()
    record = json.loads((tmp_path / "best.json").read_text())
    assert record["info"]["train"]["teachers"] == [str(out / "best.safetensors")]
    with pytest.raises(ValueError, match="distil"):
        replace(c, distil=1.5)
    with pytest.raises(ValueError, match="saliency mode"):
        cfg(mode="shift", teachers=("t.safetensors",))


def test_time_limit_stops_after_the_first_epoch(sets, tmp_path) -> None:
    result = fit(tiny_model(), sets[0], sets[1], cfg(epochs=5, max_steps_per_epoch=1, time_limit=1e-6), tmp_path)
    assert [h["epoch"] for h in result.history] == [1] and result.best_path.is_file()


def test_train_config_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        TrainConfig(mode="both")


# ----------------------------------------------------------------------------- shift mode


def test_fit_shift_mode(shift_root, tmp_path) -> None:
    scenes = read_shift_dataset(shift_root)
    train_set = ShiftDataset(scenes[:2], size=TINY_CANVAS)
    val_set = ShiftDataset(scenes[2:], size=TINY_CANVAS)
    assert len(train_set) == 4 and len(val_set) == 2
    result = fit(tiny_model(), train_set, val_set, cfg(mode="shift", epochs=1), tmp_path)
    (h,) = result.history
    assert math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"])
    _, info, state = read_checkpoint(result.best_path)
    assert info["train"]["mode"] == "shift"
    assert not decoders_equal(state)  # shift mode trains the distorted decoder on its own


def test_train_shift_folds_and_eval_shift(shift_root, tmp_path) -> None:
    results = train_shift(shift_root, tmp_path / "run", cfg(epochs=1, max_steps_per_epoch=1), TINY,
                          pretrained_backbone=False, folds=3)
    assert len(results) == 3
    tests = []
    for k in range(3):
        split = json.loads((tmp_path / "run" / f"fold{k}" / "split.json").read_text())
        assert all(len(split[s]) == 1 for s in ("train", "val", "test"))
        tests += split["test"]
    assert sorted(tests) == sorted(s.scene_id for s in read_shift_dataset(shift_root))
    rows = eval_shift(str(results[0].best_path), shift_root, tmp_path / "eval",
                      split_file=tmp_path / "run" / "fold0" / "split.json", device="cpu")
    assert len(rows) == 2 and all(r["model"] == "sspnet" for r in rows)
    assert (tmp_path / "eval" / "per_pair.csv").is_file() and (tmp_path / "eval" / "results.md").is_file()


# ----------------------------------------------------------------------------- k-fold saliency


def test_kfold_train_saliency_and_eval(data_root, items, tmp_path) -> None:
    results = train_saliency([data_root], tmp_path, cfg(epochs=1, max_steps_per_epoch=1), TINY,
                             pretrained_backbone=False, folds=3)
    assert len(results) == 3
    everything = {f"{it.dataset}/{it.name}" for it in items}
    tests: list[str] = []
    for k in range(3):
        fold = tmp_path / f"fold{k}"
        assert (fold / "best.safetensors").is_file() and (fold / "history.json").is_file()
        split = {name: set(v) for name, v in json.loads((fold / "split.json").read_text()).items()}
        assert split["train"] and split["val"] and split["test"]
        assert not (split["train"] & split["val"] or split["train"] & split["test"] or split["val"] & split["test"])
        assert split["train"] | split["val"] | split["test"] == everything
        tests += sorted(split["test"])
    assert len(tests) == len(set(tests)) and set(tests) == everything  # test sets partition the images
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["path"] for s in summary] == [str(r.best_path) for r in results]

    out = tmp_path / "eval"
    rows = eval_saliency(str(results[0].best_path), [data_root], out, split_file=tmp_path / "fold0" / "split.json",
                         device="cpu")
    assert {r["model"] for r in rows} == {"sspnet", "centre-bias", "average-train-map"}
    with open(out / "per_image.csv", newline="") as f:
        per_image = list(csv.DictReader(f))
    n_test = len(json.loads((tmp_path / "fold0" / "split.json").read_text())["test"])
    assert len(per_image) == 3 * n_test
    assert "centre-bias" in (out / "results.md").read_text()
    with pytest.raises(ValueError, match="no 'nope' subset"):
        eval_saliency(str(results[0].best_path), [data_root], out, tmp_path / "fold0" / "split.json", "nope", "cpu")


# ----------------------------------------------------------------------------- readers


def test_readers_reject_malformed_files(data_root, shift_root, tmp_path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(data_root, bad)
    (bad / "eye" / "fixations.mat").write_bytes(b"MATLAB 5.0 but not really" * 10)
    with pytest.raises(DatasetError, match="fixations.mat.*MATLAB"):
        read_fixation_dataset(bad)

    layout = tmp_path / "layout"
    shutil.copytree(shift_root, layout)
    manifest = layout / "manifest.csv"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([lines[0].replace("scene_id", "scene")] + lines[1:]) + "\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_shift_dataset(layout)
    manifest.write_text(lines[0] + "\n")
    with pytest.raises(DatasetError, match="no rows"):
        read_shift_dataset(layout)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.output  # reported once, on one line
    for w in words:
        assert w in errors[0], errors[0]


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS])
def test_cli_help(runner, command) -> None:
    result = runner.invoke(app, command + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.slow  # builds every config, the paper-size ones included
def test_cli_info_lists_configs(runner) -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "configs (parameters):" in result.output and "default" in result.output
    paper = count_parameters(build_model("paper-resnet50", pretrained_backbone=False))
    assert 80e6 < paper < 86e6  # the paper's ~83M
    assert f"  {'paper-resnet50':24} {paper / 1e6:6.2f} M  backbone resnet50" in result.output


def test_cli_train_errors(runner, tmp_path, data_root) -> None:
    _one_line_error(runner.invoke(app, ["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]),
                    "missing", "not found")
    _one_line_error(runner.invoke(app, ["train", "-d", str(data_root), "-d", str(data_root), "--mode", "shift",
                                        "--out", str(tmp_path / "o")]), "exactly one --data")
    _one_line_error(runner.invoke(app, ["train", "-d", str(data_root), "--mode", "both", "--out", str(tmp_path / "o")]),
                    "mode must be one of")
    _one_line_error(runner.invoke(app, ["train", "-d", str(data_root), "--config", "huge", "--no-pretrained",
                                        "--out", str(tmp_path / "o")]), "unknown config")
    _one_line_error(runner.invoke(app, ["train", "-d", str(data_root), "--mode", "shift",
                                        "--out", str(tmp_path / "o")]), "manifest not found")


def _holdout_seed(items, n_val) -> int:
    """The first seed whose `train --folds 0` split (holdout 0.2, validation 0.1) has `n_val`
    validation images and at least one test image."""
    for seed in range(100):
        _, val, test = split_holdout(items, 0.2, 0.1, seed)
        if len(val) == n_val and test:
            return seed
    raise AssertionError(f"no seed < 100 gives {n_val} validation images")


CHEAP = ["--no-pretrained", "--epochs", "1", "--max-steps", "1", "--batch-size", "2", "--workers", "0",
         "--device", "cpu"]


def test_cli_train_then_eval_default_config(runner, tmp_path, data_root, items) -> None:
    """The CLI only takes named configs, so this runs the `default` model at 384x288, kept
    cheap by one step of batch 2 and a one-image validation set."""
    out = tmp_path / "run"
    seed = str(_holdout_seed(items, 1))
    args = ["train", "-d", str(data_root), "-o", str(out), "--seed", seed, *CHEAP]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "best epoch 1" in result.output and (out / "best.safetensors").is_file()
    split = json.loads((out / "split.json").read_text())
    assert len(split["val"]) == 1 and split["test"]
    again = runner.invoke(app, args)  # rerunning the command resumes: nothing left to train
    assert again.exit_code == 0 and "best epoch 1" in again.output
    assert len(json.loads((out / "history.json").read_text())) == 1

    result = runner.invoke(app, ["eval", "--model", str(out / "best.safetensors"), "-d", str(data_root),
                                 "-o", str(tmp_path / "eval"), "--split", str(out / "split.json"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "model=centre-bias" in result.output
    assert "centre-bias" in (tmp_path / "eval" / "results.md").read_text()
    grey = runner.invoke(app, ["eval", "--model", str(out / "best.safetensors"), "-d", str(data_root), "-o",
                               str(tmp_path / "grey"), "--split", str(out / "split.json"), "--device", "cpu",
                               "--greyscale"])
    assert grey.exit_code == 0, grey.output
    def row(text: str, name: str) -> str:  # the summary line (a progress bar may share it before a \r)
        return next(ln[ln.index(name) :] for ln in text.splitlines() if name in ln)

    sspnet_line = lambda text: row(text, "model=sspnet")  # noqa: E731
    centre_line = lambda text: row(text, "model=centre-bias")  # noqa: E731
    assert centre_line(grey.output) == centre_line(result.output)  # same human maps and baselines
    assert sspnet_line(grey.output) != sspnet_line(result.output)  # the model saw other pixels


def test_cli_train_refuses_empty_validation_set(runner, tmp_path, data_root, items) -> None:
    seed = str(_holdout_seed(items, 0))
    _one_line_error(runner.invoke(app, ["train", "-d", str(data_root), "-o", str(tmp_path / "o"), "--seed", seed,
                                        *CHEAP]), "validation set is empty")


def test_fit_refuses_empty_sets(sets, tmp_path) -> None:
    with pytest.raises(ValueError, match="validation set is empty"):
        fit(tiny_model(), sets[0], SaliencyDataset([], size=TINY_CANVAS), cfg(), tmp_path)
    with pytest.raises(ValueError, match="training set is empty"):
        fit(tiny_model(), SaliencyDataset([], size=TINY_CANVAS), sets[1], cfg(), tmp_path)


def test_cli_eval_errors(runner, tmp_path, data_root, shift_root) -> None:
    _one_line_error(runner.invoke(app, ["eval", "--model", str(tmp_path / "none.safetensors"), "-d", str(data_root),
                                        "--out", str(tmp_path / "o")]), "checkpoint not found")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    _one_line_error(runner.invoke(app, ["eval", "--model", str(garbage), "-d", str(data_root), "--out", str(tmp_path)]),
                    "not a readable safetensors checkpoint")
    _one_line_error(runner.invoke(app, ["eval", "--model", str(garbage), "-d", str(data_root), "--mode", "both"]),
                    "--mode must be")
    _one_line_error(runner.invoke(app, ["eval", "--model", str(garbage), "-d", str(tmp_path / "nowhere")]),
                    "not found")
    _one_line_error(runner.invoke(app, ["eval", "--model", str(garbage), "-d", str(data_root),
                                        "--split", str(tmp_path / "no-split.json")]), "split file not found")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "val": [], "test": ["elsewhere-1"]}))
    shift = ["eval", "--model", str(garbage), "-d", str(shift_root), "--mode", "shift", "--split", str(split)]
    _one_line_error(runner.invoke(app, shift + ["--subset", "nope"]), "no 'nope' subset")
    _one_line_error(runner.invoke(app, shift), "1 scenes of the split are not in")
    _one_line_error(runner.invoke(app, shift + ["-d", str(shift_root)]), "exactly one --data")


def test_cli_build_shift(runner, tmp_path, data_root) -> None:
    out = tmp_path / "layout"
    args = ["build-shift", "-d", str(data_root), "-o", str(out), "--distortions", "jpeg", "--levels", "1,3",
            "--limit", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "manifest.csv").is_file() and "wrote 2 scenes" in result.output
    scenes = read_shift_dataset(out)
    assert [len(s.distorted) for s in scenes] == [2, 2]
    _one_line_error(runner.invoke(app, args), "exists")  # no silent overwrite
    _one_line_error(runner.invoke(app, args[:-2] + ["--levels", "7", "--overwrite"]), "levels")


def test_cli_build_shift_rejects_malformed_fixations(runner, tmp_path, data_root) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(data_root, bad)
    (bad / "eye" / "fixations.mat").write_bytes(b"garbage" * 20)
    _one_line_error(runner.invoke(app, ["build-shift", "-d", str(bad), "-o", str(tmp_path / "o")]),
                    "fixations.mat", "MATLAB")


def test_colour_jitter_changes_images_alike_and_keeps_maps():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    d = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    sm = torch.rand(4, 1, 8, 8)
    batch = {"pristine": x, "distorted": d, "sm_r": sm}
    out = train_mod.colour_jitter(batch, 0.3, g)
    assert out["sm_r"] is sm and not torch.equal(out["pristine"], x)
    assert float(out["pristine"].min()) >= 0.0 and float(out["pristine"].max()) <= 1.0
    # the same factors for the pair: with d == x the jittered pair stays identical
    same = train_mod.colour_jitter({"pristine": x, "distorted": x.clone()}, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(same["pristine"], same["distorted"])
    grey = x.mean(1, keepdim=True).expand(-1, 3, -1, -1).contiguous()  # no colour: saturation does nothing
    j = train_mod.colour_jitter({"image": grey}, 0.3, torch.Generator().manual_seed(2))["image"]
    assert torch.allclose(j[:, 0], j[:, 1], atol=1e-6) and torch.allclose(j[:, 1], j[:, 2], atol=1e-6)
    assert train_mod.colour_jitter({"image": x}, 0.0, g)["image"] is x
    with pytest.raises(ValueError, match="colour_jitter"):
        TrainConfig(colour_jitter=1.5)
