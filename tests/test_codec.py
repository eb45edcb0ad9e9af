"""sspcodec end to end: API, CLI, batch, on a tiny random-weight SSPNet checkpoint.

The shipped model's behaviour is tested in test_shipped_model.py (and here, once, on the
bundled astronaut with fixations on the face); here the mechanics: budgets are honoured,
outputs are standard JPEGs, errors are clear, files are never lost. `encoder` is the default
method (rd pruning on jpegli), `search_encoder` the candidate search on libjpeg-turbo.
"""
from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import sspcodec
from sspcodec.api import CompressError, Encoder
from sspcodec.backends.markers import component_ids
from sspcodec.cli import app
from sspcodec.methods import RdPruning
from sspcodec.quality import weighted_psnr
from sspcodec.scoring import Score
from sspnet import build_model, save_checkpoint
from sspnet.maps import saliency_map
from sspnet.net.configs import CONFIGS

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


def _photo(h: int = 120, w: int = 176, seed: int = 0) -> np.ndarray:
    """A textured synthetic image: smooth gradients, edges and noise (JPEG has work to do)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 64 * 4], -1)
    img[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = [230, 40, 40]
    img = img + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    cfg = replace(CONFIGS["default"], input_size=(64, 96))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    torch.manual_seed(0)  # the same random model whichever tests ran before in this process
    save_checkpoint(build_model(cfg), path, info={"note": "random weights for tests"})
    return path


@pytest.fixture(scope="module")
def encoder(model_path) -> Encoder:
    # random weights: their saliency is noise, so the guard would (rightly) return the plain JPEG
    # and hide the pruning these tests check; the guard has its own test on the shipped model
    return Encoder(str(model_path), device="cpu", guard=False, strength=1.0)  # the default 0 prunes nothing


@pytest.fixture(scope="module")
def search_encoder(encoder) -> Encoder:
    return Encoder(encoder.model, method="search")


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_default_is_rd_on_jpegli_within_one_percent_of_plain_q85(encoder):
    assert encoder.method == "rd" and encoder.backend.name == "jpegli" and isinstance(encoder.strategy, RdPruning)
    rgb = _photo()
    r = encoder.compress(rgb)
    plain = encoder.plain(rgb, 85)  # jpegli q85, rewritten with optimised Huffman tables
    default = Encoder(encoder.model).compress(rgb)  # strength 0, the judges' choice: the plain reference
    assert plain == default.data and default.predicted_gain_db == 0.0 and not default.guard.acted
    assert r.baseline.bytes == len(plain) and r.baseline.quality == 85
    assert 0.99 * len(plain) <= r.bytes <= len(plain)
    assert r.data != plain  # pruned, not the plain JPEG
    assert r.data[:2] == b"\xff\xd8" and r.data[-2:] == b"\xff\xd9"
    assert r.quality_map.shape == (15, 22) and np.all(r.quality_map == 90)  # one table: steps <= 0.7x q85's
    # SM_r (and its other test-time views: mirror image, other scales), the plain JPEG's SSM, the output's SSM
    assert r.model_evaluations == 2 + len(encoder.model.views())
    assert r.predicted_shift == pytest.approx(float(r.ssm_lowres.mean()))
    assert _decode(r.data).shape == rgb.shape


def test_rd_report_shows_the_block_weights_that_decided_the_pruning(encoder, search_encoder):
    from sspcodec.report import allocation_panel, report_png

    rgb = _photo()
    r = encoder.compress(rgb)
    w = r.block_weights
    assert w is not None and w.shape == r.quality_map.shape  # one weight per 8x8 luma block
    assert 0.0 <= w.min() < w.max() <= 1.0  # varies: some blocks keep more detail than others
    panel, label = allocation_panel(r, rgb.shape[:2])
    assert panel.shape == rgb.shape and "block weight" in label
    assert report_png(rgb, r)[:8] == b"\x89PNG\r\n\x1a\n"
    s = search_encoder.compress(rgb)
    assert s.block_weights is None  # the search varies quality per block instead
    assert "quality map" in allocation_panel(s, rgb.shape[:2])[1]


def test_search_default_budget_is_plain_q85_bytes(search_encoder):
    rgb = _photo()
    r = search_encoder.compress(rgb)
    assert search_encoder.backend.name == "turbo"
    plain = search_encoder.plain(rgb, 85)
    assert r.baseline.bytes == len(plain) and r.baseline.quality == 85
    assert r.bytes <= len(plain)
    assert r.bytes >= 0.95 * len(plain)  # the budget is spent, not wasted
    assert r.quality_map.shape == (15, 22)  # 8x8 luma blocks of 120x176
    assert r.predicted_shift <= r.baseline.predicted_shift + 1e-12  # never worse than plain
    assert r.model_evaluations >= 2


def test_strength_zero_is_the_plain_base_file(encoder):
    rgb = _photo(seed=7)
    weak = Encoder(encoder.model, strength=0.0)
    for opts in ({}, {"max_bytes": len(encoder.plain(rgb, 70)) + 100}):
        r = weak.compress(rgb, **opts)
        assert r.data == weak.plain(rgb, r.baseline.quality)
        assert r.bytes == r.baseline.bytes and r.predicted_shift == r.baseline.predicted_shift
        assert r.predicted_gain_db == 0.0 and r.predicted_wpsnr == r.baseline.predicted_wpsnr
    assert Encoder(encoder.model, strength=0.5, guard=False).compress(rgb).data != r.data


def test_predicted_wpsnr_weights_the_error_by_the_predicted_saliency():
    encoder = Encoder("default", device="cpu", strength=1.0)  # the shipped model: a saliency map with a shape
    encoder.strategy.shift_guard = False  # the pruned output itself, not the guard's choice
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))[:200, :300].copy()
    r = encoder.compress(rgb)
    sm = r.saliency  # SM_r at the image's size (the figure weights by its low-resolution cells)
    for data, got in ((r.data, r.predicted_wpsnr), (encoder.plain(rgb, 85), r.baseline.predicted_wpsnr)):
        assert got == pytest.approx(weighted_psnr(rgb, _decode(data), sm), abs=0.15)
        assert got != pytest.approx(weighted_psnr(rgb, _decode(data), None), abs=0.05)  # not plain PSNR
    assert r.predicted_gain_db == pytest.approx(r.predicted_wpsnr - r.baseline.predicted_wpsnr)
    assert r.predicted_gain_db > 0.2  # the reallocation gains where the model says people look
    fig = json.loads(json.dumps(r.summary()))
    assert fig["predicted_gain_db"] == pytest.approx(r.predicted_gain_db, abs=1e-3)


def test_rd_never_returns_an_output_worse_where_people_are_predicted_to_look():
    """Driven by the opposite of the model's saliency, pruning would keep detail where nobody is
    predicted to look: the guard returns the plain JPEG instead."""
    encoder = Encoder("default", device="cpu", strength=1.0)
    encoder.strategy.shift_guard = False  # the PSNR guard alone
    encoder.strategy.shift_guard = False  # the pruned output itself, not the guard's choice
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))[:200, :300].copy()
    sal = encoder.compress(rgb).saliency
    r = encoder.compress(rgb, priority=sal.max() - sal)
    assert r.data == encoder.plain(rgb, 85) and r.predicted_gain_db == 0.0
    assert encoder.compress(rgb, priority=sal).predicted_gain_db > 0.2  # the right map is kept


def test_psnr_streamed_matches_weighted_psnr():
    from sspcodec.scoring import psnr_streamed

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    b = np.clip(a + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    cells = rng.random((12, 17))
    full = cells[np.arange(97) * 12 // 97][:, np.arange(131) * 17 // 131]  # each pixel's cell
    assert psnr_streamed(a, b, cells, band=1000) == pytest.approx(weighted_psnr(a, b, full), abs=1e-9)
    assert psnr_streamed(a, b, band=999) == pytest.approx(weighted_psnr(a, b, None), abs=1e-9)
    assert psnr_streamed(a, b, np.ones((3, 3))) == pytest.approx(psnr_streamed(a, b), abs=1e-9)
    assert psnr_streamed(a, a, cells) == float("inf")


def test_rd_plain_reference_at_bytes_counts_the_recoded_size(encoder):
    """The plain reference of a byte budget is fitted on baseline sizes, then re-coded: a finer
    quality whose re-coded (smaller) form fits must win, or the reference under-spends."""
    rgb = _photo(seed=5)
    target = len(encoder.plain(rgb, 80)) + 10  # q80 re-coded fits; its baseline form may not
    ref = encoder.plain_at_bytes(rgb, target)
    assert ref.quality == 80 and ref.data == encoder.plain(rgb, 80)
    assert len(encoder.plain(rgb, 81)) > target


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), True, "1"])
def test_strength_and_method_are_checked(encoder, bad):
    with pytest.raises(CompressError, match="strength"):
        Encoder(encoder.model, strength=bad)
    with pytest.raises(CompressError, match="method must be one of rd, search"):
        Encoder(encoder.model, method="fast")


def test_rd_carries_icc_and_writes_greyscale(encoder, tmp_path):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "tagged.png"
    Image.fromarray(_photo(seed=8)).save(src, icc_profile=profile)
    r = encoder.compress(src)
    with Image.open(io.BytesIO(r.data)) as im:
        assert im.info.get("icc_profile") == profile
    assert r.bytes <= r.baseline.bytes and r.data != encoder.plain(_photo(seed=8), 85)
    grey = _photo(seed=8)[..., 1]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    g = encoder.compress(tmp_path / "grey.png")
    with Image.open(io.BytesIO(g.data)) as im:
        assert im.mode == "L" and component_ids(g.data) == [1]
        assert np.abs(np.asarray(im).astype(int) - grey).mean() < 6
    assert 0.99 * g.baseline.bytes <= g.bytes <= g.baseline.bytes  # grey plain reference: 1 component too


def test_rd_priority_map_override_moves_quality(encoder):
    """`priority=` drives the pruning: each half is closer to the source when it is the salient one."""
    rgb = _photo(seed=5)
    half = rgb.shape[1] // 2
    left = np.zeros(rgb.shape[:2], np.float32)
    left[:, :half] = 1

    def errors(prio: np.ndarray) -> tuple[float, float]:
        err = (_decode(encoder.compress(rgb, priority=prio).data).astype(float) - rgb) ** 2
        return float(err[:, :half].mean()), float(err[:, half:].mean())

    (ll, lr), (rl, rr) = errors(left), errors(1 - left)
    assert ll < rl and rr < lr


def test_output_decodes_identically_everywhere(encoder):
    r = encoder.compress(_photo(seed=1), quality=70)
    pil = _decode(r.data)
    ocv = cv2.imdecode(np.frombuffer(r.data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal(pil, ocv)


@pytest.mark.parametrize("kind", ["max_bytes", "bpp", "max_bytes_text"])
def test_byte_budgets_are_honoured(encoder, kind):
    rgb = _photo(seed=2)
    target = len(encoder.plain(rgb, 60))
    opts = {
        "max_bytes": {"max_bytes": target},
        "bpp": {"bpp": target * 8 / (rgb.shape[0] * rgb.shape[1])},
        "max_bytes_text": {"max_bytes": f"{target}B"},
    }[kind]
    r = encoder.compress(rgb, **opts)
    assert r.bytes <= target
    assert r.baseline.bytes <= target


def test_max_shift_finds_fewer_bytes_within_the_shift(encoder):
    rgb = _photo(seed=3)
    hi = encoder.compress(rgb, quality=95)
    limit = hi.predicted_shift * 1.5 + 1e-4
    r = encoder.compress(rgb, max_shift=limit)
    assert r.predicted_shift <= limit
    assert r.bytes < hi.bytes  # a looser shift than q95's is reached with fewer bytes
    assert r.baseline.quality < 95 and r.bytes <= r.baseline.bytes
    assert "predicted shift at most" in r.target


def test_conflicting_or_bad_options_are_clear_errors(encoder):
    with pytest.raises(CompressError, match="at most one target"):
        encoder.compress(_photo(), bpp=1.0, quality=80)
    with pytest.raises(CompressError, match="too small"):
        encoder.compress(_photo(), max_bytes=50)
    with pytest.raises(CompressError, match="quality"):
        encoder.compress(_photo(), quality=101)


def test_accepts_pil_and_arrays_without_writing_files(encoder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = encoder.compress(_photo(seed=4))
    b = encoder.compress(Image.fromarray(_photo(seed=4)))
    assert a.data == b.data
    assert list(tmp_path.iterdir()) == []


def test_priority_map_override_changes_the_allocation(search_encoder, monkeypatch):
    """`priority=` reaches the search and shapes the output's quality map. The random-weight model
    may well prefer the plain JPEG, so the scores are tilted: the plain JPEG looks worst and no
    candidate is held back by the PSNR guard, so a reallocated candidate always wins."""
    encoder = search_encoder
    rgb = _photo(seed=5)
    left = np.zeros(rgb.shape[:2], np.float32)
    left[:, : rgb.shape[1] // 2] = 1
    real_run, seen = encoder.strategy.run, []

    def run(rgb, priority, target, plain, score, **kw):
        seen.append(priority)

        def tilted(datas):
            return [Score(s.ssm + 1.0, -np.inf) if d == plain.data else s for d, s in zip(datas, score(datas))]

        return real_run(rgb, priority, target, plain, tilted, **kw)

    monkeypatch.setattr(encoder.strategy, "run", run)
    g = encoder.compress(rgb, priority=left).quality_map
    half = g.shape[1] // 2
    assert seen[0][:, :half].min() > seen[0][:, half + 1 :].max()
    assert g.min() < g.max() and g[:, :half].mean() > g[:, half:].mean() + 1.0
    encoder.compress(rgb)  # the model's own saliency: another allocation
    assert not np.array_equal(seen[0], seen[1])


def test_max_shift_on_the_search(search_encoder):
    rgb = _photo(seed=3)
    hi = search_encoder.compress(rgb, quality=95)
    r = search_encoder.compress(rgb, max_shift=hi.predicted_shift * 1.5 + 1e-4)
    assert r.predicted_shift <= hi.predicted_shift * 1.5 + 1e-4 and r.bytes < hi.bytes


def test_shipped_model_beats_plain_jpegli_where_people_look():
    """The packaged model on the bundled astronaut, scored by a human-style map from fixations on
    the face (eyes, nose, mouth) and the mission patch: the default output must not lose to the
    plain jpegli JPEG that sets its budget (which has at least as many bytes) by > 0.1 dB."""
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    xy = np.array([[200, 96], [244, 96], [200, 98], [244, 98], [222, 120], [224, 144], [222, 70], [170, 384]], float)
    human = saliency_map(xy, rgb.shape[:2])
    enc = Encoder("default", device="cpu", strength=1.0)
    r = enc.compress(rgb)
    plain = enc.plain(rgb, 85)
    assert r.bytes <= len(plain)
    gain = weighted_psnr(rgb, _decode(r.data), human) - weighted_psnr(rgb, _decode(plain), human)
    assert gain > -0.1, gain
    assert gain > 0.3, gain  # measured +0.97 dB (PSNR -0.57 dB): it beats the plain JPEG, not only ties it


def test_module_level_compress_reuses_the_encoder(model_path):
    r1 = sspcodec.compress(_photo(seed=6), model=str(model_path), device="cpu")
    r2 = sspcodec.compress(_photo(seed=6), model=str(model_path), device="cpu")
    assert r1.data == r2.data
    assert json.loads(json.dumps(r1.summary()))["baseline"]["quality"] == 85


# ---------------- CLI ----------------
runner = CliRunner()


def _write(path: Path, seed: int = 0) -> Path:
    Image.fromarray(_photo(seed=seed)).save(path)
    return path


def test_cli_compress_json_and_report(tmp_path, model_path):
    src = _write(tmp_path / "in.png")
    out, rep = tmp_path / "out.jpg", tmp_path / "report.png"
    args = ["compress", str(src), "-o", str(out), "--json", "--report", str(rep), "--model", str(model_path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    fig = json.loads(res.output)
    assert fig["bytes"] == out.stat().st_size
    assert {"bytes", "bpp", "predicted_shift", "predicted_gain_db", "baseline", "model_evaluations"} <= set(fig)
    assert {"bytes", "bpp", "predicted_shift", "quality", "predicted_wpsnr_db"} <= set(fig["baseline"])
    assert set(fig["guard"]) == {"acted", "rounds", "fallback"}
    assert Image.open(rep).size[0] > 600  # three panels side by side


def test_cli_errors_are_one_line_and_files_are_safe(tmp_path, model_path):
    src = _write(tmp_path / "in.png")
    res = runner.invoke(app, ["compress", str(tmp_path / "missing.png"), "--model", str(model_path)])
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    res = runner.invoke(app, ["compress", str(bad), "-o", str(tmp_path / "o.jpg"), "--model", str(model_path)])
    assert res.exit_code == 2 and "error:" in res.output
    assert not (tmp_path / "o.jpg").exists()
    existing = tmp_path / "keep.jpg"
    existing.write_bytes(b"precious")
    res = runner.invoke(app, ["compress", str(src), "-o", str(existing), "--model", str(model_path)])
    assert res.exit_code == 2 and "--overwrite" in res.output
    assert existing.read_bytes() == b"precious"
    res = runner.invoke(app, ["compress", str(src), "-o", str(src), "--overwrite", "--model", str(model_path)])
    assert res.exit_code == 2 and "input" in res.output
    res = runner.invoke(app, ["compress", str(src), "--bpp", "1", "--quality", "80", "--model", str(model_path)])
    assert res.exit_code == 2 and "one target" in res.output


def test_cli_batch_is_resumable_and_isolates_failures(tmp_path, model_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    _write(src / "a.png", 1)
    _write(src / "sub" / "b.png", 2)
    (src / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    args = ["batch", str(src), str(dst), "--model", str(model_path), "--quality", "70"]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output  # one failure is reported, the rest is done
    assert (dst / "a.jpg").exists() and (dst / "sub" / "b.jpg").exists()
    assert "broken.jpg" in res.output and "encoded 2 image(s)" in res.output
    before = (dst / "a.jpg").stat().st_mtime_ns
    res = runner.invoke(app, args)
    assert "skipped 2 already done" in res.output
    assert (dst / "a.jpg").stat().st_mtime_ns == before


def test_batch_parallel_workers_match_in_process(tmp_path, model_path):
    from sspcodec.batch import run_batch

    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        _write(src / f"im{k}.png", k)
    one = run_batch(src, tmp_path / "one", {"quality": 70}, model=str(model_path), workers=1)
    two = run_batch(src, tmp_path / "two", {"quality": 70}, model=str(model_path), workers=2)
    assert one.done == two.done == 3 and not one.failed and not two.failed
    for k in range(3):
        assert (tmp_path / "one" / f"im{k}.jpg").read_bytes() == (tmp_path / "two" / f"im{k}.jpg").read_bytes()


def test_cli_ssm(tmp_path, model_path):
    src = _write(tmp_path / "in.png")
    jpg = tmp_path / "in_q20.jpg"
    Image.open(src).save(jpg, quality=20)
    out, raw = tmp_path / "ssm.png", tmp_path / "ssm.npy"
    res = runner.invoke(app, ["ssm", str(src), str(jpg), "-o", str(out), "--raw", str(raw), "--model", str(model_path)])
    assert res.exit_code == 0, res.output
    m = np.load(raw)
    assert m.shape == (120, 176) and m.min() >= 0 and m.max() <= 1
    assert Image.open(out).size == (176, 120)


def test_cli_help_teaches():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0 and "Examples" in res.output
    for cmd in ("compress", "batch", "ssm"):
        assert runner.invoke(app, [cmd, "--help"]).exit_code == 0


def test_cli_says_what_the_default_strength_writes_and_what_the_guard_did(tmp_path, model_path, monkeypatch):
    from sspcodec.methods.base import GuardNote
    from sspcodec.methods.rd import SHIFT_FALLBACK

    src = _write(tmp_path / "in.png")
    res = runner.invoke(app, ["compress", str(src), "-o", str(tmp_path / "a.jpg"), "--model", str(model_path)])
    assert res.exit_code == 0, res.output
    assert "strength 0 (default): the plain JPEG" in res.output and "guard:" not in res.output
    assert (tmp_path / "a.jpg").read_bytes() == Encoder(str(model_path), device="cpu").plain(_photo(), 85)
    real = Encoder.compress

    def guarded(self, *args, **kwargs):  # the tiny random model's guard may or may not act: make it
        r = real(self, *args, **kwargs)
        r.guard = GuardNote(2, SHIFT_FALLBACK)
        return r

    monkeypatch.setattr(Encoder, "compress", guarded)
    res = runner.invoke(app, ["compress", str(src), "-o", str(tmp_path / "b.jpg"), "--model", str(model_path),
                              "--strength", "1"])
    assert res.exit_code == 0, res.output
    assert f"guard: gave quality back where the output's predicted SSM rose above the plain JPEG's (2 rounds); " \
           f"then wrote the plain JPEG: {SHIFT_FALLBACK}" in res.output and "strength 0" not in res.output
