"""Issue 26: never write through a link or onto a special file, never change the picture silently.

Each test names the case of the issue it covers; each failed on the code before the fix (a batch
that wrote a JPEG into another input through a link in OUT, `-o fifo --overwrite` replacing the
FIFO, an EXIF LONG orientation left at 6, a 59-line OverflowError, a manifest line that stopped
the batch, transparency flattened without a word, ...). A tiny random-weight model keeps them fast.
"""
from __future__ import annotations

import io
import json
import os
import stat
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli_safety import (  # noqa: F401 (fixtures)
    assert_one_line_error,
    model_path,
    no_model_load,
    runner,
    write_photo,
)

from sspcodec.api import ContentChangeWarning, Encoder
from sspcodec.batch import MANIFEST_NAME, MAX_MANIFEST_LINE, Manifest
from sspcodec.cli import app
from sspcodec.decoding import decode_jpeg
from sspcodec.metadata import upright_exif
from sspcodec.options import CompressError
from sspnet.files.images import ImageReadError, load_image
from sspnet.files.outputs import UnsafeWriteError, write_bytes_atomic


@pytest.fixture(scope="module")
def encoder(model_path) -> Encoder:  # noqa: F811
    return Encoder(str(model_path), device="cpu")


def compress_cli(*args: str):
    return runner.invoke(app, ["compress", *args])


def encoded_cli(src: Path, out: Path, model: Path, *extra: str):
    """`compress` at q95 that must succeed: the result (stderr has the notices) and the output's pixels."""
    res = compress_cli(str(src), "-o", str(out), "--model", str(model), "-q", "95", "--overwrite", *extra)
    assert res.exit_code == 0, res.output
    return res, decode_jpeg(out.read_bytes())


def batch_cli(src: Path, dst: Path, model: Path, *extra: str):
    return runner.invoke(app, ["batch", str(src), str(dst), "--model", str(model), "-q", "70", *extra])


def two_inputs(tmp_path: Path) -> tuple[Path, Path, bytes]:
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    dst.mkdir()
    write_photo(src / "a.png", seed=1)
    write_photo(src / "b.png", seed=2)
    return src, dst, (src / "b.png").read_bytes()


# ---------------------------------------------------------------- case 1: links inside OUT
def test_case1_batch_never_writes_through_a_link_in_out_even_with_overwrite(tmp_path, model_path):  # noqa: F811
    src, dst, b_before = two_inputs(tmp_path)
    (dst / "a.jpg").symlink_to(src / "b.png")
    res = batch_cli(src, dst, model_path, "--overwrite")
    assert res.exit_code == 1, res.output
    assert "symbolic link" in res.output
    assert (src / "b.png").read_bytes() == b_before  # the other input is untouched
    assert (dst / "a.jpg").is_symlink()
    expected = Encoder(str(model_path), device="cpu").compress(b_before, quality=70).data
    assert (dst / "b.jpg").read_bytes() == expected  # encoded from the intact input


def test_case1_a_recorded_output_swapped_for_a_link_is_not_written_through(tmp_path, model_path):  # noqa: F811
    src, dst, b_before = two_inputs(tmp_path)
    assert batch_cli(src, dst, model_path).exit_code == 0
    (dst / "a.jpg").unlink()
    (dst / "a.jpg").symlink_to(src / "b.png")
    write_photo(src / "a.png", seed=3)  # a changed input: the manifest says the batch owns a.jpg
    res = batch_cli(src, dst, model_path)
    assert res.exit_code == 1 and "symbolic link" in res.output, res.output
    assert (src / "b.png").read_bytes() == b_before


def test_case1_a_linked_folder_inside_out_is_not_entered(tmp_path, model_path):  # noqa: F811
    src, dst, _ = two_inputs(tmp_path)
    (src / "sub").mkdir()
    write_photo(src / "sub" / "c.png", seed=4)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (dst / "sub").symlink_to(elsewhere, target_is_directory=True)
    res = batch_cli(src, dst, model_path)
    assert res.exit_code == 1 and "symbolic link" in res.output, res.output
    assert list(elsewhere.iterdir()) == []
    assert (dst / "a.jpg").is_file() and (dst / "b.jpg").is_file()


def test_case1_manifest_log_and_lock_are_never_opened_through_links(tmp_path, model_path):  # noqa: F811
    src, dst, _ = two_inputs(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (dst / MANIFEST_NAME).symlink_to(victim)
    res = batch_cli(src, dst, model_path)
    assert_one_line_error(res, 2, "symbolic link")
    (dst / MANIFEST_NAME).unlink()
    (tmp_path / "run.log").symlink_to(victim)
    res = batch_cli(src, dst, model_path, "--log", str(tmp_path / "run.log"))
    assert_one_line_error(res, 2, "symbolic link")
    assert victim.read_text() == "keep"


# ---------------------------------------------------------------- case 2: special files as -o
def test_case2_a_fifo_as_output_is_refused_even_with_overwrite(tmp_path, model_path, no_model_load):  # noqa: F811
    src = write_photo(tmp_path / "x.png")
    fifo = tmp_path / "f.jpg"
    os.mkfifo(fifo)
    res = compress_cli(str(src), "-o", str(fifo), "--overwrite", "--model", str(model_path))
    assert_one_line_error(res, 2, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_case2_a_device_node_as_output_is_refused(tmp_path, model_path, no_model_load):  # noqa: F811
    src = write_photo(tmp_path / "x.png")
    node = tmp_path / "null.jpg"
    try:  # a private copy of /dev/null's node: the test never touches the system's
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    res = compress_cli(str(src), "-o", str(node), "--overwrite", "--model", str(model_path))
    assert_one_line_error(res, 2, "character device")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_case2_the_writer_refuses_special_entries_whatever_overwrite_says(tmp_path):
    os.mkfifo(tmp_path / "p.jpg")
    (tmp_path / "dir.jpg").mkdir()
    (tmp_path / "link.jpg").symlink_to(tmp_path / "real.jpg")
    (tmp_path / "real.jpg").write_bytes(b"old")
    for name, error in (("p.jpg", UnsafeWriteError), ("dir.jpg", IsADirectoryError), ("link.jpg", UnsafeWriteError)):
        for overwrite in (False, True):
            with pytest.raises(error):
                write_bytes_atomic(tmp_path / name, b"new", overwrite=overwrite)
    assert (tmp_path / "real.jpg").read_bytes() == b"old"


# ---------------------------------------------------------------- case 3: dangling link as -o
def test_case3_a_dangling_symlink_is_not_written_through(tmp_path, model_path, no_model_load):  # noqa: F811
    src = write_photo(tmp_path / "x.png")
    link = tmp_path / "out.jpg"
    link.symlink_to(tmp_path / "elsewhere.jpg")
    for extra in ([], ["--overwrite"]):
        res = compress_cli(str(src), "-o", str(link), "--model", str(model_path), *extra)
        assert_one_line_error(res, 2, "symbolic link")
    assert not (tmp_path / "elsewhere.jpg").exists() and link.is_symlink()


# ---------------------------------------------------------------- case 4: EXIF orientation types
def exif_block(order: bytes, kind: int, value: int) -> bytes:
    """A one-entry TIFF block by hand: orientation stored as `kind` (3 SHORT, 4 LONG, 9 SLONG)."""
    o = "<" if order == b"II" else ">"
    packed = struct.pack(o + {3: "H", 4: "I", 8: "h", 9: "i"}[kind], value).ljust(4, b"\x00")
    entry = struct.pack(o + "HHI", 0x0112, kind, 1) + packed
    return order + struct.pack(o + "HI", 42, 8) + struct.pack(o + "H", 1) + entry + struct.pack(o + "I", 0)


def jpeg_with_exif(exif: bytes) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def pillow_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    return exif.tobytes()


@pytest.mark.parametrize("source", [
    "pillow", *[f"{order.decode()}-{kind}" for order in (b"II", b"MM") for kind in (3, 4, 8, 9)]])
def test_case4_orientation_reset_for_every_integer_type_and_byte_order(encoder, source):
    if source == "pillow":
        exif = pillow_exif()
    else:
        order, kind = source.split("-")
        exif = b"Exif\x00\x00" + exif_block(order.encode(), int(kind), 6)
    data = jpeg_with_exif(exif)
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6
    result = encoder.compress(data, quality=80)
    with Image.open(io.BytesIO(result.data)) as im:
        assert im.getexif().get(0x0112) == 1
        assert im.size == (40, 64)  # upright pixels, and no tag that rotates them again


def test_case4_upright_exif_rewrites_long_values_whole():
    for order in (b"II", b"MM"):
        out = upright_exif(exif_block(order, 4, 0x00060000 if order == b"II" else 6))
        o = "<" if order == b"II" else ">"
        assert struct.unpack(o + "I", out[18:22])[0] == 1


# ---------------------------------------------------------------- case 5: numbers bounded
def test_case5_a_400_digit_budget_is_one_line_and_a_compress_error(tmp_path, model_path, encoder, no_model_load):  # noqa: F811
    src = write_photo(tmp_path / "x.png")
    for option in ("--max-bytes", "--quality", "--max-pixels"):
        res = compress_cli(str(src), option, "9" * 400, "--model", str(model_path))
        assert_one_line_error(res, 2)
    res = runner.invoke(app, ["batch", str(tmp_path), str(tmp_path / "o"), "--workers", "9" * 400,
                              "--model", str(model_path)])
    assert_one_line_error(res, 2, "workers")
    for kwargs in ({"max_bytes": "9" * 400}, {"max_bytes": 10**400}, {"quality": 10**400}, {"bpp": 10**400},
                   {"max_pixels": 10**400}, {"max_pixels": 10**13}):
        with pytest.raises(CompressError):
            encoder.compress(src, **kwargs)


# ---------------------------------------------------------------- case 6: hostile manifest lines
def test_case6_a_hostile_manifest_line_is_skipped_and_named(tmp_path, model_path):  # noqa: F811
    src, dst, _ = two_inputs(tmp_path)
    (dst / MANIFEST_NAME).write_bytes(b"[" * 200_000 + b"\n" + b"x" * (3 * MAX_MANIFEST_LINE) + b"\n"
                                      + b"{" * 5000 + b"\n" + b'{"event": "release", "output": "z.jpg"}\n')
    res = batch_cli(src, dst, model_path)
    assert res.exit_code == 0, res.output
    assert "encoded 2 image(s)" in res.output
    assert "3 unreadable line(s)" in res.output and "line 1, 2, 3" in res.output


def test_case6_the_reader_never_holds_an_overlong_line(tmp_path):
    path = tmp_path / MANIFEST_NAME
    good = json.dumps({"event": "done", "src": "a.png", "output": "a.jpg", "sha256": "0", "options": {}})
    path.write_bytes(b"[" * (10 * MAX_MANIFEST_LINE) + b"\n" + good.encode() + b"\n" + b"]" * 999)
    m = Manifest(path)
    assert m.skipped == [1, 3] and "a.png" in m.finished


# ---------------------------------------------------------------- case 7: transparency
def rgba_png(path: Path) -> Path:
    a = np.zeros((32, 48, 4), np.uint8)
    a[..., 0] = 200
    a[:, :24, 3] = 255  # left half opaque red, right half fully transparent
    Image.fromarray(a, "RGBA").save(path)
    return path


def test_case7_transparency_is_flattened_with_a_notice_and_a_stated_background(tmp_path, model_path):  # noqa: F811
    src = rgba_png(tmp_path / "t.png")
    res, px = encoded_cli(src, tmp_path / "t.jpg", model_path)
    assert "notice:" in res.stderr and "transparency flattened onto the background #ffffff" in res.stderr
    assert px[:, 30:].mean() > 230  # white behind the transparent half
    res, px = encoded_cli(src, tmp_path / "t.jpg", model_path, "--background", "black", "--json")
    assert px[:, 30:].mean() < 25 and "#000000" in res.stderr
    res = compress_cli(str(src), "-o", str(tmp_path / "e.jpg"), "--model", str(model_path), "--alpha", "error")
    assert_one_line_error(res, 2, "transparency")
    res = compress_cli(str(src), "--model", str(model_path), "--background", "no-such-colour")
    assert_one_line_error(res, 2, "background")


def test_case7_result_and_warning_say_so_and_an_all_zero_alpha_is_padding(encoder):
    bgrx = np.zeros((32, 48, 4), np.uint8)
    bgrx[..., :3] = (30, 90, 150)
    with pytest.warns(ContentChangeWarning, match="padding"):
        result = encoder.compress(bgrx, quality=95)
    assert any("padding" in n for n in result.notices) and result.summary()["notices"]
    assert abs(decode_jpeg(result.data).mean(axis=(0, 1)) - (30, 90, 150)).max() < 8  # not all white
    opaque = bgrx.copy()
    opaque[..., 3] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContentChangeWarning)
        assert encoder.compress(opaque, quality=95).notices == ()


def test_case7_grey_with_alpha_on_a_coloured_background_stays_colour(encoder):
    la = np.zeros((24, 32, 2), np.uint8)
    la[..., 0] = 128
    la[:, 16:, 1] = 255
    with pytest.warns(ContentChangeWarning):
        result = encoder.compress(la, quality=95, background="#ff0000")
    px = decode_jpeg(result.data)
    assert px[:, :12, 0].mean() > 200 and px[:, :12, 1].mean() < 60  # red where it was transparent


# ---------------------------------------------------------------- case 8: several frames
def gif(path: Path) -> Path:
    frames = [Image.new("RGB", (32, 24), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


def test_case8_multi_frame_inputs_say_which_frame_was_used(tmp_path, model_path):  # noqa: F811
    src, out = gif(tmp_path / "anim.gif"), tmp_path / "anim.jpg"
    res, px = encoded_cli(src, out, model_path)
    assert "3 frames" in res.stderr and "frame 0" in res.stderr
    assert px.mean(axis=(0, 1)).argmax() == 0  # red: the first frame
    _, px = encoded_cli(src, out, model_path, "--frame", "2")
    assert px.mean(axis=(0, 1)).argmax() == 2  # blue: the third
    res = compress_cli(str(src), "-o", str(out), "--model", str(model_path), "--frame", "5", "--overwrite")
    assert_one_line_error(res, 2, "frame 5")


def test_case8_multi_page_tiff_and_apng_are_counted():
    pages = [Image.new("RGB", (16, 16), (k * 100, 0, 0)) for k in range(2)]
    for fmt in ("TIFF", "PNG"):
        buf = io.BytesIO()
        pages[0].save(buf, fmt, save_all=True, append_images=pages[1:])
        loaded = load_image(buf.getvalue(), frame=1)
        assert loaded.frames == 2 and loaded.pixels[0, 0, 0] == 100 and "2 frames" in loaded.notices[0]


# ---------------------------------------------------------------- case 9: priority checked
@pytest.mark.parametrize("priority", [
    np.full((4, 4), np.nan), np.full((4, 4), np.inf), -np.ones((4, 4)), np.ones(5), np.ones((2, 2, 2)),
    np.array([["a", "b"]]), np.zeros((0, 3))])
def test_case9_priority_is_checked_like_every_option(encoder, priority):
    with pytest.raises(CompressError, match="priority"):
        encoder.compress(np.zeros((16, 16, 3), np.uint8), priority=priority)


# ---------------------------------------------------------------- case 10: 8-bit data in uint16
def test_case10_uint16_holding_8_bit_values_is_warned(encoder):
    arr = np.full((16, 24, 3), 200, np.uint16)
    with pytest.warns(ContentChangeWarning, match="uint16"):
        result = encoder.compress(arr, quality=90)
    assert any("below 256" in n for n in result.notices)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContentChangeWarning)
        encoder.compress(arr * 257, quality=90)  # real 16-bit data: nothing to say


# ---------------------------------------------------------------- case 11: OUT inside IN
def test_case11_images_already_in_out_inside_in_are_named(tmp_path, model_path):  # noqa: F811
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_photo(src / "a.png")
    write_photo(src / "sub" / "mine.png", seed=5)
    res = batch_cli(src, src / "sub", model_path)
    assert res.exit_code == 0, res.output
    assert "1 image(s) already in" in res.output and "never scanned" in res.output
    res = batch_cli(src, src / "sub", model_path)  # the batch's own a.jpg is not counted as foreign
    assert "1 image(s) already in" in res.output


# ---------------------------------------------------------------- case 12: the smaller ones
def test_case12_tiny_bpp_says_why_without_inventing_metadata(encoder):
    with pytest.raises(CompressError) as err:
        encoder.compress(np.zeros((32, 32, 3), np.uint8), bpp=1e-9)
    assert "ICC" not in str(err.value) and "too small" in str(err.value)


@pytest.mark.parametrize("device", ["meta", "mps", "cuda:99", "nonsense"])
def test_case12_unusable_devices_fail_before_the_model_loads(tmp_path, model_path, no_model_load, device):  # noqa: F811
    src = write_photo(tmp_path / "x.png")
    assert_one_line_error(compress_cli(str(src), "--device", device, "--model", str(model_path)), 2, "--device")


def test_case12_usage_errors_are_one_line(tmp_path, model_path, no_model_load):  # noqa: F811
    src = write_photo(tmp_path / "x.png")
    assert_one_line_error(compress_cli(str(src), "--quality", "abc"), 2, "--quality")
    assert_one_line_error(compress_cli(), 2, "<stdin>")  # no source: stdin, here empty
    assert_one_line_error(runner.invoke(app, ["batch", str(tmp_path)]), 2, "Missing argument")
    assert_one_line_error(runner.invoke(app, ["compress", str(src), "--no-such-option"]), 2, "no-such-option")


def test_case12_batch_errors_name_the_path(tmp_path, model_path):  # noqa: F811
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "broken.png").write_bytes(b"12345")
    res = batch_cli(src, dst, model_path)
    assert res.exit_code == 1
    assert "broken.png" in res.output.split("failed:")[1] and "<5 bytes>" not in res.output


def test_case12_a_jpeg_is_never_named_as_another_format(tmp_path, model_path, no_model_load):  # noqa: F811
    src = write_photo(tmp_path / "x.png")
    assert_one_line_error(compress_cli(str(src), "-o", str(tmp_path / "out.png"), "--model", str(model_path)),
                          2, ".jpg")
    assert not (tmp_path / "out.png").exists()


def test_case12_an_unusual_suffix_gets_a_notice(tmp_path, model_path):  # noqa: F811
    src = write_photo(tmp_path / "x.png")
    res = compress_cli(str(src), "-o", str(tmp_path / "out.bin"), "--model", str(model_path), "--device", "cpu")
    assert res.exit_code == 0 and "notice:" in res.stderr and "JPEG" in res.stderr


def test_case12_a_checkpoint_without_its_digest_warns(tmp_path, model_path):  # noqa: F811
    from safetensors import safe_open
    from safetensors.torch import save_file

    from sspnet.zoo import DIGEST_KEY, UncheckedWeightsWarning, model_from_checkpoint

    with safe_open(str(model_path), framework="pt") as f:
        meta = {k: v for k, v in (f.metadata() or {}).items() if k != DIGEST_KEY}
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    stripped = tmp_path / "nodigest.safetensors"
    save_file(state, str(stripped), metadata=meta)
    with pytest.warns(UncheckedWeightsWarning, match="no SHA-256"):
        model_from_checkpoint(stripped)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncheckedWeightsWarning)
        model_from_checkpoint(model_path)


# ---------------------------------------------------------------- case 13: decoder failures
def dds_with_unknown_pixel_format() -> bytes:
    """A DDS header whose pixel-format flags are 0: Pillow raises NotImplementedError for it."""
    header = struct.pack("<4s7I", b"DDS ", 124, 0x1007, 4, 4, 0, 0, 0) + b"\x00" * 44
    return header + struct.pack("<8I", 32, 0, 0, 0, 0, 0, 0, 0) + b"\x00" * 20 + b"\x00" * 64


def test_case13_a_decoder_s_not_implemented_error_is_a_read_error(encoder, tmp_path):
    data = dds_with_unknown_pixel_format()
    with pytest.raises(ImageReadError, match="NotImplementedError"):
        encoder.compress(data)
    (tmp_path / "x.dds").write_bytes(data)
    with pytest.raises(ImageReadError, match="x.dds"):
        encoder.compress(tmp_path / "x.dds")


def test_case7_ssm_says_when_it_flattened_transparency(tmp_path, model_path):  # noqa: F811
    pristine = rgba_png(tmp_path / "t.png")
    distorted = tmp_path / "d.png"
    Image.open(pristine).convert("RGB").save(distorted)
    res = runner.invoke(app, ["ssm", str(pristine), str(distorted), "-o", str(tmp_path / "s.png"),
                              "--model", str(model_path), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "notice:" in res.stderr and "t.png" in res.stderr and "d.png" not in res.stderr
