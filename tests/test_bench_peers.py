"""The strength curves' comparison of benchmarks/bench_peers.py (sspcodec.bench.tables.curve_gaps: the
figure issue 9's curve target is judged on)."""
from __future__ import annotations

import pytest

from sspcodec.bench.tables import curve_gaps


def _point(loss: float, gain: float) -> dict:
    return {"ssim2": -loss, "wpsnr_b": gain, "psnr": 0.0}


def test_curve_gap_interpolates_the_other_curve_at_the_same_loss():
    # two images; model mean points (1, 0.6) and (3, 1.2); centre mean points (2, 0.4) and (6, 0.8)
    curves = [
        {"model": {0: _point(0, 0), 0.5: _point(1.0, 0.5), 1: _point(2.0, 1.0)},
         "centre": {0: _point(0, 0), 0.5: _point(1.0, 0.3), 1: _point(5.0, 0.6)}},
        {"model": {0: _point(0, 0), 0.5: _point(1.0, 0.7), 1: _point(4.0, 1.4)},
         "centre": {0: _point(0, 0), 0.5: _point(3.0, 0.5), 1: _point(7.0, 1.0)}},
    ]
    rows = [line.split("|")[1:-1] for line in curve_gaps(curves, [0, 0.5, 1]).splitlines()[2:]]
    got = {float(r[0]): [float(x) for x in r[1:]] for r in rows}
    assert set(got) == {0.5, 1.0}  # strength 0 is the origin of both curves, not a point to compare
    assert got[0.5] == pytest.approx([1.0, 0.6, 0.2, 0.4])  # centre on the line from (0, 0) to (2, 0.4)
    assert got[1.0] == pytest.approx([3.0, 1.2, 0.5, 0.7], abs=1e-6)  # between (2, 0.4) and (6, 0.8)


def test_curve_gap_holds_the_other_curve_flat_beyond_its_last_point():
    curves = [{"model": {0: _point(0, 0), 1: _point(5.0, 1.0)}, "centre": {0: _point(0, 0), 1: _point(2.0, 0.3)}}]
    row = curve_gaps(curves, [0, 1]).splitlines()[2].split("|")[1:-1]
    assert [float(x) for x in row] == pytest.approx([1.0, 5.0, 1.0, 0.3, 0.7])


def _curve(scale: float) -> list[dict]:
    """Rate-quality points where the codec needs `scale` times jpegli's bytes for each score."""
    return [{"bpp": scale * b / 1e4, "ssim2": s} for b, s in ((1000, 50.0), (1500, 60.0), (2200, 68.0), (3200, 75.0))]


def test_bd_rate_vs_the_better_peer_takes_the_harder_peer_per_image():
    pytest.importorskip("bjontegaard")
    from sspcodec.bench.tables import bd_tables, bd_vs_best_peer

    sweeps = [  # image 1: mozjpeg is the harder peer; image 2: jpegli is
        {"jpegli": _curve(1.0), "mozjpeg": _curve(0.9), "turbo": _curve(1.2), "x": _curve(0.95)},
        {"jpegli": _curve(1.0), "mozjpeg": _curve(1.1), "turbo": _curve(1.2), "x": _curve(1.05)},
    ]
    v = bd_vs_best_peer(sweeps, "x", "ssim2")
    assert v == pytest.approx([100 * (0.95 / 0.9 - 1), 5.0], abs=0.3)
    table = bd_tables([{k: s[k] for k in ("jpegli", "mozjpeg", "x")} for s in sweeps], ["ssim2"])
    assert "BD-rate vs turbo" not in table  # a peer left out of the sweep has no table
    assert "better of jpegli and mozjpeg" in table and "(0 wins)" in table


def test_replot_redoes_the_tables_and_curves_of_a_saved_run(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("bjontegaard")
    root = Path(__file__).resolve().parents[1]
    sweeps = [{"jpegli": _curve(1.0), "mozjpeg": _curve(0.9), "x": _curve(0.95)}]
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps({"held_out": {"budgets": {}, "sweep_qualities": [30, 50, 70, 90], "sweeps": sweeps}}))
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_peers.py"), "--replot", str(saved),
                          "--plots", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BD-rate vs the better of jpegli and mozjpeg on each image" in out.stdout and "| x |" in out.stdout
    if "matplotlib" not in out.stdout:  # plotted unless matplotlib is missing
        assert (tmp_path / "bench_peers_run_rq.png").is_file()
