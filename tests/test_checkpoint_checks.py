"""Issue 11, case 11: user checkpoints are verified on load, and broken weights never reach an
encoding. A stored SHA-256 of the tensors catches a flipped bit; NaN/Inf weights are refused;
config errors are one WeightsError line; a model predicting NaN is a CompressError.
"""
from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sspcodec import CompressError, Encoder
from sspnet import build_model, save_checkpoint
from sspnet.net.configs import CONFIGS
from sspnet.zoo import DIGEST_KEY, WeightsError, load_model, read_checkpoint, tensor_digest

TINY = replace(CONFIGS["default"], input_size=(48, 64))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    torch.manual_seed(0)
    save_checkpoint(build_model(TINY), path, info={"note": "test"})
    return path


def _header(path: Path) -> tuple[int, dict]:
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]
    return n, json.loads(path.read_bytes()[8 : 8 + n])


def _rewrite_metadata(src: Path, dst: Path, **meta: str) -> Path:
    """`src`'s tensors with its metadata updated by `meta`."""
    _config, _info, state = read_checkpoint(src)
    _n, header = _header(src)
    save_file(state, str(dst), metadata={**header["__metadata__"], **meta})
    return dst


def test_the_digest_is_stored_and_matches_the_tensors(saved):
    _n, header = _header(saved)
    _config, _info, state = read_checkpoint(saved)
    assert header["__metadata__"][DIGEST_KEY] == tensor_digest(state)
    assert len(header["__metadata__"][DIGEST_KEY]) == 64


@pytest.mark.parametrize("where", [0.1, 0.5, 0.99])
def test_a_flipped_bit_in_the_tensor_data_is_refused(saved, tmp_path, where):
    n, _header_json = _header(saved)
    raw = bytearray(saved.read_bytes())
    data_start = 8 + n
    at = data_start + int((len(raw) - data_start) * where)
    raw[at] ^= 0x04  # a mantissa bit of some weight: the value stays finite
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="corrupt: its tensor data do not match the SHA-256"):
        load_model(str(bad), "cpu")


def test_metadata_edits_do_not_trip_the_digest_and_old_checkpoints_load(saved, tmp_path):
    edited = _rewrite_metadata(saved, tmp_path / "edited.safetensors", info=json.dumps({"note": "renamed"}))
    assert load_model(str(edited), "cpu").info == {"note": "renamed"}
    _config, _info, state = read_checkpoint(saved)
    _n, header = _header(saved)
    meta = {k: v for k, v in header["__metadata__"].items() if k != DIGEST_KEY}
    save_file(state, str(tmp_path / "old.safetensors"), metadata=meta)  # written before digests
    load_model(str(tmp_path / "old.safetensors"), "cpu")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, value):
    model = build_model(TINY)
    with torch.no_grad():
        model.decoder_d.state_dict()[next(iter(model.decoder_d.state_dict()))].view(-1)[3] = value
    path = tmp_path / "nan.safetensors"
    save_checkpoint(model, path)
    with pytest.raises(WeightsError, match=r"NaN or infinite weights in 1 tensor\(s\), e.g. \['decoder_d\."):
        load_model(str(path), "cpu")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{not json", "model config in its metadata is not valid JSON"),
        ("[1, 2]", "model config in its metadata must be a JSON object, got list"),
        (json.dumps({**TINY.to_dict(), "depth": 3}), r"unknown model config field\(s\) \['depth'\]"),
        (json.dumps({**TINY.to_dict(), "backbone": "nope"}), "its model config cannot be built"),
        (json.dumps({**TINY.to_dict(), "dims": [8, 8, 8]}), "its tensors do not fit its model config"),
    ],
)
def test_config_errors_are_one_weights_error_line(saved, tmp_path, config, message):
    bad = _rewrite_metadata(saved, tmp_path / "bad.safetensors", config=config)
    with pytest.raises(WeightsError, match=message) as info:
        load_model(str(bad), "cpu")
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_a_bad_info_record_is_a_weights_error(saved, tmp_path):
    bad = _rewrite_metadata(saved, tmp_path / "bad_info.safetensors", info="{oops")
    with pytest.raises(WeightsError, match="info record in its metadata is not valid JSON"):
        load_model(str(bad), "cpu")


def test_a_model_predicting_nan_is_a_compress_error():
    """A model built in memory is not checked on load: the encoder refuses its NaN output
    instead of reporting 'predicted shift nan'."""
    model = build_model(TINY).eval()
    with torch.no_grad():
        for p in model.decoder_d.parameters():
            p.fill_(float("nan"))
    rgb = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    with pytest.raises(CompressError, match="non-finite shift map"):
        Encoder(model, device="cpu").compress(rgb)
    with torch.no_grad():
        for p in model.decoder_r.parameters():
            p.fill_(float("nan"))
    with pytest.raises(CompressError, match="non-finite saliency"):
        Encoder(model, device="cpu").compress(rgb)
