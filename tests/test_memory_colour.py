"""Issue 11, cases 7 and 8: bounded memory, and the photo's colour and metadata kept.

On a tiny random-weight checkpoint: candidates are scored at the model's resolution (no
full-size array per candidate), `max_pixels` refuses oversized images from the header, running
out of memory is a CompressError; ICC profiles and EXIF (orientation reset to 1) reach the
output unless `strip=True`, greyscale sources give 1-component JPEGs, components are numbered
1, 2, 3 as JFIF says, and carried metadata counts against a byte budget.
"""
from __future__ import annotations

import io
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageCms

from sspcodec import CompressError, Encoder
from sspcodec.backends.markers import APP2, component_ids, segments
from sspcodec.metadata import ImageMeta, meta_from_header, upright_exif
from sspcodec.scoring import Score
from sspcodec.source import read_source
from sspnet import build_model, save_checkpoint
from sspnet.files.images import ImageReadError, read_image
from sspnet.net.configs import CONFIGS

ORIENTATION, MAKE = 0x0112, 0x010F


def _photo(h: int = 72, w: int = 104, seed: int = 0) -> np.ndarray:
    """Gradients, a red block in the top-left quarter (to see rotations) and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 64 * 4], -1).astype(np.float64)
    img[: h // 3, : w // 3] = [230, 30, 30]
    return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Encoder:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(build_model(replace(CONFIGS["default"], input_size=(64, 96))), path)
    return Encoder(str(path), device="cpu")


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _big_profile(size: int) -> bytes:
    """A profile-shaped blob of `size` bytes (RGB colour space in its header) for chunking."""
    head = bytearray(_srgb_profile())
    head[0:4] = size.to_bytes(4, "big")
    return bytes(head) + bytes(range(256)) * ((size - len(head)) // 256) + b"\x07" * ((size - len(head)) % 256)


# ---------------- memory (case 7) ----------------
def test_maps_are_kept_at_the_model_resolution(encoder):
    rgb = _photo(300, 500)
    r = encoder.compress(rgb, quality=80)
    canvas = encoder.model.config.input_size
    for small in (r.saliency_lowres, r.ssm_lowres, r.baseline_ssm_lowres):
        assert small.shape[0] <= canvas[0] and small.shape[1] <= canvas[1]
    assert r.ssm.shape == r.saliency.shape == r.baseline_ssm.shape == (300, 500)
    assert r.predicted_shift == pytest.approx(float(r.ssm_lowres.mean()))


def test_peak_memory_does_not_grow_with_the_candidates(encoder):
    """Traced (numpy and Python) allocations during one compress of a 1280x720 image. Before the
    fix every candidate was decoded at full size at once and kept three full-size float maps:
    about 200 bytes per pixel; streamed scoring needs about 40 (most of it fixed-size chunks)."""
    rgb = _photo(720, 1280, seed=3)
    encoder.compress(rgb[:64, :64])  # warm up lazy imports and caches outside the measurement
    tracemalloc.start()
    try:
        encoder.compress(rgb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak / rgb[..., 0].size < 80


def test_max_pixels_refuses_from_the_header(encoder, tmp_path):
    big = tmp_path / "blank.png"
    Image.new("L", (4000, 3000)).save(big)  # 12 MP, a few KB on disk
    with pytest.raises(ImageReadError, match="exceeds the limit of 1,000,000"):
        encoder.compress(big, max_pixels=1_000_000)
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        encoder.compress(_photo(), max_pixels=100)


def test_running_out_of_memory_is_a_compress_error(encoder, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(encoder.strategy, "run", exhausted)
    with pytest.raises(CompressError, match="out of memory encoding this 104x72 image"):
        encoder.compress(_photo())


# ---------------- colour and metadata (case 8) ----------------
@pytest.mark.parametrize("as_bytes", [False, True])
def test_icc_profile_is_carried(encoder, tmp_path, as_bytes):
    profile = _srgb_profile()
    src = tmp_path / "tagged.png"
    Image.fromarray(_photo()).save(src, icc_profile=profile)
    r = encoder.compress(src.read_bytes() if as_bytes else src)
    assert _open(r.data).info.get("icc_profile") == profile
    assert r.bytes == len(r.data) and r.baseline.bytes >= r.bytes
    stripped = encoder.compress(src, strip=True)
    assert "icc_profile" not in _open(stripped.data).info
    assert len(stripped.data) < len(r.data)


def test_large_icc_profile_is_split_into_app2_chunks(encoder, tmp_path):
    profile = _big_profile(150_000)
    src = tmp_path / "wide.png"
    Image.fromarray(_photo()).save(src, icc_profile=profile)
    r = encoder.compress(src)
    chunks = [r.data[s + 4 : e] for m, s, e in segments(r.data) if m == APP2]
    assert [c[12:14] for c in chunks] == [b"\x01\x03", b"\x02\x03", b"\x03\x03"]
    assert max(len(c) for c in chunks) == 14 + 65_519
    assert _open(r.data).info["icc_profile"] == profile


def test_a_cmyk_profile_is_not_put_on_rgb_pixels(encoder):
    cmyk = bytearray(_srgb_profile())
    cmyk[16:20] = b"CMYK"
    im = Image.fromarray(_photo()).convert("CMYK")
    buf = io.BytesIO()
    im.save(buf, "JPEG", icc_profile=bytes(cmyk))
    r = encoder.compress(buf.getvalue())
    assert "icc_profile" not in _open(r.data).info


def test_exif_orientation_6_comes_out_upright_with_orientation_1(encoder, tmp_path):
    stored = _photo()  # 104 wide, 72 high, red block top-left
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "TestCam"
    src = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(src, quality=95, exif=exif.tobytes())
    r = encoder.compress(src, quality=90)
    out = _open(r.data)
    assert out.size == (72, 104)  # rotated 90 degrees: upright
    tags = out.getexif()
    assert tags[ORIENTATION] == 1 and tags[MAKE] == "TestCam"
    upright = read_image(src)  # the reader's rotation is what the pixels show
    got = np.asarray(out.convert("RGB")).astype(int)
    assert np.abs(got - upright).mean() < 12
    assert "exif" not in _open(encoder.compress(src, strip=True).data).info


def test_upright_exif_patches_only_the_orientation():
    exif = Image.Exif()
    exif[ORIENTATION] = 8
    exif[MAKE] = "TestCam"
    raw = exif.tobytes()
    fixed = upright_exif(raw)
    assert fixed is not None and len(fixed) == len(raw) - 6  # the "Exif" header is dropped
    tags = Image.Exif()
    tags.load(fixed)
    assert tags[ORIENTATION] == 1 and tags[MAKE] == "TestCam"
    assert upright_exif(b"Exif\x00\x00garbage") is None and upright_exif(b"") is None


@pytest.mark.parametrize("mode", ["L", "LA", "I;16", "array"])
def test_greyscale_sources_give_greyscale_jpegs(encoder, tmp_path, mode):
    grey = _photo()[..., 1]
    if mode == "array":
        src: object = grey
    else:
        src = tmp_path / f"grey_{mode.replace(';', '')}.png"
        im = Image.fromarray(grey)
        if mode == "LA":
            im = Image.merge("LA", [im, Image.new("L", im.size, 255)])
        elif mode == "I;16":
            im = Image.fromarray(grey.astype(np.uint16) * 257)
        im.save(src)
    assert read_source(src).meta.greyscale
    r = encoder.compress(src)
    out = _open(r.data)
    assert out.mode == "L" and component_ids(r.data) == [1]
    assert np.abs(np.asarray(out).astype(int) - grey).mean() < 6
    small = encoder.compress(src, max_bytes=r.bytes - 200)
    assert small.bytes <= r.bytes - 200 and _open(small.data).mode == "L"


def test_rgb_with_equal_channels_stays_rgb(encoder):
    grey = _photo()[..., 1]
    r = encoder.compress(np.repeat(grey[..., None], 3, axis=2))
    assert _open(r.data).mode == "RGB" and component_ids(r.data) == [1, 2, 3]


def test_component_ids_are_jfif(encoder, monkeypatch):
    """On an encoding the search rewrote in the DCT domain (the writer that numbered them 0, 1,
    2): the plain JPEG is made to look worst, so a reallocated candidate wins."""
    encoder = Encoder(encoder.model, method="search")  # the rd default rewrites the DCT anyway
    real_run = encoder.strategy.run

    def run(pixels, priority, target, plain, score, **kw):
        def tilted(datas):
            return [Score(s.ssm + 1.0, -np.inf) if d == plain.data else s for d, s in zip(datas, score(datas))]

        return real_run(pixels, priority, target, plain, tilted, **kw)

    monkeypatch.setattr(encoder.strategy, "run", run)
    r = encoder.compress(_photo(), quality=70)
    assert r.quality_map.min() < r.quality_map.max()  # not the plain JPEG
    assert component_ids(r.data) == [1, 2, 3]


def test_carried_metadata_counts_against_max_bytes(encoder, tmp_path):
    rgb = _photo(seed=5)
    src = tmp_path / "tagged.png"
    Image.fromarray(rgb).save(src, icc_profile=_big_profile(3_000))
    budget = len(encoder.plain(rgb, 60)) + 3_000
    r = encoder.compress(src, max_bytes=budget)
    assert r.bytes <= budget and len(_open(r.data).info["icc_profile"]) == 3_000
    assert r.baseline.bytes <= budget
    with pytest.raises(CompressError, match="strip"):
        encoder.compress(src, max_bytes=3_200)
    assert encoder.compress(src, max_bytes=3_200 + len(encoder.plain(rgb, 5)), strip=True).bytes <= 3_200 + len(
        encoder.plain(rgb, 5)
    )


def test_a_header_without_metadata_gives_none():
    assert meta_from_header(None, {}) == ImageMeta()
    assert meta_from_header("RGB", {"exif": b"not TIFF"}) == ImageMeta()  # unparseable EXIF is dropped
    assert meta_from_header("I;16", {}).greyscale
