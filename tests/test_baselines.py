"""Centre-bias and average-map baselines: recovery of a known bias, shapes, JSON round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sspnet.baselines import (
    AverageMap,
    CenterBias,
    baseline_from_dict,
    load_baseline,
    mean_grid_map,
    save_baseline,
)
from sspnet.metrics import cc


def gaussian_map(shape, mean, sigma, rho=0.0):
    """An anisotropic Gaussian in normalised coordinates (pixel centres at (j+0.5)/W)."""
    h, w = shape
    x = (np.arange(w) + 0.5) / w
    y = (np.arange(h) + 0.5) / h
    dx = (x - mean[0])[None, :] / sigma[0]
    dy = (y - mean[1])[:, None] / sigma[1]
    q = (dx**2 - 2 * rho * dx * dy + dy**2) / (1 - rho**2)
    return np.exp(-0.5 * q).astype(np.float32)


MEAN, SIGMA = (0.45, 0.55), (0.12, 0.08)


def test_center_bias_recovers_known_gaussian_from_maps_of_several_sizes():
    shapes = [(120, 160), (90, 200), (300, 240), (64, 64), (50, 70)]
    maps = [gaussian_map(s, MEAN, SIGMA) for s in shapes]
    cb = CenterBias.fit(maps)
    assert cb.mean == pytest.approx(MEAN, abs=3e-3)
    assert cb.sigma == pytest.approx(SIGMA, rel=0.03)
    assert abs(cb.cov[0][1]) < 1e-4
    pred = cb.predict((200, 300))
    assert cc(pred, gaussian_map((200, 300), MEAN, SIGMA)) > 0.999


def test_center_bias_recovers_correlation():
    rho = 0.5
    cb = CenterBias.fit([gaussian_map((128, 128), (0.5, 0.5), (0.1, 0.1), rho)])
    assert cb.cov[0][1] / np.prod(cb.sigma) == pytest.approx(rho, abs=0.03)


def test_fit_weighs_images_equally_and_skips_empty_maps():
    a = gaussian_map((60, 80), (0.3, 0.5), (0.05, 0.05))
    b = 100.0 * gaussian_map((60, 80), (0.7, 0.5), (0.05, 0.05))  # same shape, other scale
    cb = CenterBias.fit([a, b, np.zeros((60, 80))])
    assert cb.mean[0] == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError):
        CenterBias.fit([np.zeros((10, 10))])


@pytest.mark.parametrize("cls", [CenterBias, AverageMap])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (288, 384), (480, 360)])
def test_predict_shapes_and_range(cls, shape):
    model = cls.fit([gaussian_map((90, 120), MEAN, SIGMA)])
    p = model.predict(shape)
    assert p.shape == shape and p.dtype == np.float32
    assert np.isfinite(p).all() and p.min() >= 0.0 and p.max() <= 1.0


def test_average_map_reproduces_the_mean_map():
    maps = [gaussian_map((64, 64), (0.3, 0.4), (0.1, 0.1)), gaussian_map((64, 64), (0.7, 0.6), (0.1, 0.1))]
    am = AverageMap.fit(maps)
    assert am.grid_map.max() == pytest.approx(1.0)
    expected = mean_grid_map(maps)
    assert cc(am.predict((64, 64)), expected) > 0.9999
    two_blobs = gaussian_map((128, 96), (0.3, 0.4), (0.1, 0.1)) + gaussian_map((128, 96), (0.7, 0.6), (0.1, 0.1))
    assert cc(am.predict((128, 96)), two_blobs) > 0.99


@pytest.mark.parametrize("cls", [CenterBias, AverageMap])
def test_json_roundtrip(cls, tmp_path):
    model = cls.fit([gaussian_map((90, 120), MEAN, SIGMA), gaussian_map((80, 80), (0.5, 0.4), (0.2, 0.1))])
    d = json.loads(json.dumps(model.to_dict()))
    back = baseline_from_dict(d)
    assert type(back) is cls
    np.testing.assert_allclose(back.predict((30, 40)), model.predict((30, 40)), atol=1e-6)
    save_baseline(model, tmp_path / "b.json")
    np.testing.assert_allclose(load_baseline(tmp_path / "b.json").predict((30, 40)), model.predict((30, 40)), atol=1e-6)


def test_invalid_inputs():
    with pytest.raises(ValueError):
        CenterBias((0.5, 0.5), ((0.0, 0.0), (0.0, 0.01)))
    with pytest.raises(ValueError):
        baseline_from_dict({"type": "nope"})
    with pytest.raises(ValueError):
        CenterBias().predict((0, 4))
