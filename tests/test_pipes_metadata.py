"""sspcodec where pipelines already are: shell pipes, every metadata block kept (or dropped on
request), and the scripting basics (--version, --quiet, batch --json/--no-progress, strict JSON)."""
from __future__ import annotations

import functools
import io
import json
import os
import pty
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jpeglib
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, PngImagePlugin
from typer.testing import CliRunner

from sspcodec import Encoder
from sspcodec.backends.markers import (
    APP1,
    APP13,
    COM,
    PHOTOSHOP_TAG,
    XMP_EXTENSION_TAG,
    XMP_TAG,
    insert_segments,
    segments,
)
from sspcodec.cli import app
from sspcodec.options import CompressError, check_keep
from sspcodec.result import CompressResult, Figures
from sspnet import CONFIGS, build_model, save_checkpoint

runner = CliRunner()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
# an IPTC-IIM record (2:120 caption) inside Photoshop resource 0x0404
IIM = b"\x1c\x02\x78" + struct.pack(">H", 11) + b"a caption \xc2\xa9"
IPTC = PHOTOSHOP_TAG + b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(IIM)) + IIM + b"\x00"
EXTENDED = XMP_EXTENSION_TAG + b"0" * 32 + struct.pack(">II", 9, 0) + b"<rdf:x/> "


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    torch.manual_seed(0)
    save_checkpoint(build_model(replace(CONFIGS["default"], input_size=(64, 96))), path, info={"note": "random"})
    return path


@pytest.fixture(scope="module")
def encoder(model_path) -> Encoder:
    return Encoder(str(model_path), device="cpu")


def _photo(h: int = 72, w: int = 104) -> np.ndarray:
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:h, 0:w]
    return np.clip(np.stack([x * 2, y * 3, x + y], 2) % 256 + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _srgb() -> bytes:  # made once: a profile records when it was made
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif() -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "Camera maker"  # Make
    ex[0x0112] = 1  # orientation already upright: the block is carried unchanged
    return ex.tobytes()


def _tagged_jpeg(path: Path) -> dict[str, bytes]:
    """A JPEG carrying ICC, EXIF, XMP + one Extended XMP chunk, IPTC and a comment; returns the
    payload of each as written."""
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, "JPEG", quality=95, icc_profile=_srgb(), exif=_exif(), xmp=XMP,
                                   comment=b"a comment")
    data = insert_segments(buf.getvalue(), [bytes([0xFF, APP1]) + struct.pack(">H", len(EXTENDED) + 2) + EXTENDED,
                                            bytes([0xFF, APP13]) + struct.pack(">H", len(IPTC) + 2) + IPTC])
    path.write_bytes(data)
    return {"icc": _srgb(), "exif": _exif(), "xmp": XMP_TAG + XMP, "extended": EXTENDED, "iptc": IPTC,
            "comment": b"a comment"}


def _payloads(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of the header segments, by our own walker."""
    return [(m, data[s + 4 : e]) for m, s, e in segments(data, headers_only=True) if m not in (0xD8,)]


def _jpeglib_payloads(data: bytes, tmp_path: Path) -> list[tuple[str, bytes]]:
    """(marker name, payload) as libjpeg reads them (jpeglib): an independent reader."""
    f = tmp_path / "read.jpg"
    f.write_bytes(data)
    return [(m.type if isinstance(m.type, str) else str(m), bytes(m.content)) for m in jpeglib.read_dct(str(f)).markers]


def test_every_metadata_block_is_carried_byte_for_byte(encoder, tmp_path):
    src = tmp_path / "tagged.jpg"
    want = _tagged_jpeg(src)
    r = encoder.compress(src)
    assert r.metadata == ("icc", "exif", "xmp", "iptc", "comment")
    im = Image.open(io.BytesIO(r.data))
    assert im.info["icc_profile"] == want["icc"]
    assert im.info["exif"] == want["exif"]  # orientation already 1: unchanged, "Exif" header and all
    assert im.info["xmp"] == XMP and im.info["comment"] == b"a comment"
    ours = _payloads(r.data)
    for marker, payload in ((APP1, want["xmp"]), (APP1, want["extended"]), (APP13, want["iptc"]),
                            (COM, want["comment"])):
        assert (marker, payload) in ours
    theirs = [p for _, p in _jpeglib_payloads(r.data, tmp_path)]
    for key in ("xmp", "extended", "iptc", "comment"):
        assert want[key] in theirs, key


def test_keep_none_strip_and_keep_some(encoder, tmp_path):
    src = tmp_path / "tagged.jpg"
    _tagged_jpeg(src)
    bare = encoder.compress(src, keep="none")
    assert bare.metadata == () and [m for m, _ in _payloads(bare.data) if m in (APP1, 0xE2, APP13, COM)] == []
    assert encoder.compress(src, strip=True).data == bare.data
    some = encoder.compress(src, keep="icc,comment")
    assert some.metadata == ("icc", "comment")
    info = Image.open(io.BytesIO(some.data)).info
    assert "icc_profile" in info and "comment" in info and "xmp" not in info and "exif" not in info
    assert bare.bytes < some.bytes < encoder.compress(src).bytes


def test_keep_is_checked():
    assert check_keep(None) == {"icc", "exif", "xmp", "iptc", "comment"}
    assert check_keep("none") == check_keep(None, True) == frozenset()
    assert check_keep(["XMP", " iptc "]) == {"xmp", "iptc"}
    for bad in ("gps", 3):
        with pytest.raises(CompressError):
            check_keep(bad)
    with pytest.raises(CompressError, match="not both"):
        check_keep("icc", strip=True)


def test_png_xmp_and_comment_are_carried_and_an_oversized_packet_is_said(encoder, tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add_text("Comment", "from a PNG")
    Image.fromarray(_photo()).save(tmp_path / "a.png", pnginfo=info)
    r = encoder.compress(tmp_path / "a.png")
    out = Image.open(io.BytesIO(r.data)).info
    assert out["xmp"] == XMP and out["comment"] == b"from a PNG" and r.notices == ()
    big = PngImagePlugin.PngInfo()
    big.add_itxt("XML:com.adobe.xmp", "<x>" + "a" * 70_000 + "</x>")
    Image.fromarray(_photo()).save(tmp_path / "big.png", pnginfo=big)
    _left_out_with_a_notice(encoder, tmp_path / "big.png", "XMP packet", "xmp", "XMP packet (70,007 bytes)")


def _left_out_with_a_notice(encoder, path, warning: str, block: str, notice: str) -> None:
    """Compressing `path` warns `warning`, leaves metadata `block` out and says `notice`."""
    with pytest.warns(UserWarning, match=warning):
        r = encoder.compress(path)
    assert block not in r.metadata and any(notice in n for n in r.notices)


def test_a_pipe_gives_the_same_bytes_as_the_file(model_path, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(_photo()).save(src)
    common = ["--model", str(model_path), "--device", "cpu", "--quality", "70"]
    res = runner.invoke(app, ["compress", str(src), "-o", str(tmp_path / "out.jpg"), *common])
    assert res.exit_code == 0, res.output
    piped = runner.invoke(app, ["compress", "-", "-o", "-", "--json", *common], input=src.read_bytes())
    assert piped.exit_code == 0, piped.stderr
    assert piped.stdout_bytes == (tmp_path / "out.jpg").read_bytes()
    summary = json.loads(piped.stderr)  # with -o -, the figures go to stderr
    assert summary["input"] == "<stdin>" and summary["output"] == "<stdout>"
    bare = runner.invoke(app, ["compress", *common], input=src.read_bytes())  # no source: stdin to stdout
    assert bare.exit_code == 0 and bare.stdout_bytes == piped.stdout_bytes


def _on_a_terminal(args: list[str], stdin_tty: bool) -> subprocess.CompletedProcess:
    """Run the CLI with stdout (and stdin, if asked) on a pseudo-terminal."""
    main, secondary = pty.openpty()
    try:
        return subprocess.run([sys.executable, "-m", "sspcodec.cli", *args], stdout=secondary,
                              stdin=secondary if stdin_tty else subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(main)
        os.close(secondary)


def test_jpeg_bytes_are_never_written_to_a_terminal(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(_photo()).save(src)
    res = _on_a_terminal(["compress", str(src), "-o", "-"], stdin_tty=False)
    assert res.returncode == 2 and "terminal" in res.stderr and "Traceback" not in res.stderr
    res = _on_a_terminal(["compress"], stdin_tty=True)
    assert res.returncode == 2 and "pipe one in" in res.stderr


def test_version_and_quiet(model_path, tmp_path):
    from sspnet.cli import app as sspnet_app

    for cli, name in ((app, "sspcodec"), (sspnet_app, "sspnet")):
        res = runner.invoke(cli, ["--version"])
        assert res.exit_code == 0 and res.stdout.startswith(f"{name} 0.") and "torch" in res.stdout
    src = tmp_path / "in.png"
    Image.fromarray(np.dstack([_photo(), np.full(_photo().shape[:2], 128, np.uint8)])).save(src)  # RGBA: a notice
    res = runner.invoke(app, ["compress", str(src), "--model", str(model_path), "--device", "cpu", "--quiet"])
    assert res.exit_code == 0 and res.stdout == "" and res.stderr == ""
    assert (tmp_path / "in.sspcodec.jpg").exists()


def test_batch_json_no_progress_and_auto_device(model_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        Image.fromarray(_photo(40 + 8 * k, 64)).save(src / f"{k}.png")
    res = runner.invoke(app, ["batch", str(src), str(tmp_path / "out"), "--model", str(model_path), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)  # the whole stdout is one object; the default device (auto) ran here
    assert summary["encoded"] == 2 and summary["failed"] == [] and summary["mean_predicted_shift"] >= 0
    assert "sspcodec batch" not in res.stderr  # no progress bar with --json
    again = runner.invoke(app, ["batch", str(src), str(tmp_path / "out"), "--model", str(model_path),
                                "--no-progress"])
    assert again.exit_code == 0 and "skipped 2 already done" in again.stdout and "sspcodec batch" not in again.stderr


def test_json_is_strict_and_names_each_quantity_once(encoder):
    r = encoder.compress(_photo())
    lossless = replace(r, predicted_wpsnr=float("inf"), baseline=Figures(1, 1.0, 0.0, 85, float("inf")))
    assert isinstance(lossless, CompressResult)
    text = json.dumps(lossless.summary(), allow_nan=False)  # raises on NaN or Infinity
    data = json.loads(text)
    assert data["predicted_wpsnr_db"] is None and data["baseline"]["predicted_wpsnr_db"] is None
    assert "predicted_wpsnr" not in data["baseline"] and data["predicted_gain_db"] == 0.0  # inf - inf: identical


def test_the_ray_extra_shows_in_help():
    res = runner.invoke(app, ["batch", "--help"], env={"COLUMNS": "200"})
    assert "sspcodec[ray]" in res.stdout


def test_blocks_a_jpeg_cannot_carry_are_said_not_silently_lost(encoder, tmp_path):
    cmyk_profile = bytearray(_srgb())
    cmyk_profile[16:20] = b"CMYK"
    Image.fromarray(_photo()).convert("CMYK").save(tmp_path / "cmyk.jpg", icc_profile=bytes(cmyk_profile))
    with pytest.warns(UserWarning, match="ICC profile describes CMYK"):
        r = encoder.compress(tmp_path / "cmyk.jpg")
    assert "icc" not in r.metadata and "icc_profile" not in Image.open(io.BytesIO(r.data)).info
    ex = Image.Exif()
    ex[0x010E] = "x" * 70_000  # ImageDescription: an EXIF block no JPEG segment holds
    Image.fromarray(_photo()).save(tmp_path / "big_exif.png", exif=ex.tobytes())
    _left_out_with_a_notice(encoder, tmp_path / "big_exif.png", "EXIF block", "exif", "EXIF block (70,")


def test_ssm_reads_the_distorted_image_from_a_pipe_and_writes_the_heatmap_to_one(model_path, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(_photo()).save(src)
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, "JPEG", quality=10)
    common = ["--model", str(model_path), "--device", "cpu"]
    (tmp_path / "q10.jpg").write_bytes(buf.getvalue())
    res = runner.invoke(app, ["ssm", str(src), str(tmp_path / "q10.jpg"), "-o", str(tmp_path / "ssm.png"), *common])
    assert res.exit_code == 0, res.output
    piped = runner.invoke(app, ["ssm", str(src), "-", "-o", "-", *common], input=buf.getvalue())
    assert piped.exit_code == 0, piped.stderr
    assert piped.stdout_bytes == (tmp_path / "ssm.png").read_bytes() and "<stdout>: mean predicted" in piped.stderr
