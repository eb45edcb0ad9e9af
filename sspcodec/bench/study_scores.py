"""Reading a training study's results back: `sspnet eval` scores, training histories, and the
tables that compare configs on the same left-out images (backbone_study.py, distil_study.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

#: The saliency metrics a study's table shows, in order.
METRICS = ("cc", "sim", "kld", "nss", "auc_judd")


def model_rows(eval_dir: Path) -> list[dict] | None:
    """The model's rows of `sspnet eval`'s per_image.csv (one per image), None before it exists."""
    path = eval_dir / "per_image.csv"
    if not path.is_file():
        return None
    with path.open() as f:
        return [r for r in csv.DictReader(f) if r.get("model") == "sspnet"]


def read_scores(eval_dir: Path) -> dict | None:
    """Mean metrics of the model row of `sspnet eval`'s per_image.csv (blank and nan cells left
    out), with "n" the images; None before it exists."""
    rows = model_rows(eval_dir)
    if rows is None:
        return None
    keys = [k for k in rows[0] if k not in ("model", "name", "dataset")] if rows else []
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if r[k] not in ("", "nan")]
        if vals:
            out[k] = sum(vals) / len(vals)
    return {**out, "n": len(rows)}


def per_image_cc(eval_dir: Path) -> dict[str, float]:
    """Image name -> the model's CC on it (empty before the score exists)."""
    return {r["name"]: float(r["cc"]) for r in model_rows(eval_dir) or []}


def best_epoch(run_dir: Path) -> tuple[float, int] | None:
    """Best validation loss and its epoch, from the run's history (None without one)."""
    path = run_dir / "history.json"
    if not path.is_file():
        return None
    hist = json.loads(path.read_text())
    best = min(hist, key=lambda h: h["val_loss"])
    return best["val_loss"], best["epoch"]


def params_m(config: str) -> float:
    """Parameters of *config*'s network, in millions."""
    from sspnet.net.model import build_model, count_parameters

    return count_parameters(build_model(config, pretrained_backbone=False)) / 1e6


def table(out: Path, configs: list[str], fs: dict[str, dict]) -> tuple[str, dict]:
    """Markdown table of every finished (config, fold) under *out* (OUT/<config>/<fold>/ runs,
    OUT/<config>/<fold>.eval/ scores) and the same numbers as a dict; the mean left-out CC only
    once every fold is scored."""
    from sspnet.net.configs import get_config

    names = list(fs)
    head = ["config", "backbone", "params M"]
    for f in names:
        head += [f"{f}: CC / SIM / KLD / NSS / AUC-Judd", f"{f}: best val loss (epoch)"]
    lines = ["| " + " | ".join(head + ["mean left-out CC"]) + " |", "|" + "---|" * (len(head) + 1)]
    data: dict = {}
    for c in configs:
        row = [c, get_config(c).backbone, f"{params_m(c):.2f}"]
        ccs, data[c] = [], {}
        for f in names:
            scores, best = read_scores(out / c / f"{f}.eval"), best_epoch(out / c / f)
            data[c][f] = {"scores": scores, "best": best}
            row.append(" / ".join(f"{scores[m]:.3f}" for m in METRICS) if scores else "-")
            row.append(f"{best[0]:.3f} ({best[1]})" if best else "-")
            if scores:
                ccs.append(scores["cc"])
        row.append(f"{sum(ccs) / len(ccs):.3f}" if len(ccs) == len(names) else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines), data


def paired(out: Path, configs: list[str], fs: dict[str, dict], ref: str) -> str:
    """Per fold, each config against `ref` on the same left-out images: mean CC difference and
    the two-sided Wilcoxon signed-rank p (paired by image, so photo difficulty cancels)."""
    from scipy.stats import wilcoxon

    lines = [f"| config | fold | images | mean CC - {ref} | Wilcoxon p |", "|---|---|--:|--:|--:|"]
    for f in fs:
        b = per_image_cc(out / ref / f"{f}.eval")
        for c in configs:
            a = per_image_cc(out / c / f"{f}.eval") if c != ref else {}
            names = sorted(set(a) & set(b))
            if not names:
                continue
            d = [a[n] - b[n] for n in names]
            p = wilcoxon(d).pvalue if any(d) else 1.0
            lines.append(f"| {c} | {f} | {len(names)} | {sum(d) / len(d):+.3f} | {p:.2g} |")
    return "\n".join(lines)


__all__ = ["METRICS", "best_epoch", "model_rows", "paired", "params_m", "per_image_cc", "read_scores", "table"]
