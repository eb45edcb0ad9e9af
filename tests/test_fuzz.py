"""Property tests: mutated JPEG/PNG bytes and random options through the reader and the encoder.

The harness is sspcodec.bench's (benchmarks/fuzz.py runs it for 10,000 cases with timeouts);
here hypothesis drives it for 300 cases on a tiny model: only the project's error types may
escape, a success is a complete, decodable JPEG of the image's size, and no file is left behind
(neither a partial output nor a temporary file).
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sspcodec import Encoder
from sspcodec.bench.fuzz_cases import run_case
from sspcodec.bench.fuzz_inputs import OBSTACLES, OutputCase, random_case, seed_images
from sspcodec.bench.models import tiny_model

SEEDS = seed_images()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Iterator[Encoder]:
    """The tiny model on one thread: its passes are milliseconds, and on a busy machine torch's
    thread pool would spin for longer than the work takes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield Encoder(str(tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")), device="cpu")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture()
def private_tmp(tmp_path, monkeypatch) -> Path:
    """The process's temporary folder, pointed at an empty folder of its own, to see leaks."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def test_seed_images_encode(encoder, tmp_path, private_tmp):
    for k, data in enumerate(SEEDS):
        folder = tmp_path / f"seed{k}"
        folder.mkdir()
        outcome = run_case(encoder, data, {}, folder, private_tmp)
        assert outcome.kind == "encoded", (k, outcome)


def test_a_crash_is_reported_as_one(encoder, tmp_path, private_tmp, monkeypatch):
    """The harness itself can fail: a foreign exception type escaping compress is a crash."""
    monkeypatch.setattr(encoder, "compress", lambda data, **options: [][1])
    outcome = run_case(encoder, SEEDS[0], {}, tmp_path, private_tmp)
    assert outcome.kind == "crash" and "IndexError" in outcome.detail


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_mutated_inputs_and_random_options(encoder, tmp_path_factory, private_tmp, data):
    def draw(n: int) -> int:
        return data.draw(st.integers(0, n - 1))

    payload, options, output = random_case(SEEDS, draw)
    folder = tmp_path_factory.mktemp("case")
    outcome = run_case(encoder, payload, options, folder, private_tmp, output)
    assert outcome.kind in ("encoded", "refused"), (outcome, options)


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("obstacle", sorted(set(OBSTACLES) - {"none"}))
def test_obstacles_in_out_are_refused_never_written_through(encoder, tmp_path, private_tmp, obstacle, overwrite):
    output = OutputCase(obstacle, overwrite)
    outcome = run_case(encoder, SEEDS[0], {}, tmp_path, private_tmp, output)
    assert outcome.kind == ("encoded" if obstacle == "file" and overwrite else "refused"), outcome


def test_a_write_through_a_link_is_reported_as_an_escape(encoder, tmp_path, private_tmp, monkeypatch):
    """The harness itself can fail: a writer that follows links is caught."""
    import sspnet.files.outputs

    monkeypatch.setattr(sspnet.files.outputs, "write_bytes_atomic",
                        lambda path, data, overwrite: Path(path).write_bytes(data))
    outcome = run_case(encoder, SEEDS[0], {}, tmp_path, private_tmp, OutputCase("link-to-sentinel"))
    assert outcome.kind == "escape" and "sentinel" in outcome.detail
