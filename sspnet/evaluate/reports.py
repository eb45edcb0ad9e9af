"""Score rows to tables: per-group summaries, Markdown, CSV and significance tests.

Rows are plain dicts (one per image and model: "name", "model", grouping fields, metrics), so
they go straight to CSV, to `summarize` (tables per model, or per model x distortion x level),
and to `significance` (the paper's independent-samples tests, via `sspnet.evaluate.stats`).
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sspnet.evaluate import stats

from ..metrics import HIGHER_IS_BETTER, METRICS

__all__ = ["LABELS", "markdown_table", "significance", "significance_table", "summarize", "write_csv"]

LABELS: dict[str, str] = {"cc": "CC", "sim": "SIM", "kld": "KLD", "nss": "NSS", "auc_judd": "AUC-Judd"}


def _metric_keys(rows: Sequence[dict]) -> list[str]:
    """Metric columns present in the rows, in METRICS order."""
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    return [m for m in METRICS if m in present]


def summarize(
    rows: Sequence[dict], by: Sequence[str] = ("model",), metrics: Sequence[str] | None = None
) -> list[dict]:
    """Mean and sample std (ddof=1) per group; groups in order of first appearance.

    Each output dict: the `by` fields, "n", and "<metric>_mean", "<metric>_std".
    """
    metrics = list(metrics) if metrics is not None else _metric_keys(rows)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out: list[dict] = []
    for key, members in groups.items():
        s: dict = dict(zip(by, key))
        s["n"] = len(members)
        for m in metrics:
            mean, std = stats.summary([r[m] for r in members if m in r])
            s[f"{m}_mean"], s[f"{m}_std"] = mean, std
        out.append(s)
    return out


def _fmt(x: Any, digits: int) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        text = f"{x:.{digits}f}"
        return text.lstrip("-") if float(text) == 0.0 else text  # no "-0.000" from rounding
    return str(x)


def _arrow(metric: str) -> str:
    return "↑" if HIGHER_IS_BETTER.get(metric, True) else "↓"


def markdown_table(summary: Sequence[dict], digits: int = 3) -> str:
    """Summary rows as a Markdown table: group columns, n, then "mean ± std" per metric with an
    arrow for the better direction (↑ higher, ↓ lower), as the paper's tables."""
    if not summary:
        return ""
    keys = list(summary[0].keys())
    metrics = [k[: -len("_mean")] for k in keys if k.endswith("_mean")]
    groups = [k for k in keys if k != "n" and not k.endswith(("_mean", "_std"))]
    head = groups + ["n"] + [f"{LABELS.get(m, m)} {_arrow(m)}" for m in metrics]
    align = ["---"] * len(groups) + ["--:"] * (1 + len(metrics))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for s in summary:
        cells = [str(s.get(g, "")) for g in groups] + [str(s.get("n", ""))]
        cells += [f"{_fmt(s[f'{m}_mean'], digits)} ± {_fmt(s[f'{m}_std'], digits)}" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """All rows to CSV (columns: union of keys in first-seen order; floats at full precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _scores_by_name(rows: Sequence[dict], model: str, metric: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        if r.get("model") != model or metric not in r:
            continue
        if r["name"] in out:
            raise ValueError(f"model {model!r} has two scores for item {r['name']!r}")
        out[r["name"]] = float(r[metric])
    return out


def significance(
    rows: Sequence[dict], model_a: str, model_b: str, metric: str, alpha: float = 0.05, equal_var: bool = False
) -> stats.Comparison:
    """`stats.compare` of two models' per-image scores of one metric.

    Scores are matched by item name so both samples cover exactly the same images (an image
    one model lacks is dropped from both); the test itself is the paper's independent-samples
    protocol (t-test or Mann-Whitney U).
    """
    a = _scores_by_name(rows, model_a, metric)
    b = _scores_by_name(rows, model_b, metric)
    common = [n for n in a if n in b]
    if not common:
        raise ValueError(f"models {model_a!r} and {model_b!r} share no scored item for {metric!r}")
    return stats.compare([a[n] for n in common], [b[n] for n in common], alpha=alpha, equal_var=equal_var)


def significance_table(
    rows: Sequence[dict], model: str, others: Sequence[str], metrics: Sequence[str] | None = None, alpha: float = 0.05
) -> str:
    """Markdown: `model` against each other model per metric (test, p, significant, better)."""
    metrics = list(metrics) if metrics is not None else _metric_keys(rows)
    lines = [
        "| comparison | metric | test | statistic | p | significant | better |",
        "|---|---|---|--:|--:|:-:|---|",
    ]
    for other in others:
        for m in metrics:
            c = significance(rows, model, other, m, alpha)
            higher = HIGHER_IS_BETTER.get(m, True)
            better = model if (c.mean_a > c.mean_b) == higher else other
            if c.mean_a == c.mean_b:
                better = "tie"
            p = f"{c.p_value:.3g}"
            lines.append(
                f"| {model} vs {other} | {LABELS.get(m, m)} | {c.test} | {c.statistic:.4g} | {p} | "
                f"{'yes' if c.significant else 'no'} | {better} |"
            )
    return "\n".join(lines) + "\n"
