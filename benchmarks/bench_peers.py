"""sspcodec against the JPEG encoders people already use, at equal bytes, where real people look.

    python benchmarks/bench_peers.py [--limit 16] [--qualities 70 85] [--kodak 24]
        [--sweep] [--sweep-limit 8] [--sweep-step 5] [--strengths 0 0.5 1]
        [--plots DIR] [--json FILE] [--no-sspcodec] [--no-butteraugli]

Images
- Held-out OSIE + EyeCrowd images (the hash split `sspnet train` uses: 20% by image, seed 0; never
  used for training or tuning), spread over both sets as in bench_human.py. The stimuli are
  JPEGs, so each is Lanczos-downscaled by 2 (re-encoding a JPEG near its own grid spikes PSNR),
  and its fixations are scaled by the same factor (x' = (x + 0.5) / 2 - 0.5) before eq. 1 builds
  the human map at the half size (sigma = 45/1920 of the half width: the full-size map
  downscaled by 2).
- Kodak (PNG, no fixations): PSNR, SSIMULACRA2 and butteraugli only.

Codecs (sspcodec.codecs): turbo, mozjpeg (progressive + trellis, its defaults), jpegli (pyjpegli
rewritten with optimised Huffman tables); sspcodec with its default settings (`sspcodec.Encoder()`:
RD pruning on a jpegli base driven by the model, exactly what `sspcodec compress` writes); and
saliency-weighted RD pruning on a jpegli base (sspcodec.quant.rdprune, its defaults: steps 0.70x
the plain fit's, floor 0.03, min_freq 3, chroma gain 0.55) driven by: the model's predicted saliency (rd-model), a
centre Gaussian fitted on the training split's fixations (rd-centre), a map built from half of
the observers (rd-human-A, held-out images only), and uniform weights (rd-uniform, the control:
RD pruning without any saliency).

Metrics: PSNR; human-weighted PSNR (wPSNR: per-pixel squared error weighted by the human map of
all observers); wPSNR-B (weighted by the map of the *other* half of the observers: the only fair
score for rd-human-A, since the same fixations must not set both the weights and the score);
SSIMULACRA2; butteraugli 3-norm (butteraugli_main; skipped with a note if absent). All decodes
use Pillow.

Budgets: the bytes of jpegli at --qualities (70 and 85); every codec writes its largest file
<= that budget (quality bisection for the plain peers, lambda bisection for rd-*, the candidate
search for sspcodec); "Δ vs best peer" compares, per image and metric, with the better of
jpegli and mozjpeg at that budget.

--sweep: every codec at qualities 30..95 (every --sweep-step, 95 included; rd-* and sspcodec
spend the bytes of their base's plain JPEG at that quality): mean rate-quality curves (PNG via
matplotlib, if installed) and BD-rate (PyPI bjontegaard, Akima, on each curve's Pareto front,
per image, then the mean) of every codec against every peer, per metric (butteraugli negated so
that higher is better).

--strengths S...: rd-pruning driven by the model, the centre Gaussian and half A of the
observers at each strength, at each budget, on the sweep images (--sweep-limit; --limit 0 skips
the budget tables): wPSNR-B gain against SSIMULACRA2 loss vs plain jpegli (table, the model's
gain minus the centre curve's at the same loss, and a PNG per budget with --plots).
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from sspcodec.codecs import Codec, JpegliCodec, PrunedCodec, SspcodecCodec, fixed_priority, get_codec
from sspcodec.quality import psnr, ssimulacra2_score, weighted_psnr
from sspcodec.quant.settings import PruneSettings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PEERS = ("turbo", "mozjpeg", "jpegli")
BEST_PEERS = ("jpegli", "mozjpeg")
METRICS = ("psnr", "wpsnr", "wpsnr_b", "ssim2", "butteraugli")
LABELS = {"psnr": "PSNR", "wpsnr": "wPSNR", "wpsnr_b": "wPSNR-B", "ssim2": "SSIMULACRA2", "butteraugli": "BA 3-norm"}
LOWER_IS_BETTER = {"butteraugli"}
BUTTERAUGLI = "butteraugli_main"


@dataclass
class BenchImage:
    """One test picture and the human maps that score it (None for Kodak)."""

    name: str
    rgb: np.ndarray
    human: np.ndarray | None = None  # all observers
    human_a: np.ndarray | None = None  # half A: drives rd-human-A
    human_b: np.ndarray | None = None  # half B: scores everything as wPSNR-B
    ref_png: Path | None = field(default=None, repr=False)  # for butteraugli


# -- images and maps ----------------------------------------------------------------------------

def half_size(rgb: np.ndarray) -> np.ndarray:
    """Lanczos downscale by 2 (integer output size)."""
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((w // 2, h // 2), Image.LANCZOS))


def scale_fixations(xy: np.ndarray, full_hw: tuple[int, int], hw: tuple[int, int]) -> np.ndarray:
    """Fixations (0-based pixel centres) of a full-size image in the pixels of a resized copy."""
    sy, sx = hw[0] / full_hw[0], hw[1] / full_hw[1]
    return np.stack([(xy[:, 0] + 0.5) * sx - 0.5, (xy[:, 1] + 0.5) * sy - 0.5], axis=1)


def observer_halves(observer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the fixations of half A (observers at even positions of the sorted list) and B."""
    ids = np.unique(observer)
    a = np.isin(observer, ids[0::2])
    return a, ~a


def held_out_images(roots: Sequence[Path], limit: int, part: str = "test") -> tuple[list[BenchImage], object]:
    """The held-out images (half size, with human maps) and a centre bias fitted on the train
    split. *part*: "test" (the benchmark's images) or "val" (the split's validation images, for
    choosing settings without looking at the test images)."""
    from sspnet.baselines import CenterBias
    from sspnet.maps import saliency_map
    from sspnet.training.experiments import read_saliency_items, split_holdout

    items = read_saliency_items(list(roots))
    train, val, test = split_holdout(items, 0.2, 0.1, 0)
    out = []
    for i in spread({"test": test, "val": val}[part], limit):
        item = items[i]
        rgb = half_size(np.asarray(Image.open(item.image_path).convert("RGB")))
        xy = scale_fixations(item.fixations.xy, item.shape, rgb.shape[:2])
        a, b = observer_halves(item.fixations.observer)
        out.append(BenchImage(
            f"{item.dataset}/{item.stem}", rgb, saliency_map(xy, rgb.shape[:2]),
            saliency_map(xy[a], rgb.shape[:2]), saliency_map(xy[b], rgb.shape[:2]),
        ))
    small = []  # training maps at 1/8 size: the centre bias lives in normalised coordinates
    for i in train:
        item = items[i]
        hw = (max(item.height // 8, 8), max(item.width // 8, 8))
        small.append(saliency_map(scale_fixations(item.fixations.xy, item.shape, hw), hw))
    return out, CenterBias.fit(small)


def sweep_qualities(step: int) -> tuple[int, ...]:
    """30, 30 + step, ... up to 95, always ending at 95."""
    return tuple(sorted(set(range(30, 95, step)) | {95}))


def spread(items: list, n: int) -> list:
    """*n* items evenly spaced over the list (both data sets, not the first set only)."""
    return items[:: max(1, len(items) // max(n, 1))][:n]


def kodak_images(folder: Path, limit: int) -> list[BenchImage]:
    files = sorted(folder.glob("kodim*.png"))[:limit]
    return [BenchImage(f.stem, np.asarray(Image.open(f).convert("RGB"))) for f in files]


# -- metrics ------------------------------------------------------------------------------------

def butteraugli(ref_png: Path, dist: np.ndarray, tmp: Path) -> float:
    """butteraugli_main's 3-norm of *dist* against the reference PNG (lower is better)."""
    path = tmp / "dist.png"
    Image.fromarray(dist).save(path)
    out = subprocess.run([BUTTERAUGLI, str(ref_png), str(path)], capture_output=True, text=True, check=True).stdout
    return float(next(line for line in out.splitlines() if line.startswith("3-norm:")).split(":")[1])


def measure(image: BenchImage, data: bytes, codec: Codec, tmp: Path | None) -> dict[str, float | None]:
    """Every metric of one encoding (None where the image has no map or butteraugli is absent)."""
    dec = codec.decode(data)
    ref = image.rgb
    return {
        "bytes": float(len(data)),
        "bpp": 8.0 * len(data) / (ref.shape[0] * ref.shape[1]),
        "psnr": psnr(ref, dec),
        "wpsnr": None if image.human is None else weighted_psnr(ref, dec, image.human),
        "wpsnr_b": None if image.human_b is None else weighted_psnr(ref, dec, image.human_b),
        "ssim2": ssimulacra2_score(ref, dec),
        "butteraugli": None if tmp is None or image.ref_png is None else butteraugli(image.ref_png, dec, tmp),
    }


# -- codecs -------------------------------------------------------------------------------------

def codecs_for(image: BenchImage, encoder, centre, saliency: np.ndarray, sspcodec: bool) -> list[Codec]:
    """The codecs compared on *image*: peers, sspcodec today, and RD pruning by each driver."""
    h, w = image.rgb.shape[:2]
    codecs: list[Codec] = [get_codec(n) for n in PEERS]
    if sspcodec:
        codecs.append(SspcodecCodec(encoder, "sspcodec"))
    codecs.append(PrunedCodec("rd-model", fixed_priority(saliency)))
    codecs.append(PrunedCodec("rd-centre", fixed_priority(centre.predict((h, w)))))
    if image.human_a is not None:
        codecs.append(PrunedCodec("rd-human-A", fixed_priority(image.human_a)))
    codecs.append(PrunedCodec("rd-uniform", fixed_priority(np.ones((h, w), np.float32))))
    return codecs


Row = dict[str, float | None]


def run_budget(image: BenchImage, codecs: Sequence[Codec], quality: int, tmp: Path | None) -> dict[str, Row]:
    """Every codec at the bytes of jpegli at *quality*: metrics, bytes/budget, seconds."""
    budget = len(JpegliCodec().encode(image.rgb, quality))
    rows = {}
    for codec in codecs:
        t0 = time.perf_counter()
        data = codec.encode_to_bytes(image.rgb, budget).data
        seconds = time.perf_counter() - t0
        rows[codec.name] = {**measure(image, data, codec, tmp), "ratio": len(data) / budget, "seconds": seconds}
    return rows


def run_sweep(image: BenchImage, codecs: Sequence[Codec], qualities: Sequence[int], tmp: Path | None) -> dict:
    """Every codec at every quality: {codec: [row per quality]} (a failed point is None)."""
    out: dict[str, list[Row | None]] = {}
    for codec in codecs:
        out[codec.name] = []
        for q in qualities:
            try:
                out[codec.name].append(measure(image, codec.encode(image.rgb, q), codec, tmp))
            except ValueError as exc:  # e.g. a budget the search cannot meet
                print(f"  {image.name} {codec.name} q{q}: skipped ({exc})")
                out[codec.name].append(None)
    return out


def pyplot():
    """matplotlib.pyplot on the file-only Agg back-end, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> str:
    """Write *fig* as a PNG (small: 80 dpi) and close it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    pyplot().close(fig)
    return f"plot: {path}"


def run_strengths(
    image: BenchImage, drivers: dict[str, np.ndarray], strengths: Sequence[float], quality: int
) -> dict[str, dict[float, Row]]:
    """rd-pruning driven by each map at each strength, at the bytes of jpegli at *quality*:
    {driver: {strength: differences to that plain jpegli}} (no butteraugli: speed)."""
    jpegli = JpegliCodec()
    plain = jpegli.encode(image.rgb, quality)
    ref = measure(image, plain, jpegli, None)
    out: dict[str, dict[float, Row]] = {}
    for name, prio in drivers.items():
        out[name] = {}
        for st in strengths:
            codec = PrunedCodec(name, fixed_priority(prio), settings=PruneSettings(st))
            row = measure(image, codec.encode_to_bytes(image.rgb, len(plain)).data, codec, None)
            out[name][st] = {m: row[m] - ref[m] for m in ("psnr", "wpsnr_b", "ssim2")}
    return out


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


def plot_strengths(curves: list[dict], strengths: Sequence[float], path: Path) -> str:
    """Human-weighted PSNR gain (other half of the observers) against SSIMULACRA2 loss, one line
    per driver, one point per strength."""
    plt = pyplot()
    if plt is None:
        return "matplotlib not installed: no plot"
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for name in curves[0]:
        loss = [-np.mean([c[name][st]["ssim2"] for c in curves]) for st in strengths]
        gain = [np.mean([c[name][st]["wpsnr_b"] for c in curves]) for st in strengths]
        ax.plot(loss, gain, marker="o", label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("SSIMULACRA2 loss vs plain jpegli (points)")
    ax.set_ylabel("wPSNR-B gain vs plain jpegli (dB)")
    ax.set_title(f"strength {', '.join(f'{st:g}' for st in strengths)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


# -- tables -------------------------------------------------------------------------------------

def _values(rows: list[dict[str, Row]], codec: str, metric: str) -> np.ndarray:
    return np.array([np.nan if r[codec].get(metric) is None else r[codec][metric] for r in rows], float)


def best_peer(rows: list[dict[str, Row]], metric: str) -> np.ndarray:
    """Per image, the better of jpegli and mozjpeg on *metric*."""
    stack = np.stack([_values(rows, p, metric) for p in BEST_PEERS])
    return np.nanmin(stack, 0) if metric in LOWER_IS_BETTER else np.nanmax(stack, 0)


def budget_tables(rows: list[dict[str, Row]], metrics: Sequence[str]) -> str:
    """Markdown: absolute means per codec, then the mean difference to the better peer (wins in
    parentheses: images where the codec is better)."""
    codecs = list(rows[0])
    head = "| codec | bytes/budget | " + " | ".join(LABELS[m] for m in metrics) + " | s/image |"
    lines = [head, "|" + "---|" * (len(metrics) + 3)]
    for c in codecs:
        cells = [f"{np.nanmean(_values(rows, c, m)):.2f}" for m in metrics]
        ratio, secs = np.mean(_values(rows, c, "ratio")), np.mean(_values(rows, c, "seconds"))
        lines.append(f"| {c} | {ratio:.4f} | " + " | ".join(cells) + f" | {secs:.2f} |")
    lines += ["", "| codec − best peer | " + " | ".join(LABELS[m] for m in metrics) + " |",
              "|" + "---|" * (len(metrics) + 1)]
    for c in codecs:
        cells = []
        for m in metrics:
            d = _values(rows, c, m) - best_peer(rows, m)
            wins = int(np.sum(d < 0 if m in LOWER_IS_BETTER else d > 0))
            cells.append(f"{np.nanmean(d):+.2f} ({wins}/{len(d)})")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
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
    import warnings

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


def bd_tables(sweeps: list[dict], metrics: Sequence[str]) -> str:
    """Markdown: mean BD-rate (%) over images of every codec against each peer, per metric
    (negative: fewer bytes for the same quality); [n] = images with a valid BD-rate."""
    codecs = list(sweeps[0])
    out = []
    for anchor in PEERS:
        out += [f"BD-rate vs {anchor} (%, mean over images [images with a valid value]):", "",
                "| codec | " + " | ".join(LABELS[m] for m in metrics) + " |", "|" + "---|" * (len(metrics) + 1)]
        for c in codecs:
            if c == anchor:
                continue
            cells = []
            for m in metrics:
                v = np.array([bd_rate(s[anchor], s[c], m) for s in sweeps])
                ok = np.isfinite(v)
                cells.append(f"{np.mean(v[ok]):+.1f} [{ok.sum()}]" if ok.any() else "n/a")
            out.append(f"| {c} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot_curves(sweeps: list[dict], metrics: Sequence[str], path: Path) -> str:
    """Mean rate-quality curves (mean bpp, mean metric at each sweep quality) as one PNG."""
    plt = pyplot()
    if plt is None:
        return "matplotlib not installed: no plot"
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 4.0 * rows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, m in zip(axes.flat, metrics):
        for c in sweeps[0]:
            pts = [[(r["bpp"], r[m]) if r and r[m] is not None else (np.nan, np.nan) for r in s[c]] for s in sweeps]
            mean = np.nanmean(np.array(pts, float), axis=0)
            ax.plot(mean[:, 0], mean[:, 1], marker=".", label=c, lw=1.2, ls="--" if c in PEERS else "-")
        ax.set_xlabel("bits per pixel (mean)")
        ax.set_title(LABELS[m] + (" (lower is better)" if m in LOWER_IS_BETTER else ""))
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    return save(fig, path)


# -- driver -------------------------------------------------------------------------------------

def evaluate(
    images: list[BenchImage], make_codecs: Callable[[BenchImage], list[Codec]], qualities: Sequence[int],
    sweep: Sequence[int], tmp: Path | None,
) -> tuple[dict[int, list], list[dict]]:
    """Budget rows per quality and sweep curves per image, printing progress."""
    budgets: dict[int, list] = {q: [] for q in qualities}
    sweeps: list[dict] = []
    for k, image in enumerate(images):
        t0 = time.perf_counter()
        if tmp is not None:
            image.ref_png = tmp / f"ref{k}.png"
            Image.fromarray(image.rgb).save(image.ref_png)
        codecs = make_codecs(image)
        for q in qualities:
            budgets[q].append(run_budget(image, codecs, q, tmp))
        if sweep:
            sweeps.append(run_sweep(image, codecs, sweep, tmp))
        print(f"[{k + 1}/{len(images)}] {image.name} {image.rgb.shape[1]}x{image.rgb.shape[0]} "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return budgets, sweeps


def report(
    title: str, budgets: dict[int, list], sweeps: tuple[Sequence[int], list[dict]], metrics: Sequence[str],
    plots: Path | None,
) -> dict:
    """Print the tables of one image set; return them (and the raw rows) for --json."""
    print(f"\n## {title}\n")
    for q, rows in budgets.items():
        if rows:
            print(f"### budget: bytes of jpegli q{q} ({len(rows)} images)\n\n{budget_tables(rows, metrics)}\n")
    qualities, curves = sweeps
    if curves:
        qs = ", ".join(map(str, qualities))
        print(f"### sweep q = {qs} ({len(curves)} images)\n\n{bd_tables(curves, metrics)}")
        if plots is not None:
            slug = title.split()[0].lower()
            print(plot_curves(curves, metrics, plots / f"bench_peers_{slug}_rq.png"))
    return {"budgets": {str(q): r for q, r in budgets.items()}, "sweep_qualities": list(qualities), "sweeps": curves}


def strength_report(images: list[BenchImage], encoder, centre, args: argparse.Namespace, plots: Path | None) -> dict:
    """The --strengths experiment at every budget quality: run, print the tables (and plots),
    return the raw curves."""
    drivers = [{"model": encoder.model.predict_saliency(image.rgb), "centre": centre.predict(image.rgb.shape[:2]),
                "human-A": image.human_a} for image in images]  # once per image, whatever the budgets
    out = {}
    for q in args.qualities:
        curves = [run_strengths(image, maps, args.strengths, q) for image, maps in zip(images, drivers)]
        print(f"\n### strength: rd-pruning vs plain jpegli at the bytes of jpegli q{q} ({len(images)} images)\n")
        print(strength_table(curves, args.strengths))
        print(f"\nmodel against the centre Gaussian at the same SSIMULACRA2 loss\n\n"
              f"{curve_gaps(curves, args.strengths)}")
        if plots is not None:
            print(plot_strengths(curves, args.strengths, plots / f"bench_peers_strength_q{q}.png"))
        out[str(q)] = [{name: {str(st): row for st, row in c.items()} for name, c in curve.items()} for curve in curves]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+",
                    default=[SHARED / "datasets" / "osie", SHARED / "datasets" / "eyecrowd"])
    ap.add_argument("--kodak-dir", type=Path, default=SHARED / "images" / "kodak")
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=16, help="held-out images at the budgets (0: none)")
    ap.add_argument("--qualities", type=int, nargs="+", default=[70, 85], help="budgets: bytes of jpegli at q")
    ap.add_argument("--kodak", type=int, default=24, help="Kodak images at the q85 budget (0: none)")
    ap.add_argument("--sweep", action="store_true", help="also the q-sweep 30..95 (curves, BD-rate)")
    ap.add_argument("--sweep-limit", type=int, default=8, help="held-out images in the sweep")
    ap.add_argument("--sweep-step", type=int, default=5, help="sweep qualities 30, 30+step, ..., 95")
    ap.add_argument("--strengths", type=float, nargs="*", default=[],
                    help="also rd-pruning at these strengths (e.g. 0 0.25 0.5 0.75 1) on the sweep images at "
                         "every budget quality: wPSNR-B gain vs SSIMULACRA2 loss per driver")
    ap.add_argument("--no-sspcodec", action="store_true", help="leave out today's sspcodec (slowest codec)")
    ap.add_argument("--no-butteraugli", action="store_true")
    ap.add_argument("--plots", type=Path, help="folder for the rate-quality PNGs")
    ap.add_argument("--json", type=Path, help="write every per-image figure here")
    args = ap.parse_args()

    from sspcodec import Encoder

    have_ba = not args.no_butteraugli and shutil.which(BUTTERAUGLI) is not None
    metrics = [m for m in METRICS if m != "butteraugli" or have_ba]
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; model {args.model}")
    if not have_ba:
        print(f"note: butteraugli skipped ({BUTTERAUGLI} {'disabled' if args.no_butteraugli else 'not found'})")
    print("held-out images: Lanczos 1/2 size; human maps from the fixations scaled by the same factor "
          "(eq. 1 at the half size, sigma = 45/1920 of its width)")
    t_start = time.perf_counter()
    encoder = Encoder(args.model, device="cpu")  # the default settings: what `sspcodec compress` does
    n_held = max(args.limit, args.sweep_limit if args.sweep or args.strengths else 0)
    held, centre = held_out_images(args.data, n_held) if n_held else ([], None)
    if centre is None:
        from sspnet.baselines import CenterBias

        centre = CenterBias()
    print(f"centre Gaussian (fitted on the training split): mean {centre.mean}, sigma {centre.sigma}")

    def make(image: BenchImage) -> list[Codec]:
        return codecs_for(image, encoder, centre, encoder.model.predict_saliency(image.rgb), not args.no_sspcodec)

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmpdir:
        tmp = Path(tmpdir) if have_ba else None
        budgets, _ = evaluate(spread(held, args.limit), make, args.qualities, (), tmp)
        few = spread(held, args.sweep_limit)
        qualities = sweep_qualities(args.sweep_step)
        sweeps = (qualities, evaluate(few, make, (), qualities, tmp)[1] if args.sweep else [])
        results["held_out"] = report("Held-out OSIE/EyeCrowd (half size)", budgets, sweeps, metrics, args.plots)
        if args.strengths:
            results["strengths"] = strength_report(few, encoder, centre, args, args.plots)
        kodak = kodak_images(args.kodak_dir, args.kodak) if args.kodak else []
        if kodak:
            kb, _ = evaluate(kodak, make, [85], (), tmp)
            kmetrics = [m for m in metrics if m not in ("wpsnr", "wpsnr_b")]
            results["kodak"] = report("Kodak (PNG, no fixations)", kb, ((), []), kmetrics, None)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"per-image figures: {args.json}")


if __name__ == "__main__":
    main()
