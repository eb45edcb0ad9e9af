"""Issue 11: `sspcodec batch` never loses a file and stops cleanly -- cases 3, 5, 6 and 9.

Collision-free names, OUT inside IN, an exact manifest, signals (in-process for SIGINT, a real
subprocess with two workers for SIGTERM and kill -9), one-line errors before any worker starts.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_bench import start_until_output
from test_cli_safety import assert_one_line_error, model_path, runner, write_photo  # noqa: F401 (fixture)

from sspcodec.api import Encoder
from sspcodec.batch import MANIFEST_NAME, BatchError, Manifest, output_names, run_batch
from sspcodec.bench.batchchecks import alive, children, leftovers, visible_outputs
from sspcodec.cli import app


def batch(src: Path, dst: Path, model: Path, *extra: str):
    return runner.invoke(app, ["batch", str(src), str(dst), "--model", str(model), "-q", "70", *extra])


def outputs(folder: Path) -> list[str]:
    """The visible files under *folder*, relative, sorted (the batch's own files are hidden)."""
    return sorted(visible_outputs(folder))


# ---------------------------------------------------------------- case 3: colliding names
def test_output_names_keep_the_extension_only_where_stems_collide(tmp_path):
    names = ["photo.png", "photo.jpg", "photo.webp", "other.png", "sub/photo.png", "x.png.jpg", "x.png", "x.jpg"]
    srcs = [tmp_path / n for n in names]
    got = {s.relative_to(tmp_path).as_posix(): n.as_posix() for s, n in output_names(srcs, tmp_path).items()}
    assert got == {
        "photo.png": "photo.png.jpg", "photo.jpg": "photo.jpg.jpg", "photo.webp": "photo.webp.jpg",
        "other.png": "other.jpg", "sub/photo.png": "sub/photo.jpg",
        # x.png and x.jpg collide; x.png's new name then collides with the input x.png.jpg's
        "x.png": "x.png.jpg", "x.jpg": "x.jpg.jpg", "x.png.jpg": "x.png.jpg.jpg",
    }
    with pytest.raises(BatchError, match="case"):
        output_names([tmp_path / "A.png", tmp_path / "a.png"], tmp_path)


def test_case3_same_stem_different_formats_all_survive(tmp_path, model_path):  # noqa: F811
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for k, name in enumerate(["photo.png", "photo.jpg", "photo.webp"]):
        write_photo(src / name, seed=k)
    res = batch(src, dst, model_path)
    assert res.exit_code == 0, res.output
    assert "encoded 3 image(s)" in res.output
    assert outputs(dst) == ["photo.jpg.jpg", "photo.png.jpg", "photo.webp.jpg"]
    assert len({(dst / n).read_bytes() for n in outputs(dst)}) == 3
    res = batch(src, dst, model_path)
    assert "encoded 0 image(s), skipped 3 already done" in res.output


# ---------------------------------------------------------------- case 5: OUT inside IN
def test_case5_out_inside_in_is_never_scanned_and_in_inside_out_is_refused(tmp_path, model_path):  # noqa: F811
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    write_photo(photos / "a.png", 1)
    write_photo(photos / "sub" / "b.png", 2)
    enc = photos / "enc"
    for _ in range(2):
        res = batch(photos, enc, model_path)
        assert res.exit_code == 0, res.output
    assert "skipped 2 already done" in res.output
    assert outputs(enc) == ["a.jpg", "sub/b.jpg"]
    res = batch(photos / "sub", photos, model_path)
    assert_one_line_error(res, 2, "inside the output folder")


# ---------------------------------------------------------------- the manifest
def test_manifest_resumes_exactly(tmp_path, model_path):  # noqa: F811
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for k in range(3):
        write_photo(src / f"im{k}.png", k)
    assert batch(src, dst, model_path).exit_code == 0
    records = [json.loads(line) for line in (dst / MANIFEST_NAME).read_text().splitlines()]
    done = {r["src"]: r for r in records if r["event"] == "done"}
    assert set(done) == {"im0.png", "im1.png", "im2.png"}
    assert done["im0.png"]["options"]["target"] == {"quality": 70}
    assert done["im0.png"]["bytes"] == (dst / "im0.jpg").stat().st_size

    write_photo(src / "im1.png", seed=9)  # a changed input is encoded again, the rest skipped
    (dst / "im2.jpg").write_bytes(b"damaged")  # so is a damaged output
    with open(dst / MANIFEST_NAME, "a") as f:
        f.write('{"event": "done", "src": "im0.png", "out')  # a line cut short by a kill
    res = batch(src, dst, model_path)
    assert res.exit_code == 0, res.output
    assert "encoded 2 image(s), skipped 1 already done" in res.output
    assert (dst / "im2.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert len(outputs(dst)) == 3 and not leftovers(dst)
    manifest = Manifest(dst / MANIFEST_NAME)
    rec = manifest.finished["im0.png"]
    assert manifest.is_finished("im0.png", rec["sha256"], rec["options"], dst)
    other = rec["options"] | {"target": {"quality": 60}}  # other options: encoded again
    assert not manifest.is_finished("im0.png", rec["sha256"], other, dst)


def test_an_output_the_batch_did_not_write_needs_overwrite(tmp_path, model_path):  # noqa: F811
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    dst.mkdir()
    write_photo(src / "a.png")
    (dst / "a.jpg").write_bytes(b"the user's own file")
    res = batch(src, dst, model_path)
    assert res.exit_code == 1 and "--overwrite" in res.output
    assert (dst / "a.jpg").read_bytes() == b"the user's own file"
    res = batch(src, dst, model_path, "--overwrite")
    assert res.exit_code == 0 and (dst / "a.jpg").read_bytes()[:2] == b"\xff\xd8"


# ---------------------------------------------------------------- case 9: errors before workers
@pytest.mark.parametrize("args,words", [
    (["--model", "no-such-model"], "--model"),
    (["--backend", "nope"], "--backend"),
    (["--device", "nope"], "--device"),
    (["--log", "{tmp}/missing/run.log"], "--log"),
    (["--workers", "0"], "workers"),
    (["--bpp", "inf"], "bpp"),
])
def test_case9_bad_batch_options_are_one_line_before_any_worker(tmp_path, model_path, args, words):  # noqa: F811
    src = tmp_path / "in"
    src.mkdir()
    write_photo(src / "a.png")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    model = [] if "--model" in args else ["--model", str(model_path)]
    res = runner.invoke(app, ["batch", str(src), str(tmp_path / "out"), "-j", "2", *model, *args])
    assert_one_line_error(res, 2, words)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- case 6: stopping
def test_case6_sigint_finishes_the_image_in_flight_and_reports(tmp_path, model_path, monkeypatch):  # noqa: F811
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for k in range(3):
        write_photo(src / f"im{k}.png", k)
    real = Encoder.compress

    def interrupted(self, image, **kw):  # Ctrl-C arrives while the first image is being encoded
        os.kill(os.getpid(), signal.SIGINT)
        return real(self, image, **kw)

    monkeypatch.setattr(Encoder, "compress", interrupted)
    res = batch(src, dst, model_path)
    assert res.exit_code == 130, res.output
    assert "encoded 1 image(s)" in res.output and "interrupted by SIGINT: 2 image(s) not encoded" in res.output
    assert outputs(dst) == ["im0.jpg"] and not leftovers(dst)
    monkeypatch.setattr(Encoder, "compress", real)
    res = batch(src, dst, model_path)
    assert res.exit_code == 0 and "encoded 2 image(s), skipped 1 already done" in res.output


def _start_batch(tmp_path: Path, model: Path) -> tuple[Path, Path, subprocess.Popen, list[int]]:
    """`sspcodec batch -j 2` on six images in a subprocess, returned once its first output exists,
    with its worker processes: (IN, OUT, the process, its children)."""
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for k in range(6):
        write_photo(src / f"im{k}.png", k)
    cmd = [sys.executable, "-m", "sspcodec.cli", "batch", str(src), str(dst), "--model", str(model), "-q", "70",
           "-j", "2"]
    proc = start_until_output(cmd, dst, 180)
    return src, dst, proc, children(proc.pid)


def _gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(alive(p) for p in pids)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find worker processes")
def test_case6_sigterm_with_two_workers_stops_cleanly_and_resumes(tmp_path, model_path):  # noqa: F811
    src, dst, proc, workers = _start_batch(tmp_path, model_path)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in out and "encoded" in out
    assert "Traceback" not in err
    assert _gone(workers), "worker processes outlived the batch"
    assert not leftovers(dst)
    first = len(outputs(dst))
    assert 1 <= first < 6
    summary = run_batch(src, dst, {"quality": 70}, model=str(model_path))
    assert summary.done == 6 - first and summary.skipped_existing == first and not summary.failed
    assert len(outputs(dst)) == 6


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find worker processes")
def test_case6_workers_die_with_a_killed_parent(tmp_path, model_path):  # noqa: F811
    src, dst, proc, workers = _start_batch(tmp_path, model_path)
    proc.kill()
    proc.communicate()
    assert _gone(workers), "worker processes were orphaned by kill -9"
    summary = run_batch(src, dst, {"quality": 70}, model=str(model_path))
    assert not summary.failed and summary.done + summary.skipped_existing == 6
    assert len(outputs(dst)) == 6 and not leftovers(dst)
