"""Per-block quality inside one baseline JPEG (sspcodec.quant): tables, requantisation, quality
maps, coefficient images and the one-call encoder."""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sspcodec import quant
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
    np.testing.assert_array_equal(quant.quality_table(q, "luma"), np.reshape(tables[0], (8, 8)))
    np.testing.assert_array_equal(quant.quality_table(q, "chroma"), np.reshape(tables[1], (8, 8)))


def test_quality_table_rejects_bad_input() -> None:
    for bad in (0, 101, 50.5):
        with pytest.raises(ValueError):
            quant.quality_table(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        quant.quality_table(50, "green")  # type: ignore[arg-type]


def test_quality_scale_is_monotone_and_exact_on_integers() -> None:
    q = np.linspace(1, 100, 991)
    s = quant.quality_scale(q)
    assert np.all(np.diff(s) <= 0)
    assert quant.quality_scale(30) == 5000 // 30 and quant.quality_scale(80) == 40
    smooth = quant.quality_scale(q, continuous=True)
    assert np.all(np.diff(smooth) < 0)  # strictly: sizes vary smoothly with quality
    low = q < 50  # the same rule, without libjpeg's integer division below 50
    np.testing.assert_array_equal(np.floor(smooth[low]), s[low])
    np.testing.assert_array_equal(smooth[~low], s[~low])
    assert quant.quality_scale(np.float32(33.3), continuous=True, dtype=np.float32).dtype == np.float32


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
    qt = quant.quality_table(90, "luma")
    bq = np.random.default_rng(3).uniform(5, 100, c.shape[:2])
    out = quant.requantize(c, qt, bq, "luma")
    assert out.dtype == np.int16 and out.shape == c.shape
    assert np.all(np.abs(out.astype(int)) <= np.abs(c.astype(int)))
    assert np.all(np.sign(out) * np.sign(c) >= 0), "a coefficient changed sign"
    assert np.abs(out[..., 0, 0]).max() <= quant.DC_LIMIT
    ac = out.copy()
    ac[..., 0, 0] = 0
    assert np.abs(ac).max() <= quant.AC_LIMIT
    assert np.count_nonzero(out) < np.count_nonzero(c)


def test_requantize_keeps_blocks_at_base_quality() -> None:
    c = laplacian_coeffs(6, 7)
    qt = quant.quality_table(80, "chroma")
    bq = np.full(c.shape[:2], 80.0)
    bq[2:4, 3:] = 100.0  # asking for *more* quality than the file has: no-op
    np.testing.assert_array_equal(quant.requantize(c, qt, bq, "chroma"), c)
    # relative mode (foreign tables): q_b == q_base means untouched
    odd_table = np.arange(1, 65, dtype=np.uint16).reshape(8, 8)
    np.testing.assert_array_equal(
        quant.requantize(c, odd_table, np.full(c.shape[:2], 70.0), "luma", q_base=70), c
    )


def test_requantize_matches_libjpeg_rounding_where_it_does_not_grow() -> None:
    """With Qt == 1 the result is libjpeg's quantisation at q_b, except that a
    magnitude is never rounded *up* (that would add error for no bits)."""
    c = laplacian_coeffs(4, 5)
    qb = quant.quality_table(50, "luma").astype(np.float64)
    out = quant.requantize(c, np.ones((8, 8)), np.full(c.shape[:2], 50.0), "luma", deadzone=0.0, mode="round")
    mag = np.abs(c).astype(np.float64)
    expected = np.sign(c) * np.minimum(np.floor(mag / qb + 0.5) * qb, mag)
    np.testing.assert_array_equal(out, expected.astype(np.int16))
    on_grid = np.floor(mag / qb + 0.5) * qb <= mag
    assert np.all((np.abs(out) % qb.astype(int) == 0)[on_grid])


def test_zero_mode_keeps_survivors_exact_and_zeroes_the_rest() -> None:
    """Default mode: an AC coefficient either survives unchanged or becomes 0 (only zeros save
    bits when the frame keeps the fine table); the DC, never dead-zoned, is kept exactly."""
    c = laplacian_coeffs(4, 5)
    qt = quant.quality_table(90, "luma").astype(np.float64)
    qb = quant.quality_table(50, "luma").astype(np.float64)
    dz = 0.15
    out = quant.requantize(c, qt, np.full(c.shape[:2], 50.0), "luma", deadzone=dz)
    ac = np.ones((8, 8), bool)
    ac[0, 0] = False
    kept = np.abs(c) * qt >= (0.5 + dz) * qb
    assert np.array_equal(out[..., ac], np.where(kept, c, 0)[..., ac])
    np.testing.assert_array_equal(out[..., 0, 0], c[..., 0, 0])
    rounded = quant.requantize(c, qt, np.full(c.shape[:2], 50.0), "luma", deadzone=dz, mode="round")
    assert np.array_equal((out == 0)[..., ac], (rounded == 0)[..., ac])
    with pytest.raises(ValueError, match="mode"):
        quant.requantize(c, qt, np.full(c.shape[:2], 50.0), mode="fancy")


def small_dc_coeffs(bh: int = 6, bw: int = 9) -> np.ndarray:
    """Near-neutral blocks: DC values of a few steps either side of mid-grey, no AC energy."""
    c = np.zeros((bh, bw, 8, 8), np.int16)
    c[..., 0, 0] = np.arange(bh * bw).reshape(bh, bw) % 13 - 6
    return c


@pytest.mark.parametrize("component", ["luma", "chroma"])
def test_low_quality_blocks_keep_their_dc_exactly(component: str) -> None:
    """Regression: zero mode used to zero a DC below half the coarse step, snapping near-neutral
    blocks to flat grey (and tinted ones to no tint) next to exact neighbours."""
    c = small_dc_coeffs()
    qt = quant.quality_table(95, component)
    bq = np.full(c.shape[:2], 5.0)  # DC step 16 * 1000 / 100 = 160 vs 2 in the file's table
    np.testing.assert_array_equal(quant.requantize(c, qt, bq, component)[..., 0, 0], c[..., 0, 0])
    old = quant.requantize(c, qt, bq, component, keep_dc=False)[..., 0, 0]
    assert np.count_nonzero(old) == 0 < np.count_nonzero(c[..., 0, 0]), "the switch no longer reproduces the bug"


def test_tinted_flat_background_keeps_its_colour_at_low_quality() -> None:
    """End to end: a flat, slightly warm grey at quality 5 behind a q95 block keeps its mean colour."""
    img = np.empty((64, 96, 3), np.uint8)
    img[...] = (133, 128, 122)
    img[8:24, 8:24] = make_image(16, 16)
    qmap = np.full((8, 12), 5.0)
    qmap[1:3, 1:3] = 95.0
    out = pil_decode(quant.encode_with_quality_map(img, qmap)).astype(np.float64)
    background = out[32:, 48:].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(background, (133, 128, 122), atol=1.0)
    old = pil_decode(quant.encode_with_quality_map(img, qmap, keep_dc=False)).astype(np.float64)
    assert np.abs(old[32:, 48:].reshape(-1, 3).mean(axis=0) - (133, 128, 122)).max() > 2.0


def test_requantize_is_idempotent_ish() -> None:
    c = laplacian_coeffs(16, 16, seed=5)
    qt = quant.quality_table(85, "luma")
    bq = np.random.default_rng(1).uniform(10, 85, c.shape[:2])
    once = quant.requantize(c, qt, bq, "luma")
    twice = quant.requantize(once, qt, bq, "luma")
    assert np.all(np.abs(twice.astype(int)) <= np.abs(once.astype(int)))
    assert np.count_nonzero(twice != once) <= 0.01 * once.size
    no_dz = quant.requantize(c, qt, bq, "luma", deadzone=0.0)
    np.testing.assert_array_equal(quant.requantize(no_dz, qt, bq, "luma", deadzone=0.0), no_dz)


def test_deadzone_zeroes_more_but_spares_dc() -> None:
    c = laplacian_coeffs(10, 10, seed=2)
    qt = quant.quality_table(90, "luma")
    bq = np.full(c.shape[:2], 40.0)
    zeros = [np.count_nonzero(quant.requantize(c, qt, bq, "luma", deadzone=dz) == 0) for dz in (0.0, 0.2, 0.4)]
    assert zeros[0] < zeros[1] < zeros[2]
    dc_plain = quant.requantize(c, qt, bq, "luma", deadzone=0.0)[..., 0, 0]
    dc_dz = quant.requantize(c, qt, bq, "luma", deadzone=0.4)[..., 0, 0]
    np.testing.assert_array_equal(dc_plain, dc_dz)


def test_requantize_validates_inputs() -> None:
    c = laplacian_coeffs(2, 3)
    qt = quant.quality_table(90)
    with pytest.raises(ValueError, match="shape"):
        quant.requantize(c, qt, np.full((3, 2), 50.0))
    with pytest.raises(ValueError, match="NaN"):
        quant.requantize(c, qt, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="deadzone"):
        quant.requantize(c, qt, np.full((2, 3), 50.0), deadzone=0.5)
    with pytest.raises(ValueError):
        quant.requantize(c[..., :4], qt, np.full((2, 3), 50.0))


# --------------------------------------------------------------------------
# map geometry
# --------------------------------------------------------------------------
def test_map_to_luma_grid() -> None:
    assert quant.luma_block_shape(37, 53) == (5, 7)
    grid = np.arange(35, dtype=float).reshape(5, 7) + 10
    np.testing.assert_array_equal(quant.map_to_luma_grid(grid, (37, 53)), grid)
    pix = half_map(37, 53, 90, 30)  # boundary at x=26, inside block column 3
    out = quant.map_to_luma_grid(pix, (37, 53))
    assert out.shape == (5, 7)
    np.testing.assert_array_equal(out[:, :4], 90)  # max: the mixed block keeps 90
    np.testing.assert_array_equal(out[:, 4:], 30)
    mean = quant.map_to_luma_grid(pix, (37, 53), reduce="mean")
    assert 30 < mean[0, 3] < 90
    coarse = quant.map_to_luma_grid(np.array([[80.0, 20.0]]), (64, 64))  # any resolution
    assert coarse.shape == (8, 8) and coarse[0, 0] == pytest.approx(80) and coarse[0, -1] == pytest.approx(20)
    np.testing.assert_array_equal(quant.map_to_luma_grid(np.array([[150.0]]), (8, 8)), [[100.0]])
    with pytest.raises(ValueError):
        quant.map_to_luma_grid(np.full((4, 4), np.nan), (32, 32))
    with pytest.raises(ValueError):
        quant.map_to_luma_grid(np.zeros((2, 2, 3)), (32, 32))


def test_luma_to_chroma_grid_takes_max_of_covered_blocks() -> None:
    lb = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], dtype=float)
    out = quant.luma_to_chroma_grid(lb, (2, 2), (2, 2))
    np.testing.assert_array_equal(out, [[50, 60], [80, 90]])
    np.testing.assert_array_equal(quant.luma_to_chroma_grid(lb, (3, 2), (1, 2)), [[20, 30], [50, 60], [80, 90]])
    np.testing.assert_array_equal(quant.luma_to_chroma_grid(lb, (3, 3), (1, 1)), lb)


# --------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------
def test_uniform_map_matches_plain_encode() -> None:
    img = make_image()
    plain = get_backend("turbo").encode(img, 75)
    mapped = quant.encode_with_quality_map(img, np.full((3, 3), 75.0))
    assert abs(len(mapped) - len(plain)) <= 0.10 * len(plain)
    assert abs(psnr(img, pil_decode(mapped)) - psnr(img, pil_decode(plain))) < 0.1
    assert_baseline(mapped)


@pytest.mark.parametrize("name", BACKENDS)
def test_half_low_quality_saves_bytes_and_keeps_the_good_half(name: str) -> None:
    img = make_image()
    h, w = img.shape[:2]
    be = get_backend(name)
    plain = pil_decode(be.encode(img, 90))
    data = quant.encode_with_quality_map(img, half_map(h, w, 90, 30), backend=name)
    uniform = quant.encode_with_quality_map(img, np.full((h, w), 90.0), backend=name)
    assert_baseline(data)
    assert len(data) < 0.9 * len(uniform)
    out = pil_decode(data)
    left, right = slice(0, w // 2), slice(w // 2, w)
    assert abs(psnr(img[:, left], out[:, left]) - psnr(img[:, left], plain[:, left])) < 0.1
    assert psnr(img[:, right], out[:, right]) < psnr(img[:, right], plain[:, right]) - 1.0


@pytest.mark.parametrize("name", BACKENDS)
def test_output_decodes_identically_everywhere(name: str) -> None:
    img = make_image(45, 67)  # odd size, partial MCUs
    data = quant.encode_with_quality_map(img, half_map(45, 67, 85, 20), backend=name)
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
    data = quant.encode_with_quality_map(img, qmap, subsampling=sub)
    assert_baseline(data)
    out = pil_decode(data)
    assert out.shape == (h, w, 3)
    np.testing.assert_array_equal(cv2_decode(data), out)


def test_greyscale_and_rgba_inputs() -> None:
    img = make_image(37, 53)
    grey = img[:, :, 0]
    data = quant.encode_with_quality_map(grey, half_map(37, 53, 90, 25))
    assert_baseline(data)
    out = pil_decode(data)
    assert out.shape == (37, 53)
    np.testing.assert_array_equal(cv2_decode(data), out)
    assert psnr(grey[:, :24], out[:, :24]) > psnr(grey[:, 32:], out[:, 32:])
    rgba = np.concatenate([img, np.full((37, 53, 1), 7, np.uint8)], axis=2)
    qm = half_map(37, 53, 90, 25)
    assert quant.encode_with_quality_map(rgba, qm) == quant.encode_with_quality_map(img, qm)


def test_explicit_q_max_caps_the_map() -> None:
    img = make_image(32, 32)
    capped = quant.encode_with_quality_map(img, np.full((4, 4), 95.0), q_max=70)
    assert len(capped) == len(quant.encode_with_quality_map(img, np.full((4, 4), 70.0)))
    with pytest.raises(ValueError, match="q_max"):
        quant.encode_with_quality_map(img, np.full((4, 4), 50.0), q_max=0)


def test_prefilter_saves_bytes_and_spares_high_quality_blocks() -> None:
    # fine texture is what the pre-filter is for (on sharp synthetic edges it can cost bytes)
    img = np.clip(np.random.default_rng(0).normal(128, 40, (96, 128, 3)), 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    qm = half_map(h, w, 90, 30)
    plain = quant.encode_with_quality_map(img, qm)
    filtered = quant.encode_with_quality_map(img, qm, prefilter=1.0)
    assert len(filtered) < len(plain)
    # the 16-px aligned high-quality half is bit-identical (luma and chroma MCUs)
    np.testing.assert_array_equal(pil_decode(filtered)[:, : w // 2 - 1], pil_decode(plain)[:, : w // 2 - 1])
    # and the pre-filter itself leaves q_max blocks untouched
    bq = quant.map_to_luma_grid(qm, (h, w))
    pre = quant.prefilter_image(img, bq, 90, 1.0)
    np.testing.assert_array_equal(pre[:, : w // 2], img[:, : w // 2])
    assert not np.array_equal(pre[:, w // 2 + 8 :], img[:, w // 2 + 8 :])
    with pytest.raises(ValueError):
        quant.encode_with_quality_map(img, qm, prefilter=1.5)


@pytest.mark.parametrize("mode", ["zero", "round"])
def test_size_estimate_ranks_maps_like_the_real_writes(mode: str) -> None:
    """The fast (zero mode, IJG tables) and slow (requantised bands) estimates both grow with
    quality, and the real/estimated ratio drifts little between nearby maps: the encoder
    calibrates an estimate with one real write."""
    img = make_image(96, 128)
    image = quant.CoefficientImage(get_backend("turbo").encode(img, 90, optimize=False), 90, mode=mode)
    qualities = (20.0, 50.0, 60.0, 70.0, 80.0)
    estimates = [image.estimate_bytes(np.full(image.grid, q)) for q in qualities]
    sizes = [len(image.encode(np.full(image.grid, q))) for q in qualities]
    assert all(a < b for a, b in itertools.pairwise(estimates)), estimates
    assert all(a < b for a, b in itertools.pairwise(sizes)), sizes
    ratios = np.array(sizes[1:]) / np.array(estimates[1:])
    assert np.all(np.abs(np.diff(np.log(ratios))) < np.log(1.1)), ratios


def test_requantize_jpeg_checks_the_grid() -> None:
    data = get_backend("turbo").encode(make_image(32, 32), 80)
    with pytest.raises(ValueError, match="grid"):
        quant.requantize_jpeg(data, np.full((3, 3), 50.0), 80)


def test_bad_quality_maps() -> None:
    img = make_image(16, 16)
    with pytest.raises(ValueError, match="NaN"):
        quant.encode_with_quality_map(img, np.array([[np.nan]]))
    with pytest.raises(ValueError):
        quant.encode_with_quality_map(img, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="deadzone"):
        quant.encode_with_quality_map(img, np.full((2, 2), 50.0), q_max=80, deadzone=-0.1)


@pytest.mark.shared
@pytest.mark.skipif(not KODAK.is_dir(), reason=f"Kodak images not found at {KODAK} (../shared absent)")
def test_kodak_bytes_fall_as_background_quality_drops() -> None:
    img = np.asarray(Image.open(KODAK / "kodim01.png").convert("RGB"))
    h, w = img.shape[:2]
    sizes = [len(quant.encode_with_quality_map(img, half_map(h, w, 85, q))) for q in (85, 70, 55, 40, 25, 10)]
    assert sizes[-1] < 0.85 * sizes[0]
    assert all(b <= a * 1.01 for a, b in itertools.pairwise(sizes)), sizes
