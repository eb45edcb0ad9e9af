"""Issue 12: `sspcodec batch --engine ray` writes what the local batch writes, byte for byte, and
keeps its promises: rerun skips, a bad image fails alone, a killed actor's image is retried, fsspec
URLs work, and without Ray the command says how to get it in one line.

One local Ray (2 CPUs) serves the whole module (starting Ray costs seconds); the runs reuse it,
as a notebook would. The model is the tests' tiny random one (mechanics, not quality).
"""
from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
from pathlib import Path

import pytest
from helpers_bench import start_until_output
from test_cli_safety import assert_one_line_error, model_path, runner, write_photo  # noqa: F401 (fixture)

from sspcodec.batch import MANIFEST_NAME, run_batch
from sspcodec.bench.batchchecks import kill_one_actor_while, visible_outputs
from sspcodec.cli import app

N_IMAGES = 6
OPTIONS = {"quality": 70}


def done_records(manifest: bytes) -> dict[str, dict]:
    recs = [json.loads(line) for line in manifest.splitlines() if line.strip()]
    return {r["src"]: r for r in recs if r["event"] == "done"}


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray", reason="the Ray engine's tests need pip install 'sspcodec[ray]'")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six small images in two folders, plus a corrupt one."""
    src = tmp_path_factory.mktemp("photos")
    (src / "sub").mkdir()
    for k in range(N_IMAGES):
        write_photo(src / ("sub" if k % 2 else ".") / f"im{k}.png", seed=k, size=(96, 128))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return src


@pytest.fixture(scope="module")
def reference(photos, model_path, tmp_path_factory) -> Path:  # noqa: F811
    """The local batch's outputs with two workers: what every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("local") / "out"
    summary = run_batch(photos, out, OPTIONS, model=str(model_path), workers=2)
    assert summary.done == N_IMAGES and len(summary.failed) == 1
    return out


def ray_cli(src: str, dst: str, model: Path, *extra: str):
    return runner.invoke(app, ["batch", src, dst, "--model", str(model), "-q", "70", "-j", "2", "--engine", "ray",
                               *extra])


def test_ray_engine_matches_the_local_batch_and_isolates_a_bad_image(ray, photos, reference, model_path,  # noqa: F811
                                                                     tmp_path):
    out = tmp_path / "out"
    res = ray_cli(str(photos), str(out), model_path)
    assert res.exit_code == 1, res.output  # the broken image: recorded, the rest done
    assert f"encoded {N_IMAGES} image(s), skipped 0 already done, 1 failed" in res.output
    assert "failed: " in res.output and "broken.png" in res.output
    assert visible_outputs(out) == visible_outputs(reference)
    assert done_records((out / MANIFEST_NAME).read_bytes()) == done_records((reference / MANIFEST_NAME).read_bytes())
    assert not (out / ".sspcodec-tmp").exists()

    res = ray_cli(str(photos), str(out), model_path)  # a rerun does nothing but retry the bad one
    assert f"encoded 0 image(s), skipped {N_IMAGES} already done, 1 failed" in res.output


def test_file_urls(ray, photos, reference, model_path, tmp_path):  # noqa: F811
    from sspcodec.batch.ray_engine import run_ray_batch

    out = tmp_path / "out"
    summary = run_ray_batch(f"file://{photos}", f"file://{out}", OPTIONS, model=str(model_path), workers=2)
    assert summary.done == N_IMAGES and len(summary.failed) == 1
    assert visible_outputs(out) == visible_outputs(reference)


def test_an_object_store_url_keeps_the_manifest_rules(ray, photos, reference, model_path):  # noqa: F811
    """memory:// stands for s3:// and gs://: a store the driver reaches only through fsspec."""
    fsspec = pytest.importorskip("fsspec")
    from sspcodec.batch.ray_engine import run_ray_batch

    fs = fsspec.filesystem("memory")
    for p in photos.rglob("*.png"):
        fs.pipe_file(f"/in/{p.relative_to(photos).as_posix()}", p.read_bytes())
    fs.pipe_file("/out/im0.jpg", b"the user's own file")  # not the batch's: left alone
    summary = run_ray_batch("memory://in", "memory://out", OPTIONS, model=str(model_path), workers=2)
    assert summary.done == N_IMAGES - 1 and len(summary.failed) == 2
    assert any("--overwrite" in why for _, why in summary.failed)
    assert fs.cat_file("/out/im0.jpg") == b"the user's own file"
    for name, data in visible_outputs(reference).items():
        if name != "im0.jpg":
            assert fs.cat_file(f"/out/{name}") == data, name
    assert not fs.exists(f"/out/{MANIFEST_NAME}.d") or not fs.find(f"/out/{MANIFEST_NAME}.d")  # folded
    ours = done_records(fs.cat_file(f"/out/{MANIFEST_NAME}"))
    theirs = done_records((reference / MANIFEST_NAME).read_bytes())
    assert ours == {k: v for k, v in theirs.items() if k != "im0.png"}

    again = run_ray_batch("memory://in", "memory://out", OPTIONS, model=str(model_path), workers=2, overwrite=True)
    assert again.done == 1 and again.skipped_existing == N_IMAGES - 1
    assert fs.cat_file("/out/im0.jpg") == (reference / "im0.jpg").read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to find the actors")
def test_a_killed_actor_loses_nothing(ray, model_path, tmp_path):  # noqa: F811
    from sspcodec.batch.ray_engine import run_ray_batch

    src = tmp_path / "in"
    src.mkdir()
    for k in range(12):
        write_photo(src / f"im{k:02d}.png", seed=k, size=(256, 384))
    out = tmp_path / "out"
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "summary", run_ray_batch(src, out, OPTIONS, model=str(model_path), workers=2)))
    thread.start()
    killed = kill_one_actor_while(thread, timeout=120)  # an actor with an image in flight
    thread.join(180)
    assert killed is not None, "no actor was seen encoding"
    summary = result["summary"]
    assert summary.done == 12 and not summary.failed, summary.lines()
    done = done_records((out / MANIFEST_NAME).read_bytes())
    assert len(done) == 12
    for rec in done.values():  # every output whole: the bytes the manifest recorded
        assert hashlib.sha256((out / rec["output"]).read_bytes()).hexdigest() == rec["output_sha256"]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"im{k:02d}.jpg" for k in range(12)] + [
        MANIFEST_NAME, ".sspcodec-batch.lock"])  # no temporary file, no scratch folder


def test_without_ray_the_engine_is_one_clear_error(monkeypatch, tmp_path, model_path):  # noqa: F811
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    src = tmp_path / "in"
    src.mkdir()
    write_photo(src / "a.png")
    res = ray_cli(str(src), str(tmp_path / "out"), model_path)
    assert_one_line_error(res, 1, 'pip install "sspcodec[ray]"')
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,words", [
    (["--engine", "local", "--address", "auto"], "--address is for --engine ray"),
    (["--engine", "spark"], "--engine must be local or ray"),
])
def test_engine_options_are_checked_in_one_line(tmp_path, model_path, args, words):  # noqa: F811
    src = tmp_path / "in"
    src.mkdir()
    write_photo(src / "a.png")
    res = runner.invoke(app, ["batch", str(src), str(tmp_path / "out"), "--model", str(model_path), *args])
    assert_one_line_error(res, 2, words)
    res = runner.invoke(app, ["batch", f"file://{src}", str(tmp_path / "out"), "--model", str(model_path)])
    assert_one_line_error(res, 2, "--engine ray")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_sigint_stops_the_ray_batch_cleanly_and_a_rerun_finishes(model_path, tmp_path):  # noqa: F811
    """The command in a subprocess (its own private Ray): Ctrl-C finishes the images in flight,
    prints the summary, exits 130 and leaves a consistent manifest and no partial file."""
    pytest.importorskip("ray", reason="the Ray engine's tests need pip install 'sspcodec[ray]'")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for k in range(16):
        write_photo(src / f"im{k:02d}.png", seed=k, size=(256, 384))
    cmd = [sys.executable, "-m", "sspcodec.cli", "batch", str(src), str(out), "--model", str(model_path), "-q", "70",
           "-j", "2", "--engine", "ray"]
    proc = start_until_output(cmd, out, 120)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted by SIGINT" in stdout and "Traceback" not in stderr
    first = len(list(out.glob("*.jpg")))
    assert 1 <= first < 16
    assert len(done_records((out / MANIFEST_NAME).read_bytes())) == first
    assert not [p for p in out.rglob("*") if ".sspnet-tmp" in p.name or p.name == ".sspcodec-tmp"]
    res = ray_cli(str(src), str(out), model_path)
    assert res.exit_code == 0 and f"encoded {16 - first} image(s), skipped {first} already done" in res.output
