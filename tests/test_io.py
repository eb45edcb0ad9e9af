"""Edge I/O: image reading rules, atomic writes, size parsing."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sspcodec.batch.entries import remove_temp_files
from sspcodec.sizes import parse_size
from sspnet.files import images as sio
from sspnet.files import mapfiles, outputs
from sspnet.files.images import ImageReadError, read_image
from sspnet.files.outputs import UnsafeWriteError, write_bytes_atomic


def png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def marked_rgb(h: int = 6, w: int = 10) -> np.ndarray:
    """Distinct colours in the corners so any flip/rotation is detectable."""
    a = np.zeros((h, w, 3), np.uint8)
    a[0, 0] = (255, 0, 0)
    a[0, -1] = (0, 255, 0)
    a[-1, 0] = (0, 0, 255)
    return a


# --------------------------------------------------------------------------
# read_image
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "orientation,transform",
    [
        (1, lambda a: a),
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # stored rotated: display = 90 deg clockwise
        (8, lambda a: np.rot90(a, 1)),
        (2, lambda a: a[:, ::-1]),
    ],
)
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, transform) -> None:
    a = marked_rgb()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(a).save(path, exif=exif.tobytes())
    np.testing.assert_array_equal(read_image(path), transform(a))
    with Image.open(path) as im:  # PIL input goes through the same path
        np.testing.assert_array_equal(read_image(im), transform(a))


def test_rgb_from_path_bytes_array_and_pil(tmp_path: Path) -> None:
    a = marked_rgb()
    path = tmp_path / "a.png"
    Image.fromarray(a).save(path)
    for src in (path, str(path), path.read_bytes(), bytearray(path.read_bytes()), a, Image.fromarray(a)):
        out = read_image(src)
        assert out.dtype == np.uint8 and out.shape == (6, 10, 3)
        np.testing.assert_array_equal(out, a)
    assert read_image(a) is not a  # never hands back the caller's buffer


def test_mode_l_and_1() -> None:
    g = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    out = read_image(png_bytes(Image.fromarray(g, "L")))
    np.testing.assert_array_equal(out, np.repeat(g[:, :, None], 3, axis=2))
    bw = Image.fromarray(g > 100).convert("1")
    assert set(np.unique(read_image(png_bytes(bw)))) <= {0, 255}


def test_rgba_composited_on_white_or_dropped() -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish
    rgba[0, 0, 3] = 255  # opaque
    rgba[0, 1, 3] = 0  # transparent
    rgba[0, 2, 3] = 128  # half
    data = png_bytes(Image.fromarray(rgba, "RGBA"))
    white = read_image(data)
    np.testing.assert_array_equal(white[0, 0], (200, 0, 0))
    np.testing.assert_array_equal(white[0, 1], (255, 255, 255))
    np.testing.assert_array_equal(white[0, 2], (227, 127, 127))  # 200*a + 255*(1-a) = 227.4, a=128/255
    dropped = read_image(data, alpha="drop")
    np.testing.assert_array_equal(dropped[..., 0], 200)
    np.testing.assert_array_equal(read_image(rgba), white)  # arrays follow the same rule


def test_la_and_palette_modes() -> None:
    la = Image.fromarray(np.array([[[10, 255], [10, 0]]], np.uint8), "LA")
    np.testing.assert_array_equal(read_image(png_bytes(la)), [[[10, 10, 10], [255, 255, 255]]])
    p = Image.fromarray(marked_rgb()).convert("P")
    np.testing.assert_array_equal(read_image(png_bytes(p)), marked_rgb())
    pt = Image.new("P", (2, 1))
    pt.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pt.putpixel((0, 0), 1)
    pt.putpixel((1, 0), 0)
    out = read_image(png_bytes(pt, transparency=0))  # index 0 is transparent
    np.testing.assert_array_equal(out, [[[255, 0, 0], [255, 255, 255]]])


def test_16bit_greyscale() -> None:
    g16 = np.array([[0, 257, 65535, 32896]], np.uint16)
    data = png_bytes(Image.fromarray(g16))
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode.startswith("I")
    out = read_image(data)
    np.testing.assert_array_equal(out[..., 0], [[0, 1, 255, 128]])
    np.testing.assert_array_equal(read_image(g16)[..., 2], [[0, 1, 255, 128]])


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    out = read_image(buf.getvalue())
    assert out.shape == (4, 4, 3)
    assert out[..., 0].min() > 230 and out[..., 1].max() < 25 and out[..., 2].max() < 25


def test_float_mode_and_array_dtypes() -> None:
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F")
    np.testing.assert_array_equal(read_image(f)[..., 0], [[0, 128, 255]])
    np.testing.assert_array_equal(read_image(np.array([[True, False]]))[..., 1], [[255, 0]])
    with pytest.raises(ImageReadError, match="dtype"):
        read_image(np.zeros((2, 2, 3), np.float64))
    with pytest.raises(ImageReadError, match="shape"):
        read_image(np.zeros((2, 2, 7), np.uint8))


def test_corrupt_file_names_file_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    with pytest.raises(ImageReadError) as err:
        read_image(bad)
    assert "holiday.png" in str(err.value)
    assert isinstance(err.value, ValueError)

    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    with pytest.raises(ImageReadError, match=r"notes\.jpg.*not a recognised image"):
        read_image(text)


def test_truncated_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = png_bytes(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png.*(truncated|corrupt)"):
        read_image(cut)


def test_missing_empty_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match="no data"):
        read_image(b"")
    with pytest.raises(TypeError):
        read_image(12345)  # type: ignore[arg-type]


def test_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (120, 100)).save(path)
    with pytest.raises(ImageReadError, match=r"big\.png.*12,000 pixels exceeds the limit of 10,000"):
        read_image(path, max_pixels=10_000)
    assert read_image(path, max_pixels=12_000).shape == (100, 120, 3)
    assert read_image(path, max_pixels=None).shape == (100, 120, 3)
    with pytest.raises(ImageReadError, match="exceeds"):
        read_image(np.zeros((100, 120, 3), np.uint8), max_pixels=10_000)
    assert sio.DEFAULT_MAX_PIXELS == 100_000_000


def test_image_size_matches_read_image(tmp_path: Path) -> None:
    """Sizes checked from the header agree with the pixels read later, EXIF rotation included."""
    a = marked_rgb()  # 6 x 10
    for orientation, expected in ((1, (10, 6)), (6, (6, 10)), (8, (6, 10)), (3, (10, 6))):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.png"
        Image.fromarray(a).save(path, exif=exif.tobytes())
        assert sio.image_size(path) == expected
        assert read_image(path).shape[1::-1] == expected
        assert sio.image_size(path, exif_orientation=False) == (10, 6)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="bad.png.*not a recognised image format"):
        sio.image_size(tmp_path / "bad.png")
    with pytest.raises(ImageReadError, match="file not found"):
        sio.image_size(tmp_path / "missing.png")


# --------------------------------------------------------------------------
# saliency-map files
# --------------------------------------------------------------------------
def test_map_png_round_trip_8_and_16_bit(tmp_path: Path) -> None:
    sm = np.linspace(-0.2, 1.2, 60, dtype=np.float32).reshape(6, 10)  # out of range on both ends
    for bits, top, dtype in ((16, 65535, np.uint16), (8, 255, np.uint8)):
        levels = mapfiles.read_map(mapfiles.encode_map_png(sm, bits))
        assert levels.dtype == dtype and levels.shape == (6, 10)
        np.testing.assert_array_equal(levels, np.rint(np.clip(sm, 0, 1) * top).astype(dtype))
        np.testing.assert_array_equal(levels, mapfiles.map_levels(sm, bits))
    path = tmp_path / "m.png"
    path.write_bytes(mapfiles.encode_map_png(sm))
    np.testing.assert_array_equal(mapfiles.read_map(path), mapfiles.map_levels(sm))  # path and bytes alike
    with pytest.raises(ValueError, match="8 or 16"):
        mapfiles.map_levels(sm, 12)


def test_read_map_accepts_grey_only(tmp_path: Path) -> None:
    g = (np.arange(60, dtype=np.uint8) * 4).reshape(6, 10)
    grey_rgb = mapfiles.encode_png(np.repeat(g[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(mapfiles.read_map(grey_rgb), g)  # a grey picture saved as RGB is a map
    with pytest.raises(ImageReadError, match="greyscale"):
        mapfiles.read_map(mapfiles.encode_png(marked_rgb()))
    with pytest.raises(ImageReadError, match="not a readable image"):
        mapfiles.read_map(b"garbage")
    with pytest.raises(ImageReadError, match="missing.png"):
        mapfiles.read_map(tmp_path / "missing.png")


def test_encode_png_is_lossless_rgb() -> None:
    a = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(mapfiles.encode_png(a)), a)  # channel order kept
    with pytest.raises(ValueError, match="uint8"):
        mapfiles.encode_png(a.astype(np.float32))


# --------------------------------------------------------------------------
# write_bytes_atomic
# --------------------------------------------------------------------------
def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    assert write_bytes_atomic(dest, b"first") == dest
    write_bytes_atomic(str(dest), memoryview(b"second"))
    assert dest.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]


def test_atomic_write_keeps_permissions(tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    dest.write_bytes(b"old")
    dest.chmod(0o640)
    write_bytes_atomic(dest, b"new")
    assert dest.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.jpg"
    write_bytes_atomic(fresh, b"x")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~outputs.current_umask()


@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_atomic_write_failure_preserves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    dest = tmp_path / "out.jpg"
    dest.write_bytes(b"precious")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    if failing == "replace":
        monkeypatch.setattr(sio.os, "replace", boom)
        data = b"new data"
    elif failing == "fsync":
        monkeypatch.setattr(sio.os, "fsync", boom)
        data = b"new data"
    else:  # fails half-way through the data, like a disk filling up
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, b):
                self.f.write(bytes(b)[:3])
                raise OSError(28, "No space left on device")

        monkeypatch.setattr(sio.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
        data = b"new data"
    with pytest.raises(OSError):
        write_bytes_atomic(dest, data)
    assert dest.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"], "temporary file left behind"


def test_atomic_write_interrupted_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sio.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(tmp_path / "new.jpg", b"data")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_refuses_to_clobber_the_input(tmp_path: Path) -> None:
    src = tmp_path / "photo.jpg"
    src.write_bytes(b"original")
    with pytest.raises(UnsafeWriteError, match="input file"):
        write_bytes_atomic(src, b"x", source=src)
    with pytest.raises(UnsafeWriteError):
        write_bytes_atomic(tmp_path / "." / "photo.jpg", b"x", source=[tmp_path / "other.png", str(src)])
    link = tmp_path / "alias.jpg"
    link.symlink_to(src)
    with pytest.raises(UnsafeWriteError):
        write_bytes_atomic(link, b"x", source=src)
    assert src.read_bytes() == b"original"
    write_bytes_atomic(src, b"replaced", source=src, overwrite_source=True)
    assert src.read_bytes() == b"replaced"
    write_bytes_atomic(tmp_path / "photo.out.jpg", b"ok", source=src)  # a different file is fine


def test_atomic_write_other_refusals(tmp_path: Path) -> None:
    dest = tmp_path / "a.jpg"
    dest.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        write_bytes_atomic(dest, b"new", overwrite=False)
    assert dest.read_bytes() == b"old"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_bytes_atomic(tmp_path / "missing" / "a.jpg", b"x")
    with pytest.raises(IsADirectoryError):
        write_bytes_atomic(tmp_path, b"x")


def test_atomic_write_never_writes_through_a_symlink(tmp_path: Path) -> None:
    """Issue 26: a link as the output is refused, even with overwrite (it used to be followed)."""
    target = tmp_path / "real.jpg"
    target.write_bytes(b"old")
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    with pytest.raises(UnsafeWriteError, match="symbolic link"):
        write_bytes_atomic(link, b"new", overwrite=True)
    assert link.is_symlink() and target.read_bytes() == b"old"


# --------------------------------------------------------------------------
# parse_size
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        ("150KB", 150_000),
        ("150kb", 150_000),
        ("150 kB", 150_000),
        ("150KiB", 153_600),
        ("1.5MB", 1_500_000),
        ("1.5 MiB", 1_572_864),
        ("2MiB", 2 * 1024 * 1024),
        ("1GB", 10**9),
        ("512B", 512),
        ("2048", 2048),
        (" 7 b ", 7),
        (".5KB", 500),
        (4096, 4096),
    ],
)
def test_parse_size(text, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "KB", "150K", "150M", "1.5.3MB", "-5KB", "150 kilobytes", "10 KB extra", "0", "0KB"]
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_parse_size_error_lists_units() -> None:
    with pytest.raises(ValueError, match="KiB"):
        parse_size("150K")
    with pytest.raises(TypeError):
        parse_size(True)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# issue 11: special files, one output policy (OutputPlan), temp-file sweeping
# --------------------------------------------------------------------------
def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for fn in (read_image, sio.image_size, mapfiles.read_map):
        with pytest.raises(ImageReadError, match="FIFO"):
            fn(fifo)
    with pytest.raises(ImageReadError, match="character device"):
        read_image(os.devnull)
    with pytest.raises(ImageReadError, match="directory"):
        sio.open_regular_file(tmp_path)


def test_image_size_takes_every_source_and_a_pixel_limit(tmp_path: Path) -> None:
    a = marked_rgb()
    data = png_bytes(Image.fromarray(a))
    assert sio.image_size(data) == sio.image_size(a) == sio.image_size(Image.fromarray(a)) == (10, 6)
    with pytest.raises(ImageReadError, match="exceeds the limit of 50"):
        sio.image_size(data, max_pixels=50)


def test_output_plan_checks_everything_before_any_work(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(b"input")
    os.link(src, tmp_path / "hard.jpg")
    (tmp_path / "soft.jpg").symlink_to(src)
    plan = outputs.OutputPlan(sources=[src], overwrite=True)
    for alias in ("in.png", "hard.jpg", "soft.jpg"):
        with pytest.raises(UnsafeWriteError, match="input"):
            plan.add(tmp_path / alias)
    plan.add(tmp_path / "out.jpg", "-o")
    with pytest.raises(UnsafeWriteError, match="--report and -o name the same file"):
        plan.add(tmp_path / "." / "out.jpg", "--report")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plan.add(tmp_path / "missing" / "r.png")
    with pytest.raises(IsADirectoryError):
        plan.add(tmp_path)
    (tmp_path / "exists.png").write_bytes(b"keep")
    with pytest.raises(outputs.OutputExistsError, match="--overwrite"):
        outputs.OutputPlan(sources=[src]).add(tmp_path / "exists.png")
    assert src.read_bytes() == b"input"


def test_output_plan_commit_loses_a_race_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "out.jpg"
    plan = outputs.OutputPlan()
    plan.add(out)
    out.write_bytes(b"written by another process meanwhile")
    with pytest.raises(outputs.OutputExistsError):
        plan.commit({out: b"ours"})
    assert out.read_bytes() == b"written by another process meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]
    with pytest.raises(FileExistsError):  # the plain writer too: a link, never a replace
        write_bytes_atomic(out, b"ours", overwrite=False)


def test_output_plan_writes_all_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a.jpg", tmp_path / "b.png"
    plan = outputs.OutputPlan()
    plan.add(first)
    plan.add(second)
    real_link, calls = os.link, []

    def failing_second(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_link(a, b)

    monkeypatch.setattr(sio.os, "link", failing_second)
    with pytest.raises(OSError, match="No space"):
        plan.commit({first: b"1", second: b"2"})
    assert list(tmp_path.iterdir()) == []  # the first file was taken back, no temp file left
    monkeypatch.setattr(sio.os, "link", real_link)
    assert plan.commit({first: b"1", second: b"2"}) == [first, second]
    assert first.read_bytes() == b"1" and second.read_bytes() == b"2"
    with pytest.raises(ValueError, match="not planned"):
        plan.commit({tmp_path / "c.jpg": b"3"})


def test_publish_falls_back_to_exclusive_create_without_hard_links(tmp_path, monkeypatch) -> None:
    import errno

    def no_links(a, b):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(sio.os, "link", no_links)
    dest = tmp_path / "a.jpg"
    write_bytes_atomic(dest, b"new", overwrite=False)
    assert dest.read_bytes() == b"new"
    with pytest.raises(outputs.OutputExistsError):
        write_bytes_atomic(dest, b"again", overwrite=False)
    assert dest.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]


def test_remove_temp_files_touches_only_the_writers_leftovers(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    stale = tmp_path / "sub" / f".a.jpg.x1y2z3{outputs.TEMP_SUFFIX}"
    stale.write_bytes(b"half")
    keep = [tmp_path / "a.jpg", tmp_path / ".hidden", tmp_path / f"visible{outputs.TEMP_SUFFIX}"]
    for p in keep:
        p.write_bytes(b"x")
    assert remove_temp_files(tmp_path) == 1
    assert not stale.exists() and all(p.exists() for p in keep)


def test_list_images_skips_the_excluded_folder(tmp_path: Path) -> None:
    (tmp_path / "enc" / "deep").mkdir(parents=True)
    for name in ("a.png", "b.JPG", "notes.txt", "enc/a.jpg", "enc/deep/b.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in sio.list_images(tmp_path, exclude=tmp_path / "enc")] == ["a.png", "b.JPG"]
    assert len(sio.list_images(tmp_path)) == 4


def test_raw_map_bytes_by_suffix() -> None:
    m = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(np.load(io.BytesIO(mapfiles.encode_raw_map(m, "x.npy"))), m)
    assert np.abs(mapfiles.read_map(mapfiles.encode_raw_map(m, "x.PNG")) / 65535 - m).max() < 1e-4
    with pytest.raises(ValueError, match="not .txt"):
        mapfiles.check_raw_map_suffix("x.txt")
