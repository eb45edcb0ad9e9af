"""Markdown tables of the codec benchmarks' rows: means at a budget, strength curves, BD-rate.

Kept apart from the runs so that a table can be redone from saved rows (--json) and tested on
hand-made ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from sspcodec.bench.encoders import PEERS
from sspcodec.bench.measures import JUDGED, LABELS, LOWER_IS_BETTER, Row

#: The peers "Δ vs best peer" compares with: per image and metric, the better of these.
BEST_PEERS = ("jpegli", "mozjpeg")


def metric_values(rows: list[dict[str, Row]], codec: str, metric: str) -> np.ndarray:
    """*codec*'s *metric* over the images of *rows* (nan where not measured)."""
    return np.array([np.nan if r[codec].get(metric) is None else r[codec][metric] for r in rows], float)


def best_peer(rows: list[dict[str, Row]], metric: str) -> np.ndarray:
    """Per image, the better of jpegli and mozjpeg on *metric*."""
    stack = np.stack([metric_values(rows, p, metric) for p in BEST_PEERS])
    return np.nanmin(stack, 0) if metric in LOWER_IS_BETTER else np.nanmax(stack, 0)


def _digits(metric: str) -> int:
    """Decimals shown: JOD differences that matter are hundredths, so the judges get three."""
    return 3 if metric in JUDGED else 2


def budget_tables(rows: list[dict[str, Row]], metrics: Sequence[str]) -> str:
    """Markdown: absolute means per codec, then the mean difference to the better peer (wins in
    parentheses: images where the codec is better)."""
    codecs = list(rows[0])
    head = "| codec | bytes/budget | " + " | ".join(LABELS[m] for m in metrics) + " | s/image |"
    lines = [head, "|" + "---|" * (len(metrics) + 3)]
    for c in codecs:
        cells = [f"{np.nanmean(metric_values(rows, c, m)):.{_digits(m)}f}" for m in metrics]
        ratio, secs = np.mean(metric_values(rows, c, "ratio")), np.mean(metric_values(rows, c, "seconds"))
        lines.append(f"| {c} | {ratio:.4f} | " + " | ".join(cells) + f" | {secs:.2f} |")
    lines += ["", "| codec − best peer | " + " | ".join(LABELS[m] for m in metrics) + " |",
              "|" + "---|" * (len(metrics) + 1)]
    for c in codecs:
        cells = []
        for m in metrics:
            d = metric_values(rows, c, m) - best_peer(rows, m)
            wins = int(np.sum(d < 0 if m in LOWER_IS_BETTER else d > 0))
            cells.append(f"{np.nanmean(d):+.{_digits(m)}f} ({wins}/{len(d)})")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def strength_table(curves: list[dict], strengths: Sequence[float]) -> str:
    """Markdown: mean ΔwPSNR-B / ΔSSIMULACRA2 / ΔPSNR vs plain jpegli per driver and strength."""
    lines = ["| driver | strength | ΔwPSNR-B (wins) | ΔSSIMULACRA2 | ΔPSNR |", "|---|---|---|---|---|"]
    for name in curves[0]:
        for st in strengths:
            d = {m: np.array([c[name][st][m] for c in curves]) for m in ("wpsnr_b", "ssim2", "psnr")}
            wins = int((d["wpsnr_b"] > 0).sum())
            lines.append(f"| {name} | {st:g} | {d['wpsnr_b'].mean():+.2f} ({wins}/{len(curves)}) | "
                         f"{d['ssim2'].mean():+.2f} | {d['psnr'].mean():+.2f} |")
    return "\n".join(lines)


def curve_gaps(curves: list[dict], strengths: Sequence[float], driver: str = "model", against: str = "centre") -> str:
    """Markdown: at each of *driver*'s mean points (SSIMULACRA2 loss, wPSNR-B gain), the gain of
    *against*'s curve at the same loss (linear between its points and the origin, which strength
    0 is; held at its last point beyond it) and the difference: how far one curve lies above the
    other at that loss."""
    def points(name: str) -> tuple[np.ndarray, np.ndarray]:
        loss = np.array([-np.mean([c[name][st]["ssim2"] for c in curves]) for st in strengths])
        gain = np.array([np.mean([c[name][st]["wpsnr_b"] for c in curves]) for st in strengths])
        return loss, gain

    loss, gain = points(driver)
    x, y = points(against)
    order = np.argsort(x)
    x, y = np.concatenate([[0.0], x[order]]), np.concatenate([[0.0], y[order]])
    lines = [f"| strength | {driver}: SSIMULACRA2 loss | {driver}: ΔwPSNR-B | {against} at that loss | difference |",
             "|--:|--:|--:|--:|--:|"]
    for st, lo, g in zip(strengths, loss, gain):
        if st == 0:
            continue
        other = float(np.interp(lo, x, y))
        lines.append(f"| {st:g} | {lo:.2f} | {g:+.2f} | {other:+.2f} | {g - other:+.2f} |")
    return "\n".join(lines)


def pareto_curve(rows: list[Row | None], metric: str) -> tuple[list[float], list[float]]:
    """(bpp, quality) points sorted by rate, keeping only those better than every cheaper point
    (BD-rate's interpolation needs a strictly increasing curve; a dominated point is one no
    user would pick). Quality is the metric, negated where lower is better."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    pts = sorted((r["bpp"], sign * r[metric]) for r in rows if r is not None and r[metric] is not None)
    rates: list[float] = []
    quals: list[float] = []
    for rate, qual in pts:
        if not quals or (qual > quals[-1] and rate > rates[-1]):
            rates.append(rate)
            quals.append(qual)
    return rates, quals


def bd_rate(anchor: list[Row | None], test: list[Row | None], metric: str) -> float:
    """BD-rate (%) of *test* against *anchor* on one image (Akima, on each curve's Pareto front);
    nan if the curves cannot be compared (too few points, too little overlap)."""
    import bjontegaard as bd

    (ra, da), (rt, dt) = pareto_curve(anchor, metric), pareto_curve(test, metric)
    if min(len(ra), len(rt)) < 4:
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(bd.bd_rate(ra, da, rt, dt, method="akima", require_matching_points=False))
    except (ValueError, ZeroDivisionError, np.linalg.LinAlgError):
        return float("nan")


def bd_vs_best_peer(sweeps: list[dict], codec: str, metric: str) -> np.ndarray:
    """Per image, *codec*'s BD-rate (%) against the better of jpegli and mozjpeg on that image
    (the larger of its two BD-rates: the peer that needs fewer bytes for the same score)."""
    per_peer = np.array([[bd_rate(s[p], s[codec], metric) for s in sweeps] for p in BEST_PEERS])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an image with no valid value stays nan
        return np.nanmax(per_peer, axis=0)


def _bd_cell(v: np.ndarray) -> str:
    """Mean over the images with a valid value, [their count] and (wins: images below 0)."""
    ok = np.isfinite(v)
    return f"{np.mean(v[ok]):+.1f} [{ok.sum()}] ({int(np.sum(v[ok] < 0))} wins)" if ok.any() else "n/a"


def bd_tables(sweeps: list[dict], metrics: Sequence[str]) -> str:
    """Markdown: mean BD-rate (%) over images of every codec against each peer in the sweep, then
    against the better of jpegli and mozjpeg per image, per metric (negative: fewer bytes for the
    same quality); [n] = images with a valid BD-rate, wins = images where it is negative."""
    codecs = list(sweeps[0])
    head = ["| codec | " + " | ".join(LABELS[m] for m in metrics) + " |", "|" + "---|" * (len(metrics) + 1)]
    out = []
    for anchor in (p for p in PEERS if p in codecs):
        out += [f"BD-rate vs {anchor} (%, mean over images [images with a valid value] (wins)):", "", *head]
        for c in codecs:
            if c != anchor:
                cells = [_bd_cell(np.array([bd_rate(s[anchor], s[c], m) for s in sweeps])) for m in metrics]
                out.append(f"| {c} | " + " | ".join(cells) + " |")
        out.append("")
    if all(p in codecs for p in BEST_PEERS):
        out += ["BD-rate vs the better of jpegli and mozjpeg on each image (%):", "", *head]
        for c in codecs:
            if c not in BEST_PEERS:
                out.append(f"| {c} | " + " | ".join(_bd_cell(bd_vs_best_peer(sweeps, c, m)) for m in metrics) + " |")
        out.append("")
    return "\n".join(out)


__all__ = [
    "BEST_PEERS",
    "bd_rate",
    "bd_tables",
    "bd_vs_best_peer",
    "best_peer",
    "budget_tables",
    "curve_gaps",
    "metric_values",
    "pareto_curve",
    "strength_table",
]
