"""The figures of `benchmarks/gpu_check.sh` that no other benchmark prints, and its summary.

Subcommands (each writes JSON the summary reads; all run on the CPU too, for testing):

- `agreement`  bf16 autocast against fp32 on the same inputs: saliency maps (max |diff|, CC) and,
               for a ladder of JPEG candidates of each photo, the predicted shift (mean SSM) per
               candidate: its largest error, as such and as a fraction of the spread of the
               ladder's shifts (a relative error per candidate explodes near zero shift), the
               rank correlation of the candidates and whether both precisions pick the same
               least-shift candidate (what the codec acts on)
- `encode`     a 1920x1080 photo through `sspcodec compress` (the CLI, wall time of the whole
               command: start, model load, encode) and through `sspcodec.Encoder` in one process
               (model load once, then the median of warm calls; a plain q85 JPEG as the baseline)
- `synth-data` an OSIE-format folder of synthetic images for the training run when no real
               data is present (the tests' generator, `tests/helpers_data.py`)
- `has-imagenet-weights`  exit 0 when MobileNetV2's ImageNet weights are installed
- `summary`    one Markdown page of every figure, with the card's name
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = ROOT / "examples" / "astronaut.png"
TARGET_CAND_PER_S = 1000.0  # issue 12: `default` at batch 64, bf16
TARGET_1080P_S = 0.3  # issue 12: one 1920x1080 compress on the GPU


def photos(limit: int) -> list[Path]:
    """Kodak images when ../shared is there, else the packaged example photo."""
    from sspcodec.bench.paths import kodak_dir

    kodak = kodak_dir()
    found = sorted(kodak.glob("*.png"))[:limit] if kodak.is_dir() else []
    return found or [FALLBACK]


def jpeg_ladder(rgb: np.ndarray, n: int) -> list[np.ndarray]:
    """`n` decoded JPEGs of `rgb` at qualities spread over 5..95: the kind of candidates the codec scores."""
    out = []
    for q in np.linspace(5, 95, n).round().astype(int):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=int(q))
        out.append(np.asarray(Image.open(buf).convert("RGB")))
    return out


def to_batch(images: list[np.ndarray], size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Letterboxed float batch in [0, 1], channels_last on CUDA (as the model's own API does)."""
    from sspnet.preprocess import letterbox

    canvases = np.stack([letterbox(im, size)[0] for im in images])
    x = torch.from_numpy(canvases).to(device).permute(0, 3, 1, 2).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


def shift_maps(model, pristine: torch.Tensor, cands: torch.Tensor, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(SM_r, SSM of every candidate) in fp32, or under bf16 autocast, returned as float32."""
    ctx = torch.autocast(pristine.device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(
        pristine.device.type, enabled=False)
    with torch.inference_mode(), ctx:
        sm_r = model.saliency(pristine, "r").float()
        sm_d = model.saliency(cands, "d").float()
    return sm_r, model.shift(sm_d, sm_r.expand_as(sm_d))


def _cc(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def agreement_rows(model, name: str, files: list[Path], n_cand: int, device: torch.device) -> dict:
    """bf16-vs-fp32 figures of one model over the photos (worst case over photos where it matters)."""
    from scipy.stats import spearmanr

    size = model.config.input_size
    sal_max, sal_cc, abs_err, spread_err, rho, same_pick = [], [], [], [], [], 0
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        p, c = to_batch([rgb], size, device), to_batch(jpeg_ladder(rgb, n_cand), size, device)
        sm32, ssm32 = shift_maps(model, p, c, bf16=False)
        sm16, ssm16 = shift_maps(model, p, c, bf16=True)
        sal_max.append(float((sm32 - sm16).abs().max()))
        sal_cc.append(_cc(sm32, sm16))
        s32, s16 = ssm32.mean(dim=(1, 2, 3)).double().cpu(), ssm16.mean(dim=(1, 2, 3)).double().cpu()
        err = float((s16 - s32).abs().max())
        abs_err.append(err)
        spread_err.append(err / max(float(s32.max() - s32.min()), 1e-12))
        rho.append(float(spearmanr(s32.numpy(), s16.numpy()).statistic))
        same_pick += int(s32.argmin() == s16.argmin())
    return {
        "model": name, "photos": len(files), "candidates_per_photo": n_cand,
        "saliency_max_abs_diff": max(sal_max), "saliency_cc_min": min(sal_cc),
        "shift_abs_err_max": max(abs_err), "shift_err_over_spread_max": max(spread_err),
        "shift_rank_corr_min": min(rho),
        "same_least_shift_candidate": f"{same_pick}/{len(files)}",
    }


def cmd_agreement(args: argparse.Namespace) -> int:
    import sspnet
    from sspnet.device import resolve_device

    device = resolve_device(args.device)
    files = photos(args.photos)
    rows = []
    for config in args.configs:
        torch.manual_seed(0)
        if config == "default":  # the shipped weights: the model sspcodec runs
            model, label = sspnet.load_model("default", device=str(device)), "default (packaged weights)"
        else:
            model, label = sspnet.build_model(config).eval().to(device), f"{config} (random weights)"
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        rows.append(agreement_rows(model, label, files, args.candidates, device))
        print(json.dumps(rows[-1]), flush=True)
        del model
    Path(args.out).write_text(json.dumps({"device": device_name(device), "rows": rows}, indent=1))
    return 0


def photo_1080p(dest: Path) -> Path:
    """A 1920x1080 photo: the last Kodak image (or the example photo) cropped to 16:9 and resized."""
    src = Image.open(photos(24)[-1]).convert("RGB")
    w, h = src.size
    ch = min(h, round(w * 9 / 16))
    cw = round(ch * 16 / 9)
    top, left = (h - ch) // 2, (w - cw) // 2
    src.crop((left, top, left + cw, top + ch)).resize((1920, 1080), Image.LANCZOS).save(dest)
    return dest


def cmd_encode(args: argparse.Namespace) -> int:
    import sspcodec

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    png = photo_1080p(work / "photo_1920x1080.png")
    cli = [sys.executable, "-m", "sspcodec.cli", "compress", str(png), "-o", str(work / "photo.sspcodec.jpg"),
           "--device", args.device, "--json", "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.run(cli, capture_output=True, text=True)
    cli_s = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return proc.returncode
    cli_json = json.loads(proc.stdout[proc.stdout.index("{"):])

    rgb = np.asarray(Image.open(png).convert("RGB"))
    t0 = time.perf_counter()
    enc = sspcodec.Encoder("default", device=args.device)
    load_s = time.perf_counter() - t0
    device = enc.model.device
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    enc.compress(rgb)  # warm-up: kernel selection, allocator, first letterbox
    times, result = [], None
    for _ in range(args.repeats):
        sync()
        t0 = time.perf_counter()
        result = enc.compress(rgb)
        sync()
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(3):
        enc.plain(rgb, 85)
    plain_s = (time.perf_counter() - t0) / 3
    out = {
        "device": device_name(device), "image": "1920x1080", "source": photos(24)[-1].name,
        "cli_wall_s": cli_s, "cli_bytes": cli_json.get("bytes"), "cli_predicted_shift": cli_json.get("predicted_shift"),
        "model_load_s": load_s, "compress_s_median": statistics.median(times), "compress_s_min": min(times),
        "repeats": args.repeats, "plain_q85_s": plain_s, "model_evaluations": result.model_evaluations,
        "bytes": result.bytes, "shift_reduction": result.shift_reduction, "target_s": TARGET_1080P_S,
    }
    print(json.dumps(out, indent=1))
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


def cmd_synth_data(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers_data import write_blob_dataset

    write_blob_dataset(args.dest, n=args.n, size=(384, 288))
    print(f"wrote {args.n} synthetic images to {args.dest}")
    return 0


def cmd_has_weights(_args: argparse.Namespace) -> int:
    from sspnet.net.backbones import build_backbone

    try:
        build_backbone("mobilenet_v2", pretrained=True)
    except Exception as exc:  # any failure means: train without them
        print(f"no ImageNet weights for mobilenet_v2: {exc}", file=sys.stderr)
        return 1
    return 0


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()})"


# ----------------------------------------------------------------------------- summary

GPU_ROW = re.compile(r"^(default|paper-resnet50)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s*$")


def bench_rows(text: str) -> list[tuple[str, int, float, float, float]]:
    """(model, batch, tensor ms/cand, end-to-end ms/cand, cand/s) rows of bench_model.py's GPU table."""
    rows = []
    for line in text.splitlines():
        m = GPU_ROW.match(line)
        if m:
            rows.append((m[1], int(m[2]), float(m[3]), float(m[4]), float(m[5])))
    return rows


def _load(path: Path) -> dict | list | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _history_table(runs: dict[str, list[dict]]) -> list[str]:
    lines = ["| run | epoch | train loss | val loss | images/s |", "|---|--:|--:|--:|--:|"]
    for name, hist in runs.items():
        for h in hist:
            lines.append(f"| {name} | {h['epoch']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | "
                         f"{h['images_per_s']:.1f} |")
    return lines


def cmd_summary(args: argparse.Namespace) -> int:
    out, work = Path(args.out), Path(args.work)
    lines = [f"# GPU check ({time.strftime('%Y-%m-%d %H:%M')})", ""]
    env = work / "env.txt"
    if env.is_file():
        lines += ["```", env.read_text().strip(), "```", ""]
    lines += ["## Steps", "", "| step | exit | seconds |", "|---|--:|--:|"]
    steps = work / "steps.tsv"
    for row in (steps.read_text().splitlines() if steps.is_file() else []):
        name, rc, secs = row.split("\t")
        lines.append(f"| {name} | {rc}{'' if rc == '0' else ' FAILED'} | {float(secs):.0f} |")

    bench = out / "bench_model.txt"
    rows = bench_rows(bench.read_text()) if bench.is_file() else []
    if rows:
        lines += ["", "## Model speed, bf16 autocast (benchmarks/bench_model.py)", "",
                  "| model | batch | tensor ms/cand | end-to-end ms/cand | cand/s (tensor) |", "|---|--:|--:|--:|--:|"]
        lines += [f"| {m} | {b} | {t:.3f} | {e:.3f} | {c:.0f} |" for m, b, t, e, c in rows]
        at64 = [c for m, b, _t, _e, c in rows if m == "default" and b == 64]
        if at64:
            verdict = "met" if at64[0] >= TARGET_CAND_PER_S else "NOT met"
            lines += ["", f"`default` at batch 64: {at64[0]:.0f} candidates/s "
                          f"(target >= {TARGET_CAND_PER_S:.0f}: {verdict})"]

    agree = _load(out / "agreement.json")
    if agree:
        lines += ["", f"## bf16 vs fp32 agreement ({agree['device']})", "",
                  "| model | photos x candidates | saliency max abs diff | saliency CC min | shift abs. err max | "
                  "err / shift spread max | candidate rank corr. min | same least-shift pick |",
                  "|---|--:|--:|--:|--:|--:|--:|--:|"]
        for r in agree["rows"]:
            lines.append(f"| {r['model']} | {r['photos']} x {r['candidates_per_photo']} | "
                         f"{r['saliency_max_abs_diff']:.4f} | {r['saliency_cc_min']:.5f} | "
                         f"{r['shift_abs_err_max']:.2e} | {r['shift_err_over_spread_max']:.4f} | "
                         f"{r['shift_rank_corr_min']:.4f} | "
                         f"{r['same_least_shift_candidate']} |")

    enc = _load(out / "encode.json")
    if enc:
        verdict = "met" if enc["compress_s_median"] <= TARGET_1080P_S else "NOT met"
        lines += ["", f"## 1920x1080 encode ({enc['device']})", "",
                  f"- `sspcodec compress` command, wall (start + model load + encode): {enc['cli_wall_s']:.2f} s",
                  f"- `Encoder.compress`, warm, median of {enc['repeats']}: {enc['compress_s_median']:.3f} s "
                  f"(min {enc['compress_s_min']:.3f} s; target <= {TARGET_1080P_S} s: {verdict}); model load "
                  f"{enc['model_load_s']:.2f} s; {enc['model_evaluations']} model evaluations; plain q85 JPEG "
                  f"{1e3 * enc['plain_q85_s']:.0f} ms"]

    runs = {name: hist for name in ("single", "ddp")
            if (hist := _load(work / f"train_{name}" / "history.json")) is not None}
    if runs:
        (out / "train_history.json").write_text(json.dumps(runs, indent=1))
        lines += ["", "## Short training run (`sspnet train`: one process, and under torchrun)", ""]
        lines += _history_table(runs)
        if len(runs) == 2:
            a, b = runs["single"][-1]["val_loss"], runs["ddp"][-1]["val_loss"]
            lines += ["", f"last validation loss, torchrun vs one process: {b:.4f} vs {a:.4f} "
                          f"({100 * (b - a) / a:+.2f}%; equal within noise when both start from the same weights)"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("agreement", help="bf16 vs fp32 on the same inputs")
    a.add_argument("--out", required=True)
    a.add_argument("--device", default="auto")
    a.add_argument("--configs", nargs="+", default=["default", "paper-resnet50"])
    a.add_argument("--photos", type=int, default=8, help="photos (Kodak when present)")
    a.add_argument("--candidates", type=int, default=16, help="JPEG candidates per photo")
    a.set_defaults(fn=cmd_agreement)
    e = sub.add_parser("encode", help="time a 1920x1080 compress")
    e.add_argument("--out", required=True)
    e.add_argument("--work", required=True, help="folder for the input photo and the CLI's output")
    e.add_argument("--device", default="auto")
    e.add_argument("--repeats", type=int, default=5)
    e.set_defaults(fn=cmd_encode)
    s = sub.add_parser("synth-data", help="synthetic OSIE-format training data")
    s.add_argument("dest", type=Path)
    s.add_argument("--n", type=int, default=96)
    s.set_defaults(fn=cmd_synth_data)
    sub.add_parser("has-imagenet-weights").set_defaults(fn=cmd_has_weights)
    m = sub.add_parser("summary", help="summary.md from the step outputs")
    m.add_argument("--out", required=True, help="the OUTDIR of gpu_check.sh")
    m.add_argument("--work", required=True, help="its work folder (env.txt, steps.tsv, train_*/)")
    m.set_defaults(fn=cmd_summary)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
