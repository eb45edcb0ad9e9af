"""The benchmark's codec interface (sspcodec.bench.encoders): every codec fits a byte budget, writes
a JPEG that an independent decoder (OpenCV's) reads as the image, and the frame type each one
promises."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sspcodec.backends import transcode_baseline
from sspcodec.backends.progressive import smallest_form, to_progressive
from sspcodec.bench.encoders import (
    PEERS,
    Codec,
    JpegliCodec,
    PrunedCodec,
    SspcodecCodec,
    decode,
    fixed_priority,
    frame_type,
    get_codec,
)
from sspcodec.quant.settings import PruneSettings

try:
    import pyjpegli  # noqa: F401

    HAVE_JPEGLI = True
except ImportError:
    HAVE_JPEGLI = False

NO_JPEGLI = "pyjpegli not installed (pip install pyjpegli==0.3.2)"
ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
#: name -> the frame type its output must have ("smaller": whichever of baseline and its lossless
#: progressive re-coding is smaller, as :func:`sspcodec.backends.progressive.smallest_form` picks).
EXPECTED_FRAME = {"turbo": "baseline", "mozjpeg": "progressive"}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))[60:251, 90:355].copy()


@pytest.fixture(scope="module")
def sspcodec_codec(tmp_path_factory) -> Codec:
    """Today's sspcodec on a tiny random-weight model (mechanics, not model quality)."""
    from sspcodec import Encoder
    from sspnet import build_model, save_checkpoint
    from sspnet.net.configs import CONFIGS

    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(build_model(replace(CONFIGS["default"], input_size=(64, 96))), path, info={"note": "test"})
    return SspcodecCodec(Encoder(str(path), device="cpu"))


def _codec(name: str, request) -> Codec:
    if name == "jpegli" and not HAVE_JPEGLI:
        pytest.skip(NO_JPEGLI)
    if name == "pruned":
        if not HAVE_JPEGLI:
            pytest.skip(NO_JPEGLI)
        return PrunedCodec("pruned", lambda rgb: np.linspace(1, 0, rgb.shape[1])[None].repeat(rgb.shape[0], 0))
    if name == "sspcodec":
        return request.getfixturevalue("sspcodec_codec")
    return get_codec(name)


ALL = ["turbo", "mozjpeg", "jpegli", "pruned", "sspcodec"]


def independent_decode(data: bytes) -> np.ndarray:
    """RGB pixels through OpenCV's own libjpeg build: no code shared with the codecs' decode (Pillow)."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "OpenCV cannot decode the output"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name", ALL)
def test_fits_budget_and_decodes_everywhere(name, photo, request):
    codec = _codec(name, request)
    budget = len(get_codec("turbo").encode(photo, 80))
    enc = codec.encode_to_bytes(photo, budget)
    assert len(enc.data) <= budget
    assert len(enc.data) >= 0.85 * budget  # the budget is used, not thrown away
    assert frame_type(enc.data) in ("baseline", "progressive")
    seen = independent_decode(enc.data)
    assert seen.shape == photo.shape
    error = np.abs(seen.astype(int) - photo)
    assert error.mean() < 6 and np.percentile(error, 99) < 40  # a faithful encoding of this image
    ours = codec.decode(enc.data)  # what the benchmarks score: the same picture
    assert ours.shape == photo.shape and np.abs(ours.astype(int) - seen).mean() < 1


@pytest.mark.parametrize("name", ["turbo", "mozjpeg", "jpegli", "pruned", "sspcodec"])
def test_frame_type(name, photo, request):
    codec = _codec(name, request)
    data = codec.encode(photo, 70)
    if name in EXPECTED_FRAME:
        assert frame_type(data) == EXPECTED_FRAME[name]
    else:  # the smaller form: re-coding it again saves nothing, and the pixels are the baseline's
        assert frame_type(data) in ("baseline", "progressive") and smallest_form(data) == data
        base = transcode_baseline(data)
        assert frame_type(base) == "baseline" and np.array_equal(decode(base), decode(data))
        assert (frame_type(data) == "progressive") == (len(to_progressive(base)) < len(base))
    with Image.open(io.BytesIO(data)) as im:  # Pillow's own reading agrees
        assert bool(im.info.get("progressive") or im.info.get("progression")) == (frame_type(data) == "progressive")


@pytest.mark.parametrize("name", ["turbo", "mozjpeg", "jpegli"])
def test_quality_fit_is_the_largest_fitting_quality(name, photo, request):
    codec = _codec(name, request)
    budget = (len(codec.encode(photo, 75)) + len(codec.encode(photo, 76))) // 2
    enc = codec.encode_to_bytes(photo, budget)
    assert enc.quality is not None and enc.data == codec.encode(photo, enc.quality)
    assert all(len(codec.encode(photo, q)) > budget for q in range(enc.quality + 1, enc.quality + 4))


def test_budget_too_small_is_a_clear_error(photo):
    with pytest.raises(ValueError, match="too small"):
        get_codec("turbo").encode_to_bytes(photo, 100)


def test_registry():
    assert set(PEERS) == {"turbo", "mozjpeg", "jpegli"}
    with pytest.raises(ValueError, match="valid names"):
        get_codec("webp")


@pytest.mark.skipif(not HAVE_JPEGLI, reason=NO_JPEGLI)
def test_jpegli_peer_is_pyjpegli_with_optimised_huffman(photo):
    import pyjpegli

    raw = bytes(pyjpegli.encode(np.ascontiguousarray(photo), photo.shape[1], photo.shape[0], quality=85))
    ours = JpegliCodec().encode(photo, 85)
    assert len(ours) < len(raw)  # same coefficients, smaller tables
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(ours))), np.asarray(Image.open(io.BytesIO(raw))))


@pytest.mark.skipif(not HAVE_JPEGLI, reason=NO_JPEGLI)
def test_pruned_codec_at_quality_spends_the_plain_bytes(photo):
    prio = np.ones(photo.shape[:2], np.float32)
    codec = PrunedCodec("uniform", fixed_priority(prio))
    plain = JpegliCodec().encode(photo, 80)
    data = codec.encode(photo, 80)
    assert 0.99 * len(plain) <= len(data) <= len(plain)
    assert PrunedCodec("off", fixed_priority(prio), settings=PruneSettings(0.0)).encode(photo, 80) == plain


def test_frame_type_rejects_garbage():
    with pytest.raises(ValueError):
        frame_type(b"not a jpeg")
    with pytest.raises(ValueError):
        frame_type(b"\xff\xd8\xff\xd9")
