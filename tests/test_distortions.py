"""Distortion synthesis: types, level ordering, determinism, validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sspnet import distortions as D

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def natural_like(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth gradients + hard edges + fine texture: every distortion has something to damage."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 200 + 20, yy / h * 180 + 30, (xx + yy) / (h + w) * 150 + 50], axis=2)
    img[h // 4 : h // 2, w // 4 : w // 2] = (230, 40, 40)
    img[(yy.astype(int) // 6 + xx.astype(int) // 6) % 2 == 0] *= 0.6
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


KINDS = list(D.DISTORTIONS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("level", D.LEVELS)
def test_shape_dtype_and_no_mutation(kind: str, level: int) -> None:
    img = natural_like(37, 53)  # odd sizes: not multiples of the JPEG block
    before = img.copy()
    out = D.distort(img, kind, level)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert out is not img
    np.testing.assert_array_equal(img, before)


def _images() -> list[np.ndarray]:
    imgs = [natural_like(), natural_like(80, 60, seed=1)]
    kodak = SHARED / "images" / "kodak" / "kodim23.png"
    if kodak.is_file():  # a real photograph when available, downscaled to stay fast
        import cv2
        from PIL import Image

        real = np.asarray(Image.open(kodak).convert("RGB"))
        imgs.append(cv2.resize(real, (256, 171), interpolation=cv2.INTER_AREA))
    return imgs


@pytest.mark.parametrize("kind", KINDS)
def test_error_grows_with_level(kind: str) -> None:
    for img in _images():
        errors = [mae(D.distort(img, kind, level), img) for level in D.LEVELS]
        assert 0 < errors[0] < errors[1] < errors[2], (kind, errors)


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic(kind: str) -> None:
    img = natural_like()
    np.testing.assert_array_equal(D.distort(img, kind, 2), D.distort(img.copy(), kind, 2))


def test_level_functions_match_parametric() -> None:
    img = natural_like()
    np.testing.assert_array_equal(D.jpeg(img, 2), D.encode_jpeg_at(img, D.JPEG_LEVELS[2]))
    np.testing.assert_array_equal(D.gaussian_blur(img, 3), D.blur_gaussian(img, D.GAUSSIAN_BLUR_LEVELS[3]))
    np.testing.assert_array_equal(D.contrast_change(img, 1), D.scale_contrast(img, D.CONTRAST_LEVELS[1]))
    np.testing.assert_array_equal(D.motion_blur(img, 1), D.blur_motion(img, D.MOTION_BLUR_LEVELS[1]))


def test_level_tables_are_ordered_by_severity() -> None:
    assert D.CONTRAST_LEVELS[1] > D.CONTRAST_LEVELS[2] > D.CONTRAST_LEVELS[3]
    assert D.JPEG_LEVELS[1] > D.JPEG_LEVELS[2] > D.JPEG_LEVELS[3]
    assert D.MOTION_BLUR_LEVELS[1] < D.MOTION_BLUR_LEVELS[2] < D.MOTION_BLUR_LEVELS[3]
    assert D.GAUSSIAN_BLUR_LEVELS[1] < D.GAUSSIAN_BLUR_LEVELS[2] < D.GAUSSIAN_BLUR_LEVELS[3]


def test_identity_parameters() -> None:
    img = natural_like()
    np.testing.assert_array_equal(D.scale_contrast(img, 1.0), img)
    np.testing.assert_array_equal(D.blur_gaussian(img, 0), img)
    np.testing.assert_array_equal(D.blur_motion(img, 1), img)


def test_contrast_keeps_mean_and_flat_image() -> None:
    img = natural_like()
    out = D.contrast_change(img, 3)
    assert abs(out.astype(float).mean() - img.astype(float).mean()) < 1.0
    assert out.astype(float).std() < img.astype(float).std()
    flat = np.full((8, 8, 3), 77, np.uint8)
    np.testing.assert_array_equal(D.contrast_change(flat, 3), flat)


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0])
def test_motion_kernel_normalised_centred_and_directional(angle: float) -> None:
    k = D.motion_blur_kernel(11, angle)
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    assert (k * xx).sum() == pytest.approx(k.shape[1] // 2, abs=1e-3)
    assert (k * yy).sum() == pytest.approx(k.shape[0] // 2, abs=1e-3)
    if angle == 0.0:
        assert k.shape[0] == 1 and k.shape[1] >= 11
    if angle == 90.0:
        assert k.shape[1] == 1 and k.shape[0] >= 11


def test_motion_blur_direction_matters() -> None:
    img = np.zeros((41, 41, 3), np.uint8)
    img[20, 20] = 255
    h = D.blur_motion(img, 11, 0)[:, :, 0]
    v = D.blur_motion(img, 11, 90)[:, :, 0]
    assert h[20].sum() > 0 and h[:, 20].astype(int).sum() == h[20, 20]  # spreads along the row only
    assert v[:, 20].sum() > 0 and v[20].astype(int).sum() == v[20, 20]


def test_aliases_and_registry() -> None:
    img = natural_like(16, 16)
    np.testing.assert_array_equal(D.distort(img, "CC", 1), D.contrast_change(img, 1))
    np.testing.assert_array_equal(D.distort(img, "MB", 2), D.motion_blur(img, 2))
    np.testing.assert_array_equal(D.distort(img, "JPEG", 3), D.jpeg(img, 3))
    assert set(D.DISTORTIONS) == {"contrast", "jpeg", "motion_blur", "gaussian_blur"}


@pytest.mark.parametrize(
    "call",
    [
        lambda img: D.distort(img, "sharpen", 1),
        lambda img: D.distort(img, "jpeg", 0),
        lambda img: D.distort(img, "jpeg", 4),
        lambda img: D.distort(img, "jpeg", 1.5),
        lambda img: D.encode_jpeg_at(img, 0),
        lambda img: D.blur_gaussian(img, -1),
        lambda img: D.blur_motion(img, float("nan")),
        lambda img: D.scale_contrast(img, -0.5),
        lambda img: D.jpeg(img.astype(np.float32), 1),
        lambda img: D.jpeg(img[:, :, 0], 1),
    ],
)
def test_invalid_inputs(call) -> None:
    with pytest.raises((ValueError, TypeError)):
        call(natural_like(16, 16))
