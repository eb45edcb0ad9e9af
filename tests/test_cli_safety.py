"""Issue 11: never lose a file, never crash on input -- the CLI and API side.

Each test names the case of the issue it covers; each failed on the code before the fix (the
input overwritten by --report, a race that replaced a file, "error: 2", a FIFO that hung, a
traceback for `--bpp inf`, ...). A tiny random-weight checkpoint keeps them fast.
"""
from __future__ import annotations

import os
import struct
import threading
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sspcodec.api import Encoder
from sspcodec.cli import app
from sspcodec.options import Budget, CompressError, check_request
from sspcodec.source import read_source
from sspnet import build_model, save_checkpoint
from sspnet.files.images import ImageReadError, read_image
from sspnet.net.configs import CONFIGS

runner = CliRunner()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A random-weight SSPNet at 64x96 input: the mechanics under test do not need a good model."""
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(build_model(replace(CONFIGS["default"], input_size=(64, 96))), path)
    return path


def write_photo(path: Path, seed: int = 0, size: tuple[int, int] = (48, 64)) -> Path:
    """A small noisy image file (the format follows the suffix)."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds no pixel data: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def assert_one_line_error(res, code: int = 2, *words: str) -> None:
    """Exactly one non-empty output line, starting 'error:', no traceback, the given exit code."""
    lines = error_lines(res.output)
    assert res.exit_code == code, res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail loudly if a command loads a model: validation must come first."""
    import sspnet
    import sspnet.zoo

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(sspnet.zoo, "load_model", refuse)
    monkeypatch.setattr(sspnet, "load_model", refuse)
    monkeypatch.setattr("sspcodec.api.load_model", refuse)


# ---------------------------------------------------------------- case 1: --report
def test_case1_report_never_overwrites_the_input_or_the_jpeg(tmp_path, model_path, no_model_load):
    src = write_photo(tmp_path / "x.png")
    before = src.read_bytes()
    res = runner.invoke(app, ["compress", str(src), "-o", str(tmp_path / "y.jpg"), "--report", str(src),
                              "--model", str(model_path)])
    assert_one_line_error(res, 2, "input")
    assert src.read_bytes() == before and not (tmp_path / "y.jpg").exists()

    out = tmp_path / "out.jpg"
    res = runner.invoke(app, ["compress", str(src), "-o", str(out), "--report", str(out), "--model", str(model_path)])
    assert_one_line_error(res, 2, "same file")
    assert not out.exists()

    existing = tmp_path / "r.png"
    existing.write_bytes(b"precious")
    res = runner.invoke(app, ["compress", str(src), "-o", str(out), "--report", str(existing),
                              "--model", str(model_path)])
    assert_one_line_error(res, 2, "--overwrite")
    assert existing.read_bytes() == b"precious" and not out.exists()


def test_case1_hard_link_and_symlink_to_the_input_are_refused(tmp_path, model_path, no_model_load):
    src = write_photo(tmp_path / "x.png")
    os.link(src, tmp_path / "hard.jpg")
    (tmp_path / "soft.png").symlink_to(src)
    for alias in ("hard.jpg", "soft.png"):
        res = runner.invoke(app, ["compress", str(src), "-o", str(tmp_path / alias), "--overwrite",
                                  "--model", str(model_path)])
        assert_one_line_error(res, 2, "input")
    assert read_image(src).shape == (48, 64, 3)


def test_compress_writes_jpeg_and_report_together(tmp_path, model_path):
    src = write_photo(tmp_path / "x.png")
    out, rep = tmp_path / "x.jpg", tmp_path / "r.png"
    res = runner.invoke(app, ["compress", str(src), "-o", str(out), "--report", str(rep), "--model", str(model_path),
                              "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:2] == b"\xff\xd8" and rep.read_bytes()[:4] == b"\x89PNG"
    res = runner.invoke(app, ["compress", str(src), "-o", str(out), "--report", str(rep), "--model", str(model_path),
                              "--device", "cpu", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.png", "x.jpg", "x.png"]  # no temporary files


# ---------------------------------------------------------------- case 2: ssm outputs
def test_case2_ssm_never_overwrites_its_inputs_or_existing_files(tmp_path, model_path, no_model_load):
    a = write_photo(tmp_path / "a.png")
    b = tmp_path / "b.jpg"
    Image.open(a).save(b, quality=20)
    saved = a.read_bytes(), b.read_bytes()
    for target in (a, b):
        res = runner.invoke(app, ["ssm", str(a), str(b), "-o", str(target), "--model", str(model_path)])
        assert_one_line_error(res, 2, "input")
    existing = tmp_path / "keep.npy"
    existing.write_bytes(b"precious")
    res = runner.invoke(app, ["ssm", str(a), str(b), "-o", str(tmp_path / "s.png"), "--raw", str(existing),
                              "--model", str(model_path)])
    assert_one_line_error(res, 2, "--overwrite")
    assert (a.read_bytes(), b.read_bytes()) == saved and existing.read_bytes() == b"precious"
    assert not (tmp_path / "s.png").exists()


# ---------------------------------------------------------------- case 4: a race on -o
def test_case4_a_file_created_during_the_encode_is_not_replaced(tmp_path, model_path, monkeypatch):
    src = write_photo(tmp_path / "x.png")
    out = tmp_path / "out.jpg"
    real = Encoder.compress

    def racing(self, image, **kw):  # another process writes the same output meanwhile
        result = real(self, image, **kw)
        out.write_bytes(b"the other run's result")
        return result

    monkeypatch.setattr(Encoder, "compress", racing)
    res = runner.invoke(app, ["compress", str(src), "-o", str(out), "--model", str(model_path), "--device", "cpu"])
    assert res.exit_code != 0 and "exists" in res.output
    assert out.read_bytes() == b"the other run's result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "x.png"]


# ---------------------------------------------------------------- case 9: options
@pytest.mark.parametrize("args,words", [
    (["--bpp", "inf"], "bpp"),
    (["--bpp", "nan"], "bpp"),
    (["--bpp", "-1"], "bpp"),
    (["--max-shift", "nan"], "max_shift"),
    (["--max-shift", "inf"], "max_shift"),
    (["--max-bytes", "99999999999999GB"], "max_bytes"),
    (["--max-bytes", "nan"], "cannot parse size"),
    (["-q", "0"], "quality"),
    (["-q", "101"], "quality"),
    (["--max-pixels", "0"], "max_pixels"),
    (["--model", "no-such-model"], "--model"),
    (["--backend", "no-such-backend"], "--backend"),
    (["--device", "no-such-device"], "--device"),
])
def test_case9_bad_options_fail_in_one_line_before_the_model_loads(tmp_path, model_path, no_model_load, args, words):
    src = write_photo(tmp_path / "x.png")
    base = ["compress", str(src), "-o", str(tmp_path / "o.jpg")]
    model = [] if "--model" in args else ["--model", str(model_path)]
    res = runner.invoke(app, base + model + args)
    assert_one_line_error(res, 2, words)
    assert not (tmp_path / "o.jpg").exists()


@pytest.mark.parametrize("options", [
    {"bpp": float("inf")}, {"bpp": float("nan")}, {"bpp": 0}, {"max_bytes": float("inf")},
    {"max_bytes": float("nan")}, {"max_bytes": 2**41}, {"max_bytes": True}, {"max_shift": float("nan")},
    {"max_shift": -0.1}, {"quality": 85.5}, {"quality": float("nan")}, {"quality": "85"},
])
def test_case9_api_raises_compress_error_for_bad_options(options):
    with pytest.raises(CompressError):
        Budget.parse(**options)


def test_case9_api_compress_error_through_the_encoder_and_for_huge_images(model_path):
    encoder = Encoder(str(model_path), device="cpu")
    rgb = np.zeros((16, 16, 3), np.uint8)
    for options in ({"bpp": float("inf")}, {"max_bytes": float("inf")}, {"max_shift": float("nan")}):
        with pytest.raises(CompressError):
            encoder.compress(rgb, **options)
    with pytest.raises(CompressError, match="65,500"):
        read_source(np.zeros((8, 70_000, 3), np.uint8))  # checked before any conversion
    with pytest.raises(CompressError, match="65,500"):
        read_source(png_header_only(70_000, 8))  # a header size check: nothing decoded
    assert check_request(quality=70) == Budget(quality=70)


def test_case9_images_over_65500_px_are_one_line(tmp_path, model_path, no_model_load):
    wide = tmp_path / "wide.png"
    wide.write_bytes(png_header_only(70_000, 8))
    res = runner.invoke(app, ["compress", str(wide), "--model", str(model_path)])
    assert_one_line_error(res, 2, "65,500")


def test_case9_sspnet_predict_on_a_decompression_bomb_is_one_line(tmp_path, model_path, no_model_load):
    from sspnet.cli import app as sspnet_app

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(20_000, 20_000))
    res = runner.invoke(sspnet_app, ["predict", str(bomb), "-o", str(tmp_path / "out"), "--model", str(model_path)])
    assert_one_line_error(res, 2, "bomb.png")
    res = runner.invoke(app, ["compress", str(bomb), "--model", str(model_path)])
    assert_one_line_error(res, 2, "bomb.png")


def test_sspnet_predict_refuses_to_overwrite_its_outputs(tmp_path, model_path):
    from sspnet.cli import app as sspnet_app

    src = write_photo(tmp_path / "x.png")
    args = ["predict", str(src), "-o", str(tmp_path / "out"), "--model", str(model_path), "--device", "cpu"]
    assert runner.invoke(sspnet_app, args).exit_code == 0
    overlay = tmp_path / "out" / "x_saliency_overlay.png"
    overlay.write_bytes(b"edited by hand")
    res = runner.invoke(sspnet_app, args)
    assert_one_line_error(res, 2, "--overwrite")
    assert overlay.read_bytes() == b"edited by hand"
    assert runner.invoke(sspnet_app, args + ["--overwrite"]).exit_code == 0
    assert overlay.read_bytes()[:4] == b"\x89PNG"


def test_sspnet_train_into_a_file_or_broken_link_is_one_line(tmp_path):
    """A run folder that is a file or a dangling symlink fails before any data is read."""
    from sspnet.cli import app as sspnet_app

    (tmp_path / "file").write_text("x")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    for out in ("file", "broken"):
        res = runner.invoke(sspnet_app, ["train", "--data", str(tmp_path / "no-data"), "--out", str(tmp_path / out)])
        assert_one_line_error(res, 2, "is not a folder")
    assert (tmp_path / "file").read_text() == "x" and not (tmp_path / "nowhere").exists()


# ---------------------------------------------------------------- case 10: all or nothing
def test_case10_report_into_a_missing_folder_fails_before_the_jpeg(tmp_path, model_path, no_model_load):
    src = write_photo(tmp_path / "x.png")
    out = tmp_path / "out.jpg"
    res = runner.invoke(app, ["compress", str(src), "-o", str(out), "--report", str(tmp_path / "nope" / "r.png"),
                              "--model", str(model_path)])
    assert_one_line_error(res, 2, "does not exist")
    assert not out.exists()


# ---------------------------------------------------------------- case 12: special files, ssm sizes
def test_case12_a_fifo_is_refused_at_once(tmp_path, model_path, no_model_load):
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_image(fifo)
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # the old reader blocks in open(); release it before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO hung")
    assert isinstance(outcome[0], ImageReadError) and "FIFO" in str(outcome[0])
    res = runner.invoke(app, ["compress", str(fifo), "-o", str(tmp_path / "o.jpg"), "--model", str(model_path)])
    assert_one_line_error(res, 2, "not a regular file")
    res = runner.invoke(app, ["compress", os.devnull, "-o", str(tmp_path / "o.jpg"), "--model", str(model_path)])
    assert_one_line_error(res, 2, "not a regular file")


def test_case12_ssm_size_mismatch_is_exactly_one_error_line(tmp_path, model_path, no_model_load):
    a = write_photo(tmp_path / "a.png", size=(48, 64))
    b = write_photo(tmp_path / "b.png", size=(32, 64))
    res = runner.invoke(app, ["ssm", str(a), str(b), "-o", str(tmp_path / "s.png"), "--model", str(model_path)])
    assert_one_line_error(res, 2, "differ in size")
    assert "error: 2" not in res.output


def test_one_line_errors_lets_exits_through_and_maps_codes():
    """The pattern behind "error: 2": an Exit raised inside the guarded block is not a failure."""
    import typer

    from sspnet.errors import fail, one_line_errors

    demo = typer.Typer()

    @demo.command()
    def go(kind: str) -> None:
        with one_line_errors():
            if kind == "fail":
                fail("the message", 2)
            if kind == "usage":
                raise ValueError("bad value\non two lines")
            if kind == "runtime":
                raise OSError(28, "No space left on device")
            if kind == "memory":
                raise MemoryError

    for kind, code, words in (("fail", 2, "the message"), ("usage", 2, "bad value on two lines"),
                              ("runtime", 1, "No space left"), ("memory", 1, "out of memory")):
        assert_one_line_error(runner.invoke(demo, [kind]), code, words)
    assert runner.invoke(demo, ["ok"]).exit_code == 0
