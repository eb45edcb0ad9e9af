"""Back-end registry and each JPEG back-end's encode/decode contract."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from sspcodec.backends import (
    BACKENDS,
    Backend,
    BackendUnavailableError,
    UnknownBackendError,
    available_backends,
    get_backend,
    read_dct,
    transcode_baseline,
)

try:
    import pyjpegli  # noqa: F401

    HAVE_JPEGLI = True
except ImportError:
    HAVE_JPEGLI = False

NO_JPEGLI = "pyjpegli not installed (pip install pyjpegli==0.3.2)"
ALL = ["turbo", "mozjpeg", pytest.param("jpegli", marks=pytest.mark.skipif(not HAVE_JPEGLI, reason=NO_JPEGLI))]


def make_image(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients plus mild noise: compressible yet not trivial."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(xx / 9.0)
    g = 128 + 100 * np.cos(yy / 7.0)
    b = 255 * (xx + yy) / (h + w)
    img = np.stack([r, g, b], axis=2) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def frame_markers(data: bytes) -> list[int]:
    """Marker codes before the first scan (SOF0=0xC0 baseline, 0xC2 progressive)."""
    out, i = [], 2
    assert data[:2] == b"\xff\xd8"
    while i < len(data):
        assert data[i] == 0xFF
        code = data[i + 1]
        out.append(code)
        if code == 0xDA:
            break
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return out


# --------------------------------------------------------------------------
def test_registry_lists_all_names() -> None:
    assert list(BACKENDS) == ["turbo", "mozjpeg", "jpegli"]
    avail = available_backends()
    assert {"turbo", "mozjpeg"} <= set(avail)
    assert ("jpegli" in avail) == HAVE_JPEGLI


def test_unknown_backend_error_lists_valid_names() -> None:
    with pytest.raises(UnknownBackendError) as err:
        get_backend("libjpeg-xyz")
    msg = str(err.value)
    assert "libjpeg-xyz" in msg and "turbo" in msg and "mozjpeg" in msg and "jpegli" in msg
    assert isinstance(err.value, ValueError)


def test_get_backend_is_case_insensitive_and_passes_instances() -> None:
    be = get_backend("TURBO")
    assert be.name == "turbo"
    assert get_backend(be) is be
    with pytest.raises(TypeError):
        get_backend(42)  # type: ignore[arg-type]


def test_jpegli_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyjpegli", None)  # makes `import pyjpegli` fail
    with pytest.raises(BackendUnavailableError, match=r"pip install pyjpegli==0\.3\.2"):
        get_backend("jpegli")
    assert "jpegli" not in available_backends()


@pytest.mark.parametrize("name", ALL)
def test_roundtrip(name: str) -> None:
    be = get_backend(name)
    assert isinstance(be, Backend) and be.name == name and be.supports_dct
    img = make_image()
    data = be.encode(img, 90)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    out = be.decode(data)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert psnr(img, out) > 30
    # any other decoder agrees on the content
    assert psnr(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), out) > 40


@pytest.mark.parametrize("name", ALL)
def test_default_output_is_baseline(name: str) -> None:
    """progressive=False must give a sequential baseline frame (SOF0) --
    mozjpeg in particular is progressive unless transcoded."""
    data = get_backend(name).encode(make_image(), 75)
    markers = frame_markers(data)
    assert 0xC0 in markers and 0xC2 not in markers


@pytest.mark.parametrize("name", ["turbo", "mozjpeg"])
def test_progressive_flag(name: str) -> None:
    data = get_backend(name).encode(make_image(), 75, progressive=True)
    assert 0xC2 in frame_markers(data)
    assert get_backend(name).decode(data).shape == (48, 64, 3)


@pytest.mark.parametrize("name", ["turbo", "mozjpeg"])
@pytest.mark.parametrize("sub,pillow_code", [("4:4:4", 0), ("4:2:2", 1), ("4:2:0", 2)])
def test_subsampling(name: str, sub: str, pillow_code: int) -> None:
    data = get_backend(name).encode(make_image(), 80, subsampling=sub)
    with Image.open(io.BytesIO(data)) as im:
        assert JpegImagePlugin.get_sampling(im) == pillow_code


@pytest.mark.parametrize("name", ["turbo", "mozjpeg"])
def test_optimize_makes_smaller_files(name: str) -> None:
    img = make_image(64, 96)
    be = get_backend(name)
    assert len(be.encode(img, 80, optimize=True)) < len(be.encode(img, 80, optimize=False))


@pytest.mark.parametrize("name", ALL)
def test_greyscale_and_odd_size(name: str) -> None:
    be = get_backend(name)
    grey = make_image(37, 53)[:, :, 1]
    out = be.decode(be.encode(grey, 85))
    if name == "jpegli":  # pyjpegli only writes colour files (documented)
        assert out.shape == (37, 53, 3)
        out = out[:, :, 1]
    assert out.shape == (37, 53)
    assert psnr(grey, out) > 30


def test_low_quality_is_baseline_8bit_tables() -> None:
    """jpeglib would write 16-bit tables at q<25 unless FORCE_BASELINE is set."""
    data = get_backend("turbo").encode(make_image(), 5)
    with Image.open(io.BytesIO(data)) as im:
        assert max(max(t) for t in im.quantization.values()) <= 255
    assert 0xC0 in frame_markers(data)


@pytest.mark.parametrize("name", ["turbo", "mozjpeg"])
def test_bad_arguments(name: str) -> None:
    be = get_backend(name)
    img = make_image()
    with pytest.raises(ValueError, match="quality"):
        be.encode(img, 0)
    with pytest.raises(ValueError, match="quality"):
        be.encode(img, 101)
    with pytest.raises(ValueError, match="subsampling"):
        be.encode(img, 80, subsampling="4:1:1")
    with pytest.raises(TypeError):
        be.encode(img.astype(np.float32), 80)
    with pytest.raises(ValueError):
        be.encode(np.zeros((4, 4, 5), np.uint8), 80)
    with pytest.raises(ValueError):
        be.decode(b"definitely not a jpeg" * 4)


@pytest.mark.skipif(not HAVE_JPEGLI, reason=NO_JPEGLI)
def test_jpegli_refuses_what_it_cannot_do() -> None:
    be = get_backend("jpegli")
    with pytest.raises(ValueError, match="4:2:0"):
        be.encode(make_image(), 80, subsampling="4:4:4")
    with pytest.raises(ValueError, match="progressive"):
        be.encode(make_image(), 80, progressive=True)
    with pytest.raises(ValueError):
        be.decode(b"\x00" * 32)


def test_rgba_alpha_is_dropped() -> None:
    img = make_image()
    rgba = np.concatenate([img, np.zeros(img.shape[:2] + (1,), np.uint8)], axis=2)
    be = get_backend("turbo")
    assert be.encode(rgba, 80) == be.encode(img, 80)


# --------------------------------------------------------------------------
# DCT-domain I/O
# --------------------------------------------------------------------------
def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("name", ["turbo", "mozjpeg"])
def test_transcode_baseline_is_lossless(name: str) -> None:
    prog = get_backend(name).encode(make_image(), 80, progressive=True)
    base = transcode_baseline(prog)
    markers = frame_markers(base)
    assert 0xC0 in markers and 0xC2 not in markers and markers.count(0xE0) == 1
    np.testing.assert_array_equal(_decode(base), _decode(prog))


@pytest.mark.parametrize("sub,factor", [("4:2:0", (2, 2)), ("4:2:2", (1, 2)), ("4:4:4", (1, 1))])
def test_read_dct_planes_and_sampling(sub: str, factor: tuple[int, int]) -> None:
    data = get_backend("turbo").encode(make_image(37, 53), 75, subsampling=sub)
    dct = read_dct(data)
    assert [p.name for p in dct.planes] == ["Y", "Cb", "Cr"]
    assert [p.component for p in dct.planes] == ["luma", "chroma", "chroma"]
    assert dct.chroma_factor == factor and dct.luma_grid[0] >= 5 and dct.luma_grid[1] >= 7
    assert dct.write() == transcode_baseline(data)
    zeroed = [np.zeros_like(p.coeffs) for p in dct.planes]
    flat = _decode(dct.write(zeroed))
    assert flat.std() == 0  # all coefficients 0: mid-grey everywhere
    assert dct.write() == transcode_baseline(data)  # writing new planes leaves the file's own intact
    with pytest.raises(ValueError, match="planes"):
        dct.write(zeroed[:1])
    grey = read_dct(get_backend("turbo").encode(make_image()[:, :, 0], 75))
    assert [p.name for p in grey.planes] == ["Y"] and grey.chroma_factor == (1, 1)


def test_metadata_markers_survive_a_transcode_but_encodes_carry_none() -> None:
    """Only the JFIF APP0 is replaced on a rewrite; EXIF, ICC and comments of a JPEG that has
    them are kept. The encoder's JPEGs are made from pixels, so they carry none."""
    exif = Image.Exif()
    exif[0x010E] = "a description"
    buf = io.BytesIO()
    Image.fromarray(make_image()).save(
        buf, "JPEG", quality=80, exif=exif.tobytes(), icc_profile=b"icc" * 40, comment=b"hi"
    )
    with Image.open(io.BytesIO(transcode_baseline(buf.getvalue()))) as im:
        assert {"exif", "icc_profile", "comment"} <= set(im.info)
    from sspcodec.quant import encode_with_quality_map

    with Image.open(io.BytesIO(encode_with_quality_map(make_image(), np.full((6, 8), 60.0)))) as im:
        assert not {"exif", "icc_profile", "comment"} & set(im.info)
    assert frame_markers(transcode_baseline(buf.getvalue())).count(0xE0) == 1


# --------------------------------------------------------------------------
# marker surgery: JFIF component ids, metadata segments
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("grey", [False, True])
def test_every_writer_numbers_components_as_jfif(name, grey) -> None:
    """libjpeg's DCT writer and mozjpeg number components 0, 1, 2; JFIF says 1, 2, 3."""
    from sspcodec.backends.markers import component_ids

    pixels = make_image()[:, :, 0] if grey else make_image()
    data = get_backend(name).encode(pixels, 80)
    n = 3 if name == "jpegli" or not grey else 1  # pyjpegli writes grey as three equal components
    assert component_ids(data) == list(range(1, n + 1))
    assert component_ids(transcode_baseline(data)) == list(range(1, n + 1))


def test_renumbering_keeps_every_scan_consistent() -> None:
    """A progressive file has many scans; each names components by id, so each is renumbered
    with the frame and the pixels decode exactly as before."""
    from sspcodec.backends.markers import SOS, component_ids, jfif_component_ids, segments

    data = get_backend("mozjpeg").encode(make_image(), 70, progressive=True)
    zero_based = bytearray(data)
    for marker, start, _end in segments(data):  # undo the fix: ids 0, 1, 2 everywhere
        if marker in (0xC0, 0xC2):
            for k in range(data[start + 9]):
                zero_based[start + 10 + 3 * k] -= 1
        elif marker == SOS:
            for k in range(data[start + 4]):
                zero_based[start + 5 + 2 * k] -= 1
    assert component_ids(bytes(zero_based)) == [0, 1, 2]
    fixed = jfif_component_ids(bytes(zero_based))
    assert fixed == data and sum(m == SOS for m, _, _ in segments(fixed)) > 3
    assert jfif_component_ids(data) is data  # already JFIF: untouched


def test_metadata_goes_after_the_jfif_header_and_icc_is_chunked() -> None:
    from sspcodec.backends.markers import APP0, APP1, APP2, ICC_CHUNK, insert_metadata, segments

    data = get_backend("turbo").encode(make_image(), 80)
    profile = b"\x00" * 16 + b"RGB " + bytes(range(256)) * 600  # 153,620 bytes: 3 chunks
    exif = b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    out = insert_metadata(data, profile, exif)
    order = [m for m, _, _ in segments(out)][:6]
    assert order == [0xD8, APP0, APP1, APP2, APP2, APP2]
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["icc_profile"] == profile and im.info["exif"] == b"Exif\x00\x00" + exif
        assert np.array_equal(np.asarray(im), _decode(data))
    assert ICC_CHUNK == 65_519
    grey_profile = profile[:16] + b"GRAY" + profile[20:]
    assert insert_metadata(data, grey_profile) == data  # a GRAY profile does not describe RGB


def test_marker_walker_refuses_what_is_not_a_jpeg() -> None:
    from sspcodec.backends.markers import ICC_CHUNK, MarkerError, component_ids, icc_segments, insert_metadata

    with pytest.raises(MarkerError, match="no SOI"):
        component_ids(b"\x89PNG....")
    data = get_backend("turbo").encode(make_image(), 80)
    with pytest.raises(MarkerError):
        component_ids(data[:100])
    with pytest.raises(MarkerError, match="255 APP2 chunks"):
        icc_segments(b"x" * (255 * ICC_CHUNK + 1))
    assert insert_metadata(data) == data
