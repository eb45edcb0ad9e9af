"""The GPU study's pieces that run without a GPU: the canvas-size copies of a fixation data set
(benchmarks/shrink_dataset.py: their maps must be the originals' maps) and the studies' folds,
commands and score reading (sspcodec.bench.studies, study_scores)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_blob_dataset

from sspcodec.bench.studies import BACKBONE_RECIPE, LONG, folds, lodo_folds, pending, train_cmd
from sspcodec.bench.study_scores import best_epoch, paired, read_scores, table
from sspnet.data import read_fixation_dataset
from sspnet.data.cache import get_saliency_map
from sspnet.preprocess import letterbox

SHRINK = Path(__file__).resolve().parents[1] / "benchmarks" / "shrink_dataset.py"


def shrink(src: Path, dst: Path) -> subprocess.CompletedProcess:
    """benchmarks/shrink_dataset.py SRC DST at width 64, quality 95."""
    return subprocess.run([sys.executable, str(SHRINK), str(src), str(dst), "--width", "64", "--quality", "95"],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SSPNET_CACHE", str(tmp_path / "cache"))


def test_shrunk_copy_keeps_the_maps(tmp_path) -> None:
    src = write_blob_dataset(tmp_path / "blobs", n=4, size=(160, 120))
    out = shrink(src, tmp_path / "small" / "blobs")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"4 images -> {tmp_path / 'small' / 'blobs'}"
    big, small = read_fixation_dataset(src), read_fixation_dataset(tmp_path / "small" / "blobs")
    assert [i.name for i in big] == [i.name for i in small]
    for a, b in zip(big, small):
        assert b.shape == (48, 64) and len(b.fixations) == len(a.fixations)
        assert np.allclose(b.fixations.x, (a.fixations.x + 0.5) * 0.4 - 0.5)
        assert np.array_equal(b.fixations.observer, a.fixations.observer)
        ma, _ = letterbox(get_saliency_map(a), (48, 64))
        mb, _ = letterbox(get_saliency_map(b), (48, 64))
        assert np.corrcoef(ma.ravel(), mb.ravel())[0, 1] > 0.99
    refused = shrink(src, src)
    assert refused.returncode == 1 and "refusing to write over the source folder" in refused.stderr


def test_study_folds_commands_and_scores(tmp_path) -> None:
    fs = folds([Path("d/osie"), Path("d/eyecrowd")])
    assert fs["osie-to-eyecrowd"] == {"data": [Path("d/osie")], "holdout": "0", "test": "eyecrowd"}
    assert fs["both"]["test"] is None and fs["both"]["holdout"] == "0.2"

    class Args:
        workers, backbone_weights, distil, quick = 2, Path("w.pth"), 0.5, False

    cmd = train_cmd(fs["eyecrowd-to-osie"], Path("o"), LONG, Args(), teacher=Path("t.safetensors"), seconds=120)
    assert cmd[:4] == [sys.executable, "-m", "sspnet.cli", "train"]
    text = " ".join(cmd)
    assert "--data d/eyecrowd" in text and "--teacher t.safetensors --distil 0.5" in text
    assert "--time-limit 120" in text and "--backbone-weights w.pth" in text and "--holdout 0" in text
    assert "--seed" not in text  # seed 0 is the CLI's own default

    class Replicate(Args):
        seed = 1

    assert " --seed 1" in " ".join(train_cmd(fs["both"], Path("o"), LONG, Replicate()))
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "per_image.csv").write_text(
        "model,dataset,name,cc,kld\nsspnet,osie,a,0.5,1.0\nsspnet,osie,b,0.7,\ncentre-bias,osie,a,0.1,2.0\n")
    assert read_scores(tmp_path / "e") == {"cc": pytest.approx(0.6), "kld": 1.0, "n": 2}
    assert read_scores(tmp_path / "missing") is None


def test_backbone_study_resumes_and_tabulates(tmp_path) -> None:
    """Only the two leave-one-out folds; a run counts as done once summary.json exists and a score
    once per_image.csv does (so a rerun resumes); the table reads both and averages CC."""
    fs = lodo_folds([Path("d/osie"), Path("d/eyecrowd")])
    assert list(fs) == ["osie-to-eyecrowd", "eyecrowd-to-osie"]
    out = tmp_path / "out"
    run = out / "default" / "osie-to-eyecrowd"
    run.mkdir(parents=True)
    (run / "history.json").write_text('[{"epoch": 1, "val_loss": 2.0}, {"epoch": 2, "val_loss": 1.5},'
                                      ' {"epoch": 3, "val_loss": 1.7}]')
    train, score = pending(out, ["default"], fs)
    assert train == [("default", "osie-to-eyecrowd"), ("default", "eyecrowd-to-osie")] and len(score) == 2
    (run / "summary.json").write_text("[]")
    ev = out / "default" / "osie-to-eyecrowd.eval"
    ev.mkdir()
    ev.joinpath("per_image.csv").write_text(
        "model,dataset,name,cc,sim,kld,nss,auc_judd\nsspnet,eyecrowd,a,0.6,0.5,0.9,2.0,0.85\n")
    train, score = pending(out, ["default"], fs)
    assert train == [("default", "eyecrowd-to-osie")] and score == [("default", "eyecrowd-to-osie")]
    assert best_epoch(run) == (1.5, 2) and best_epoch(tmp_path) is None
    text, data = table(out, ["default"], fs)
    row = text.splitlines()[2]
    assert "| default | mobilenet_v2 |" in row and "0.600 / 0.500 / 0.900 / 2.000 / 0.850" in row
    assert "1.500 (2)" in row and row.endswith("| - |")  # no mean until both folds are scored
    assert data["default"]["osie-to-eyecrowd"]["scores"]["cc"] == pytest.approx(0.6)
    assert "--freeze-stem" in BACKBONE_RECIPE and BACKBONE_RECIPE[BACKBONE_RECIPE.index("--epochs") + 1] == "8"


def test_backbone_study_pairs_images_with_the_reference(tmp_path) -> None:
    fs = lodo_folds([Path("d/osie"), Path("d/eyecrowd")])
    for config, ccs in (("default", (0.5, 0.6, 0.7, 0.8, 0.9, 0.4)), ("other", (0.4, 0.5, 0.6, 0.7, 0.8, 0.3))):
        ev = tmp_path / config / "osie-to-eyecrowd.eval"
        ev.mkdir(parents=True)
        rows = "".join(f"sspnet,eyecrowd,{k},{c}\ncentre-bias,eyecrowd,{k},0.1\n" for k, c in enumerate(ccs))
        ev.joinpath("per_image.csv").write_text("model,dataset,name,cc\n" + rows)
    text = paired(tmp_path, ["default", "other"], fs, "default")
    rows = text.splitlines()[2:]
    assert len(rows) == 1 and rows[0].startswith("| other | osie-to-eyecrowd | 6 | -0.100 |")
    assert float(rows[0].split("|")[5]) < 0.05  # six equal drops in six images: p about 0.03
