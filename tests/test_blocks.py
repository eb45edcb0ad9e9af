"""Per-block quality inside one baseline JPEG (sspcodec.blocks)."""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sspcodec import blocks
from sspcodec.backends import get_backend

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
KODAK = SHARED / "images" / "kodak"
DJPEG = shutil.which("djpeg")

try:
    import pyjpegli  # noqa: F401

    HAVE_JPEGLI = True
except ImportError:
    HAVE_JPEGLI = False

BACKENDS = [
    "turbo",
    "mozjpeg",
    pytest.param("jpegli", marks=pytest.mark.skipif(not HAVE_JPEGLI, reason="pyjpegli not installed")),
]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def make_image(h: int = 96, w: int = 128, seed: int = 1) -> np.ndarray:
    """Edges, gradients and texture so every frequency band carries energy."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 90 * np.sin(xx / 5.0) * np.cos(yy / 11.0)
    g = 255 * ((xx // 12 + yy // 12) % 2) * 0.6 + 50
    b = 255 * xx / max(w - 1, 1)
    img = np.stack([r, g, b], axis=2) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def pil_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB") if im.mode != "L" else im).copy()


def cv2_decode(data: bytes) -> np.ndarray:
    import cv2

    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out is not None
    return out if out.ndim == 2 else cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def djpeg_decode(data: bytes) -> np.ndarray:
    res = subprocess.run([DJPEG, "-ppm"], input=data, capture_output=True, check=True, timeout=30)
    with Image.open(io.BytesIO(res.stdout)) as im:  # PPM, or PGM for greyscale
        return np.asarray(im).copy()


def frame_info(data: bytes) -> tuple[list[int], list[int]]:
    """(marker codes before the first scan, DQT precision nibbles)."""
    codes, precisions, i = [], [], 2
    assert data[:2] == b"\xff\xd8"
    while i < len(data):
        code = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        codes.append(code)
        if code == 0xDB:
            j = i + 4
            while j < i + 2 + length:
                pq = data[j] >> 4
                precisions.append(pq)
                j += 1 + 64 * (2 if pq else 1)
        if code == 0xDA:
            break
        i += 2 + length
    return codes, precisions


def assert_baseline(data: bytes) -> None:
    codes, precisions = frame_info(data)
    assert 0xC0 in codes, "not a baseline (SOF0) frame"
    assert not {0xC1, 0xC2, 0xC3} & set(codes)
    assert precisions and all(p == 0 for p in precisions), "16-bit quantisation tables"
    assert codes.count(0xE0) <= 1, "duplicated APP0/JFIF segment"
    assert data[-2:] == b"\xff\xd9"


def half_map(h: int, w: int, hi: float, lo: float) -> np.ndarray:
    m = np.full((h, w), hi)
    m[:, w // 2 :] = lo
    return m


# --------------------------------------------------------------------------
# quantisation tables
# --------------------------------------------------------------------------
@pytest.mark.parametrize("q", [1, 10, 25, 49, 50, 51, 75, 90, 99, 100])
def test_quality_table_matches_libjpeg(q: int) -> None:
    """Pillow calls jpeg_set_quality(q, force_baseline=TRUE): same tables."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=q)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        tables = im.quantization
    np.testing.assert_array_equal(blocks.quality_table(q, "luma"), np.reshape(tables[0], (8, 8)))
    np.testing.assert_array_equal(blocks.quality_table(q, "chroma"), np.reshape(tables[1], (8, 8)))


def test_quality_table_rejects_bad_input() -> None:
    for bad in (0, 101, 50.5):
        with pytest.raises(ValueError):
            blocks.quality_table(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        blocks.quality_table(50, "green")  # type: ignore[arg-type]


def test_quality_scale_is_monotone_and_exact_on_integers() -> None:
    q = np.linspace(1, 100, 991)
    s = blocks.quality_scale(q)
    assert np.all(np.diff(s) <= 0)
    assert blocks.quality_scale(30) == 5000 // 30 and blocks.quality_scale(80) == 40


# --------------------------------------------------------------------------
# requantize
# --------------------------------------------------------------------------
def laplacian_coeffs(bh: int, bw: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = 40.0 / (1.0 + np.add.outer(np.arange(8), np.arange(8)))  # energy falls with frequency
    c = rng.laplace(0, 1, (bh, bw, 8, 8)) * scale
    c[..., 0, 0] = rng.integers(-300, 300, (bh, bw))
    c[0, 0, 0, 1], c[0, 0, 0, 0], c[0, 1, 7, 7], c[0, 1, 0, 0] = 1023, 2047, -1023, -2047
    return np.round(c).astype(np.int16)


def test_requantize_never_increases_magnitude_and_stays_in_range() -> None:
    c = laplacian_coeffs(12, 17)
    qt = blocks.quality_table(90, "luma")
    bq = np.random.default_rng(3).uniform(5, 100, c.shape[:2])
    out = blocks.requantize(c, qt, bq, "luma")
    assert out.dtype == np.int16 and out.shape == c.shape
    assert np.all(np.abs(out.astype(int)) <= np.abs(c.astype(int)))
    assert np.all(np.sign(out) * np.sign(c) >= 0), "a coefficient changed sign"
    assert np.abs(out[..., 0, 0]).max() <= blocks.DC_LIMIT
    ac = out.copy()
    ac[..., 0, 0] = 0
    assert np.abs(ac).max() <= blocks.AC_LIMIT
    assert np.count_nonzero(out) < np.count_nonzero(c)


def test_requantize_keeps_blocks_at_base_quality() -> None:
    c = laplacian_coeffs(6, 7)
    qt = blocks.quality_table(80, "chroma")
    bq = np.full(c.shape[:2], 80.0)
    bq[2:4, 3:] = 100.0  # asking for *more* quality than the file has: no-op
    np.testing.assert_array_equal(blocks.requantize(c, qt, bq, "chroma"), c)
    # relative mode (foreign tables): q_b == q_base means untouched
    odd_table = np.arange(1, 65, dtype=np.uint16).reshape(8, 8)
    np.testing.assert_array_equal(
        blocks.requantize(c, odd_table, np.full(c.shape[:2], 70.0), "luma", q_base=70), c
    )


def test_requantize_matches_libjpeg_rounding_where_it_does_not_grow() -> None:
    """With Qt == 1 the result is libjpeg's quantisation at q_b, except that a
    magnitude is never rounded *up* (that would add error for no bits)."""
    c = laplacian_coeffs(4, 5)
    qb = blocks.quality_table(50, "luma").astype(np.float64)
    out = blocks.requantize(c, np.ones((8, 8)), np.full(c.shape[:2], 50.0), "luma", deadzone=0.0, mode="round")
    mag = np.abs(c).astype(np.float64)
    expected = np.sign(c) * np.minimum(np.floor(mag / qb + 0.5) * qb, mag)
    np.testing.assert_array_equal(out, expected.astype(np.int16))
    on_grid = np.floor(mag / qb + 0.5) * qb <= mag
    assert np.all((np.abs(out) % qb.astype(int) == 0)[on_grid])


def test_zero_mode_keeps_survivors_exact_and_zeroes_the_rest() -> None:
    """Default mode: an AC coefficient either survives unchanged or becomes 0 (only zeros save
    bits when the frame keeps the fine table); the DC, never dead-zoned, is kept exactly."""
    c = laplacian_coeffs(4, 5)
    qt = blocks.quality_table(90, "luma").astype(np.float64)
    qb = blocks.quality_table(50, "luma").astype(np.float64)
    dz = 0.15
    out = blocks.requantize(c, qt, np.full(c.shape[:2], 50.0), "luma", deadzone=dz)
    ac = np.ones((8, 8), bool)
    ac[0, 0] = False
    kept = np.abs(c) * qt >= (0.5 + dz) * qb
    assert np.array_equal(out[..., ac], np.where(kept, c, 0)[..., ac])
    rounded = blocks.requantize(c, qt, np.full(c.shape[:2], 50.0), "luma", deadzone=dz, mode="round")
    assert np.array_equal(out[..., 0, 0], np.where(rounded[..., 0, 0] != 0, c[..., 0, 0], 0))
    assert np.array_equal(out == 0, rounded == 0)
    with pytest.raises(ValueError, match="mode"):
        blocks.requantize(c, qt, np.full(c.shape[:2], 50.0), mode="fancy")


def test_requantize_is_idempotent_ish() -> None:
    c = laplacian_coeffs(16, 16, seed=5)
    qt = blocks.quality_table(85, "luma")
    bq = np.random.default_rng(1).uniform(10, 85, c.shape[:2])
    once = blocks.requantize(c, qt, bq, "luma")
    twice = blocks.requantize(once, qt, bq, "luma")
    assert np.all(np.abs(twice.astype(int)) <= np.abs(once.astype(int)))
    assert np.count_nonzero(twice != once) <= 0.01 * once.size
    no_dz = blocks.requantize(c, qt, bq, "luma", deadzone=0.0)
    np.testing.assert_array_equal(blocks.requantize(no_dz, qt, bq, "luma", deadzone=0.0), no_dz)


def test_deadzone_zeroes_more_but_spares_dc() -> None:
    c = laplacian_coeffs(10, 10, seed=2)
    qt = blocks.quality_table(90, "luma")
    bq = np.full(c.shape[:2], 40.0)
    zeros = [np.count_nonzero(blocks.requantize(c, qt, bq, "luma", deadzone=dz) == 0) for dz in (0.0, 0.2, 0.4)]
    assert zeros[0] < zeros[1] < zeros[2]
    dc_plain = blocks.requantize(c, qt, bq, "luma", deadzone=0.0)[..., 0, 0]
    dc_dz = blocks.requantize(c, qt, bq, "luma", deadzone=0.4)[..., 0, 0]
    np.testing.assert_array_equal(dc_plain, dc_dz)


def test_requantize_validates_inputs() -> None:
    c = laplacian_coeffs(2, 3)
    qt = blocks.quality_table(90)
    with pytest.raises(ValueError, match="shape"):
        blocks.requantize(c, qt, np.full((3, 2), 50.0))
    with pytest.raises(ValueError, match="NaN"):
        blocks.requantize(c, qt, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="deadzone"):
        blocks.requantize(c, qt, np.full((2, 3), 50.0), deadzone=0.5)
    with pytest.raises(ValueError):
        blocks.requantize(c[..., :4], qt, np.full((2, 3), 50.0))


# --------------------------------------------------------------------------
# map geometry
# --------------------------------------------------------------------------
def test_map_to_luma_grid() -> None:
    assert blocks.luma_block_shape(37, 53) == (5, 7)
    grid = np.arange(35, dtype=float).reshape(5, 7) + 10
    np.testing.assert_array_equal(blocks.map_to_luma_grid(grid, (37, 53)), grid)
    pix = half_map(37, 53, 90, 30)  # boundary at x=26, inside block column 3
    out = blocks.map_to_luma_grid(pix, (37, 53))
    assert out.shape == (5, 7)
    np.testing.assert_array_equal(out[:, :4], 90)  # max: the mixed block keeps 90
    np.testing.assert_array_equal(out[:, 4:], 30)
    mean = blocks.map_to_luma_grid(pix, (37, 53), reduce="mean")
    assert 30 < mean[0, 3] < 90
    coarse = blocks.map_to_luma_grid(np.array([[80.0, 20.0]]), (64, 64))  # any resolution
    assert coarse.shape == (8, 8) and coarse[0, 0] == pytest.approx(80) and coarse[0, -1] == pytest.approx(20)
    np.testing.assert_array_equal(blocks.map_to_luma_grid(np.array([[150.0]]), (8, 8)), [[100.0]])
    with pytest.raises(ValueError):
        blocks.map_to_luma_grid(np.full((4, 4), np.nan), (32, 32))
    with pytest.raises(ValueError):
        blocks.map_to_luma_grid(np.zeros((2, 2, 3)), (32, 32))


def test_luma_to_chroma_grid_takes_max_of_covered_blocks() -> None:
    lb = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], dtype=float)
    out = blocks.luma_to_chroma_grid(lb, (2, 2), (2, 2))
    np.testing.assert_array_equal(out, [[50, 60], [80, 90]])
    np.testing.assert_array_equal(blocks.luma_to_chroma_grid(lb, (3, 2), (1, 2)), [[20, 30], [50, 60], [80, 90]])
    np.testing.assert_array_equal(blocks.luma_to_chroma_grid(lb, (3, 3), (1, 1)), lb)


# --------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------
def test_uniform_map_matches_plain_encode() -> None:
    img = make_image()
    plain = get_backend("turbo").encode(img, 75)
    mapped = blocks.encode_with_quality_map(img, np.full((3, 3), 75.0))
    assert abs(len(mapped) - len(plain)) <= 0.10 * len(plain)
    assert abs(psnr(img, pil_decode(mapped)) - psnr(img, pil_decode(plain))) < 0.1
    assert_baseline(mapped)


@pytest.mark.parametrize("name", BACKENDS)
def test_half_low_quality_saves_bytes_and_keeps_the_good_half(name: str) -> None:
    img = make_image()
    h, w = img.shape[:2]
    be = get_backend(name)
    plain = pil_decode(be.encode(img, 90))
    data = blocks.encode_with_quality_map(img, half_map(h, w, 90, 30), backend=name)
    uniform = blocks.encode_with_quality_map(img, np.full((h, w), 90.0), backend=name)
    assert_baseline(data)
    assert len(data) < 0.9 * len(uniform)
    out = pil_decode(data)
    left, right = slice(0, w // 2), slice(w // 2, w)
    assert abs(psnr(img[:, left], out[:, left]) - psnr(img[:, left], plain[:, left])) < 0.1
    assert psnr(img[:, right], out[:, right]) < psnr(img[:, right], plain[:, right]) - 1.0


@pytest.mark.parametrize("name", BACKENDS)
def test_output_decodes_identically_everywhere(name: str) -> None:
    img = make_image(45, 67)  # odd size, partial MCUs
    data = blocks.encode_with_quality_map(img, half_map(45, 67, 85, 20), backend=name)
    ref = pil_decode(data)
    assert ref.shape == img.shape
    np.testing.assert_array_equal(cv2_decode(data), ref)
    if name != "jpegli":  # jpegli's own decoder is a different (higher precision) IDCT
        np.testing.assert_array_equal(get_backend(name).decode(data), ref)
    if DJPEG is None:
        pytest.skip("djpeg not installed (apt-get install libjpeg-turbo-progs)")
    np.testing.assert_array_equal(djpeg_decode(data), ref)


@pytest.mark.parametrize("sub", ["4:2:0", "4:2:2", "4:4:4"])
@pytest.mark.parametrize("hw", [(37, 53), (8, 8), (1, 1), (17, 16)])
def test_odd_sizes_and_subsamplings(hw: tuple[int, int], sub: str) -> None:
    h, w = hw
    img = make_image(h, w, seed=h * w)
    qmap = np.random.default_rng(0).uniform(10, 95, (h, w))
    data = blocks.encode_with_quality_map(img, qmap, subsampling=sub)
    assert_baseline(data)
    out = pil_decode(data)
    assert out.shape == (h, w, 3)
    np.testing.assert_array_equal(cv2_decode(data), out)


def test_greyscale_and_rgba_inputs() -> None:
    img = make_image(37, 53)
    grey = img[:, :, 0]
    data = blocks.encode_with_quality_map(grey, half_map(37, 53, 90, 25))
    assert_baseline(data)
    out = pil_decode(data)
    assert out.shape == (37, 53)
    np.testing.assert_array_equal(cv2_decode(data), out)
    assert psnr(grey[:, :24], out[:, :24]) > psnr(grey[:, 32:], out[:, 32:])
    rgba = np.concatenate([img, np.full((37, 53, 1), 7, np.uint8)], axis=2)
    qm = half_map(37, 53, 90, 25)
    assert blocks.encode_with_quality_map(rgba, qm) == blocks.encode_with_quality_map(img, qm)


def test_explicit_q_max_caps_the_map() -> None:
    img = make_image(32, 32)
    capped = blocks.encode_with_quality_map(img, np.full((4, 4), 95.0), q_max=70)
    assert len(capped) == len(blocks.encode_with_quality_map(img, np.full((4, 4), 70.0)))
    with pytest.raises(ValueError, match="q_max"):
        blocks.encode_with_quality_map(img, np.full((4, 4), 50.0), q_max=0)


def test_prefilter_saves_bytes_and_spares_high_quality_blocks() -> None:
    # fine texture is what the pre-filter is for (on sharp synthetic edges it can cost bytes)
    img = np.clip(np.random.default_rng(0).normal(128, 40, (96, 128, 3)), 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    qm = half_map(h, w, 90, 30)
    plain = blocks.encode_with_quality_map(img, qm)
    filtered = blocks.encode_with_quality_map(img, qm, prefilter=1.0)
    assert len(filtered) < len(plain)
    # the 16-px aligned high-quality half is bit-identical (luma and chroma MCUs)
    np.testing.assert_array_equal(pil_decode(filtered)[:, : w // 2 - 1], pil_decode(plain)[:, : w // 2 - 1])
    # and the pre-filter itself leaves q_max blocks untouched
    bq = blocks.map_to_luma_grid(qm, (h, w))
    pre = blocks.prefilter_image(img, bq, 90, 1.0)
    np.testing.assert_array_equal(pre[:, : w // 2], img[:, : w // 2])
    assert not np.array_equal(pre[:, w // 2 + 8 :], img[:, w // 2 + 8 :])
    with pytest.raises(ValueError):
        blocks.encode_with_quality_map(img, qm, prefilter=1.5)


def test_transcode_baseline_is_lossless() -> None:
    img = make_image()
    prog = get_backend("turbo").encode(img, 80, progressive=True)
    base = blocks.transcode_baseline(prog)
    assert_baseline(base)
    np.testing.assert_array_equal(pil_decode(base), pil_decode(prog))


def test_requantize_jpeg_checks_the_grid() -> None:
    data = get_backend("turbo").encode(make_image(32, 32), 80)
    with pytest.raises(ValueError, match="grid"):
        blocks.requantize_jpeg(data, np.full((3, 3), 50.0), 80)


def test_bad_quality_maps() -> None:
    img = make_image(16, 16)
    with pytest.raises(ValueError, match="NaN"):
        blocks.encode_with_quality_map(img, np.array([[np.nan]]))
    with pytest.raises(ValueError):
        blocks.encode_with_quality_map(img, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="deadzone"):
        blocks.encode_with_quality_map(img, np.full((2, 2), 50.0), q_max=80, deadzone=-0.1)


@pytest.mark.shared
@pytest.mark.skipif(not KODAK.is_dir(), reason=f"Kodak images not found at {KODAK} (../shared absent)")
def test_kodak_bytes_fall_as_background_quality_drops() -> None:
    img = np.asarray(Image.open(KODAK / "kodim01.png").convert("RGB"))
    h, w = img.shape[:2]
    sizes = [len(blocks.encode_with_quality_map(img, half_map(h, w, 85, q))) for q in (85, 70, 55, 40, 25, 10)]
    assert sizes[-1] < 0.85 * sizes[0]
    assert all(b <= a * 1.01 for a, b in itertools.pairwise(sizes)), sizes
