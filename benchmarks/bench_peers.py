"""sspcodec against the JPEG encoders people already use, at equal bytes, where real people look.

    python benchmarks/bench_peers.py [--limit 16] [--qualities 70 85] [--kodak 24]
        [--sweep] [--sweep-limit 8] [--sweep-step 5] [--strengths 0 0.5 1]
        [--plots DIR] [--json FILE] [--no-sspcodec] [--no-butteraugli] [--geometry fhd|4k|none]
        [--sspcodec-strength S [S ...]] [--part test|val] [--only CODEC ...]
    python benchmarks/bench_peers.py --replot FILE.json [--plots DIR]   # tables and plots of a saved run

Images
- Held-out OSIE + EyeCrowd images (the hash split `sspnet train` uses: 20% by image, seed 0; never
  used for training or tuning), spread over both sets as in bench_human.py. The stimuli are
  JPEGs, so each is Lanczos-downscaled by 2 (re-encoding a JPEG near its own grid spikes PSNR),
  and its fixations are scaled by the same factor (x' = (x + 0.5) / 2 - 0.5) before eq. 1 builds
  the human map at the half size (sigma = 45/1920 of the half width: the full-size map
  downscaled by 2).
- Kodak (PNG, no fixations): PSNR, SSIMULACRA2 and butteraugli only.

Codecs (sspcodec.bench.encoders): turbo, mozjpeg (progressive + trellis, its defaults), jpegli (pyjpegli
rewritten with optimised Huffman tables); sspcodec with its default settings (`sspcodec.Encoder()`:
RD pruning on a jpegli base driven by the model, exactly what `sspcodec compress` writes); and
saliency-weighted RD pruning on a jpegli base (sspcodec.quant.rdprune, its defaults: steps 0.70x
the plain fit's, floor 0.03, min_freq 3, chroma gain 0.55) driven by: the model's predicted saliency (rd-model), a
centre Gaussian fitted on the training split's fixations (rd-centre), a map built from half of
the observers (rd-human-A, held-out images only), and uniform weights (rd-uniform, the control:
RD pruning without any saliency).

Judges (sspcodec.bench.judges; `pip install "sspcodec[bench]"`): ColorVideoVDP JOD (global) and
FovVideoVDP JOD in foveated mode with the eye on each of up to 6 fixations of the *other* half of the
observers (mean and worst), at --geometry: fhd (24-inch FullHD at 0.6 m, ~38 px/degree; default)
or 4k (30-inch 4K at 0.75 m, ~75), the image shown 1:1; none skips them (Kodak has no fixations:
ColorVideoVDP only). The headline is the judges; the PSNRs below are diagnostics.

Metrics also: PSNR; human-weighted PSNR (wPSNR: per-pixel squared error weighted by the human map of
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
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sspcodec.bench.budgets import codecs_for, evaluate, run_strengths, sweep_qualities
from sspcodec.bench.encoders import Codec, SspcodecCodec
from sspcodec.bench.judges import Judges, missing
from sspcodec.bench.measures import BUTTERAUGLI, JUDGED, METRICS
from sspcodec.bench.paths import dataset_dirs, kodak_dir
from sspcodec.bench.plots import plot_curves, plot_strengths
from sspcodec.bench.tables import bd_tables, budget_tables, curve_gaps, strength_table
from sspcodec.bench.testsets import BenchImage, held_out_images, kodak_images, spread
from sspcodec.options import DEFAULT_STRENGTH


def only(codecs: list[Codec], names: Sequence[str] | None) -> list[Codec]:
    """The codecs named in *names* (all when None); "sspcodec" also keeps every sspcodec-sS."""
    if not names:
        return codecs
    return [c for c in codecs if c.name in names or ("sspcodec" in names and c.name.startswith("sspcodec-s"))]


def report(
    title: str, budgets: dict[int, list], sweeps: tuple[Sequence[int], list[dict]], metrics: Sequence[str],
    plots: Path | None, slug: str | None = None,
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
            name = slug or title.split()[0].lower()
            print(plot_curves(curves, metrics, plots / f"bench_peers_{name}_rq.png"))
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


def replot(path: Path, plots: Path | None) -> None:
    """The held-out tables and curves of a run saved with --json, redone without encoding."""
    saved = json.loads(path.read_text())["held_out"]
    budgets = {int(q): rows for q, rows in saved["budgets"].items()}
    sweeps = saved["sweeps"]
    rows = [r for s in sweeps for curve in s.values() for r in curve if r]
    rows += [r for per_image in budgets.values() for image in per_image for r in image.values()]
    metrics = [m for m in METRICS if any(r.get(m) is not None for r in rows)]
    print(f"replotted from {path}")
    report(f"Held-out OSIE/EyeCrowd (half size), {path.stem}", budgets, (saved["sweep_qualities"], sweeps), metrics,
           plots, slug=path.stem)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", default=dataset_dirs())
    ap.add_argument("--kodak-dir", type=Path, default=kodak_dir())
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
    ap.add_argument("--sspcodec-strength", type=float, nargs="+", default=[DEFAULT_STRENGTH],
                    help="the strength of the sspcodec codec (default: what `sspcodec compress` does); several: "
                         "one codec per strength, named sspcodec-sS")
    ap.add_argument("--part", default="test", choices=["test", "val"],
                    help="held-out images: test (the benchmark's) or val (for choosing settings)")
    ap.add_argument("--only", nargs="+", metavar="CODEC",
                    help="only these codecs (e.g. jpegli mozjpeg sspcodec; sspcodec covers every strength)")
    ap.add_argument("--no-butteraugli", action="store_true")
    ap.add_argument("--geometry", default="fhd", choices=["fhd", "4k", "none"],
                    help="viewing geometry of the judges (ColorVideoVDP, foveated FovVideoVDP); none: skip them")
    ap.add_argument("--plots", type=Path, help="folder for the rate-quality PNGs")
    ap.add_argument("--json", type=Path, help="write every per-image figure here")
    ap.add_argument("--replot", type=Path, metavar="JSON",
                    help="no run: the held-out tables (and, with --plots, the curves) of a saved --json file")
    args = ap.parse_args()
    if args.replot:
        replot(args.replot, args.plots)
        return

    from sspcodec import Encoder

    have_ba = not args.no_butteraugli and shutil.which(BUTTERAUGLI) is not None
    why_no_judges = "--geometry none" if args.geometry == "none" else missing()
    judges = None if why_no_judges else Judges(args.geometry)
    metrics = [m for m in METRICS if (m != "butteraugli" or have_ba) and (judges is not None or m not in JUDGED)]
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; model {args.model}")
    print(f"judges: {f'skipped ({why_no_judges})' if judges is None else f'{args.geometry} ({judges.display}), 1:1'}")
    if not have_ba:
        print(f"note: butteraugli skipped ({BUTTERAUGLI} {'disabled' if args.no_butteraugli else 'not found'})")
    print("held-out images: Lanczos 1/2 size; human maps from the fixations scaled by the same factor "
          "(eq. 1 at the half size, sigma = 45/1920 of its width)")
    t_start = time.perf_counter()
    # the default settings (what `sspcodec compress` does) unless --sspcodec-strength says otherwise
    encoder = Encoder(args.model, device="cpu", strength=args.sspcodec_strength[0])
    strengths = args.sspcodec_strength
    extra = {f"sspcodec-s{s:g}": Encoder(encoder.model, strength=s) for s in strengths} if len(strengths) > 1 else {}
    print(f"sspcodec strength {', '.join(f'{s:g}' for s in strengths)}; held-out part: {args.part}")
    n_held = max(args.limit, args.sweep_limit if args.sweep or args.strengths else 0)
    held, centre = held_out_images(args.data, n_held, args.part) if n_held else ([], None)
    if centre is None:
        from sspnet.baselines import CenterBias

        centre = CenterBias()
    print(f"centre Gaussian (fitted on the training split): mean {centre.mean}, sigma {centre.sigma}")

    def make(image: BenchImage) -> list[Codec]:
        codecs = codecs_for(image, encoder, centre, encoder.model.predict_saliency(image.rgb),
                            not args.no_sspcodec and not extra)
        if not args.no_sspcodec:
            codecs += [SspcodecCodec(enc, name) for name, enc in extra.items()]
        return only(codecs, args.only)

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmpdir:
        tmp = Path(tmpdir) if have_ba else None
        budgets, _ = evaluate(spread(held, args.limit), make, args.qualities, (), tmp, judges)
        few = spread(held, args.sweep_limit)
        qualities = sweep_qualities(args.sweep_step)
        sweeps = (qualities, evaluate(few, make, (), qualities, tmp, judges)[1] if args.sweep else [])
        results["held_out"] = report("Held-out OSIE/EyeCrowd (half size)", budgets, sweeps, metrics, args.plots)
        if args.strengths:
            results["strengths"] = strength_report(few, encoder, centre, args, args.plots)
        kodak = kodak_images(args.kodak_dir, args.kodak) if args.kodak else []
        if kodak:
            kb, _ = evaluate(kodak, make, [85], (), tmp, judges)
            kmetrics = [m for m in metrics if m not in ("wpsnr", "wpsnr_b", "fvvdp_mean", "fvvdp_worst")]
            results["kodak"] = report("Kodak (PNG, no fixations)", kb, ((), []), kmetrics, None)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"per-image figures: {args.json}")


if __name__ == "__main__":
    main()
