"""The benchmarks' judges (ColorVideoVDP, foveated FovVideoVDP) run and point the right way on one
image: a smoke test that the calibrated models the codec is judged by are wired correctly."""
from __future__ import annotations

import inspect
import io
import sys

import numpy as np
import pytest
from PIL import Image

from sspcodec.bench.judges import Judges, missing

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"judges unavailable: {missing()}")


def _photo(h: int = 128, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 1.5, y * 2.0, 128 + 60 * np.sin(x / 9.0)], axis=2)
    return np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def judges() -> Judges:
    return Judges("fhd")


def test_colour_judge_scores_identical_as_10_and_falls_with_distortion(judges):
    ref = _photo()
    assert judges.colour(ref, ref) == pytest.approx(10.0, abs=1e-3)
    q90, q20, q5 = (judges.colour(_jpeg(ref, q), ref) for q in (90, 20, 5))
    assert 10.0 > q90 > q20 > q5


def test_foveated_judge_sees_a_patch_worse_where_the_eye_is(judges):
    ref = _photo(128, 480)
    test = ref.copy()
    test[:, :128] = _jpeg(ref, 3)[:, :128]  # heavy blocking in the left quarter only
    near = judges.foveated(test, ref, np.array([[60, 64]]))
    far = judges.foveated(test, ref, np.array([[440, 64]]))
    assert near[0] < far[0] < 10.0  # the same artifact, more visible in the fovea than 10+ degrees away
    both = judges.foveated(test, ref, np.array([[60, 64], [440, 64]]))
    assert both == pytest.approx(((near[0] + far[0]) / 2, near[0]), abs=1e-6)  # (mean, worst)


def test_each_package_runs_its_own_bare_name_siblings(judges):
    ref = _photo()
    judges.colour(ref, ref), judges.foveated(ref, ref, np.array([[10, 10]]))
    assert inspect.getsourcefile(sys.modules["pycvvdp.cvvdp_metric"].interp1).endswith("pycvvdp/interp.py")
    assert inspect.getsourcefile(sys.modules["pyfvvdp.fvvdp"].interp1).endswith("pyfvvdp/interp.py")
    assert "interp" not in sys.modules  # nothing left behind under the bare name


def test_the_4k_geometry_sees_less_than_fullhd():
    ref = _photo()
    dist = _jpeg(ref, 20)
    assert Judges("4k").colour(dist, ref) > Judges("fhd").colour(dist, ref)
    with pytest.raises(ValueError, match="geometry"):
        Judges("phone")


def test_the_benchmark_measures_with_the_judges(judges):
    from sspcodec.bench.encoders import get_codec
    from sspcodec.bench.measures import measure
    from sspcodec.bench.testsets import BenchImage

    ref = _photo()
    image = BenchImage("smoke", ref, fixations_b=np.array([[20.0, 30.0], [120.0, 90.0]]))
    codec = get_codec("jpegli")
    row = measure(image, codec.encode(ref, 60), codec, None, judges)
    assert 0 < row["cvvdp"] < 10 and row["fvvdp_worst"] <= row["fvvdp_mean"] < 10
    assert measure(image, codec.encode(ref, 60), codec, None)["cvvdp"] is None  # no judges: none
