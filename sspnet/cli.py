"""`sspnet` command line: thin wrappers that parse options and call the library."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="SSPNet: predict human saliency and where attention shifts when an image is distorted.",
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def train(
    data: list[Path] = typer.Option(
        ..., "--data", "-d",
        help="Dataset folder; repeat for several. OSIE/EyeCrowd format (stimuli/ + eye/fixations.mat) "
             "in saliency mode, a shift layout (manifest.csv) in shift mode."),
    out: Path = typer.Option(Path("runs/sspnet"), "--out", "-o",
                             help="Run folder: checkpoints, state for resuming, history."),
    mode: str = typer.Option(
        "saliency", help="'saliency' (single images, human maps) or 'shift' (pristine/distorted pairs, eq. 9)."),
    config: str = typer.Option("default", help="Model config: default, paper-resnet50, ... (see `sspnet info`)."),
    pretrained: bool = typer.Option(True, help="Start from ImageNet weights of the backbone."),
    init: str | None = typer.Option(
        None, help="Shift mode: start from a trained checkpoint or zoo name (e.g. default)."),
    folds: int = typer.Option(
        0, help="k-fold cross-validation (one fold tests, one validates); 0 = one fixed holdout split."),
    holdout: float = typer.Option(0.2, help="Fraction of images held out for testing when --folds 0."),
    epochs: int = typer.Option(50, help="Maximum epochs (paper: 50)."),
    lr: float = typer.Option(5e-5, help="Adam learning rate (paper: 5e-5)."),
    lr_step: int = typer.Option(10, help="Epochs between learning-rate x0.1 (paper: 10)."),
    batch_size: int = typer.Option(
        4, help="Batch size per process (paper: 4); under torchrun the effective batch is this times the processes."
    ),
    patience: int = typer.Option(5, help="Early stopping patience in epochs on the validation loss (paper: 5)."),
    workers: int = typer.Option(2, help="Data loading processes."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    seed: int = typer.Option(0, help="Seed for splits, shuffling and flips."),
    max_steps: int | None = typer.Option(None, help="Cap steps per epoch (quick runs)."),
    freeze_stem: bool = typer.Option(
        False, help="Freeze the backbone up to its stride-8 tap (about 1/3 faster on CPU)."),
    grey_prob: float = typer.Option(0.0, help="Probability of showing a training image in greyscale (augmentation)."),
) -> None:
    """Train with the paper's protocol (defaults); rerun the same command to resume after an interruption."""
    from .data import DatasetError
    from .distributed import is_main_process
    from .experiments import train_saliency, train_shift
    from .train import TrainConfig

    try:
        cfg = TrainConfig(mode=mode, epochs=epochs, lr=lr, lr_step=lr_step, batch_size=batch_size, patience=patience,
                          seed=seed, workers=workers, device=device, max_steps_per_epoch=max_steps,
                          freeze_stem=freeze_stem, grey_prob=grey_prob)
        if mode == "saliency":
            results = train_saliency(data, out, cfg, config, pretrained, holdout=holdout, folds=folds)
        else:
            if len(data) != 1:
                _fail("shift mode takes exactly one --data folder (a shift layout)")
            results = train_shift(data[0], out, cfg, config, pretrained, init=init, folds=folds or 6)
    except typer.Exit:  # a _fail above: typer.Exit is a RuntimeError, do not report it twice
        raise
    except (DatasetError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    for r in results if is_main_process() else ():
        typer.echo(f"best epoch {r.best_epoch}: validation loss {r.best_val_loss:.4f} -> {r.best_path}")


@app.command()
def predict(
    image: Path = typer.Argument(..., help="Pristine image, or a folder of images."),
    distorted: Path | None = typer.Argument(None, help="Distorted version (same size): also writes the shift map."),
    out: Path = typer.Option(Path("sspnet-out"), "--out", "-o", help="Output folder."),
    model: str = typer.Option("default", help="Zoo name or checkpoint (.safetensors)."),
    raw: str = typer.Option("png", help="Raw map format: 'png' (16-bit) or 'npy' (float32)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
) -> None:
    """Write saliency (and shift) maps as heatmap overlays and raw maps.

    Files per image: NAME_saliency_overlay.png and NAME_saliency.png|npy (raw: 16-bit PNG,
    0..65535 = 0..1, or float32 .npy); with DISTORTED also the distorted image's saliency and
    NAME_ssm_overlay.png / NAME_ssm.png|npy."""
    from tqdm.auto import tqdm

    from .imageio import read_image
    from .visualize import overlay, save_map, save_rgb_png
    from .zoo import WeightsError, load_model

    if raw not in ("png", "npy"):
        _fail("--raw must be 'png' or 'npy'")
    if not image.exists():
        _fail(f"{image} does not exist")
    if distorted is not None and not distorted.exists():
        _fail(f"{distorted} does not exist")
    try:
        net = load_model(model, device)
    except (WeightsError, RuntimeError) as exc:
        _fail(str(exc))
    if image.is_dir():
        pairs = [(p, distorted / p.relative_to(image) if distorted else None)
                 for p in sorted(image.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    else:
        pairs = [(image, distorted)]
    out.mkdir(parents=True, exist_ok=True)

    failed = 0
    for src, dst in tqdm(pairs, desc="predict", unit="img", disable=len(pairs) < 2):
        try:
            rgb = read_image(src)
            stem = src.stem
            if dst is None:
                sm = net.predict_saliency(rgb)
                save_rgb_png(overlay(rgb, sm), out / f"{stem}_saliency_overlay.png")
                save_map(sm, out / f"{stem}_saliency.{raw}")
            else:
                drgb = read_image(dst)
                pred = net.predict_shift(rgb, drgb)
                ssm_top = max(float(pred.ssm.max()), 1e-6)
                save_rgb_png(overlay(rgb, pred.sm_pristine), out / f"{stem}_saliency_overlay.png")
                save_rgb_png(overlay(drgb, pred.sm_distorted), out / f"{stem}_saliency_distorted_overlay.png")
                save_rgb_png(overlay(drgb, pred.ssm, vmax=ssm_top), out / f"{stem}_ssm_overlay.png")
                for name, m in (("saliency", pred.sm_pristine), ("saliency_distorted", pred.sm_distorted),
                                ("ssm", pred.ssm)):
                    save_map(m, out / f"{stem}_{name}.{raw}")
                typer.echo(f"{stem}: mean predicted shift {float(pred.ssm.mean()):.4f} (SSM in [0,1])")
        except (OSError, ValueError) as exc:
            failed += 1
            typer.secho(f"skipped {src}: {exc}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"wrote maps for {len(pairs) - failed} image(s) to {out}")
    if failed:
        raise typer.Exit(1)


@app.command("eval")
def eval_(
    model: str = typer.Option("default", help="Zoo name or checkpoint (.safetensors)."),
    data: list[Path] = typer.Option(..., "--data", "-d", help="Dataset folder(s), as for training."),
    out: Path = typer.Option(Path("sspnet-eval"), "--out", "-o", help="Folder for per_image.csv and results.md."),
    mode: str = typer.Option("saliency", help="'saliency' (human maps) or 'shift' (a shift layout)."),
    split: Path | None = typer.Option(
        None, help="A run's split.json: evaluates its --subset and fits baselines on its training images."),
    subset: str = typer.Option("test", help="Which subset of --split to evaluate."),
    intuitive: str | None = typer.Option(
        None, help="Shift mode: a saliency-only model scored as the 'intuitive approach'."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    workers: int = typer.Option(0, help="Data loading processes."),
) -> None:
    """Score a model: CC, SIM, KLD (+ NSS, AUC-Judd with fixations), baselines and significance."""
    from .data import DatasetError
    from .experiments import eval_saliency, eval_shift
    from .zoo import WeightsError

    try:
        if mode == "saliency":
            summary = eval_saliency(model, data, out, split, subset, device, workers)
            for row in summary:
                typer.echo("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        elif mode == "shift":
            if len(data) != 1:
                _fail("shift mode takes exactly one --data folder (a shift layout)")
            eval_shift(model, data[0], out, split, subset, intuitive, device)
        else:
            _fail("--mode must be 'saliency' or 'shift'")
    except typer.Exit:  # a _fail above: typer.Exit is a RuntimeError, do not report it twice
        raise
    except (DatasetError, WeightsError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    typer.echo(f"results: {out / 'results.md'}")


@app.command("build-shift")
def build_shift(
    data: Path = typer.Option(..., "--data", "-d", help="A fixation dataset folder (stimuli/ + eye/fixations.mat)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the shift layout (manifest.csv, images, maps)."),
    distortions: str = typer.Option("contrast,jpeg,motion_blur", help="Comma-separated distortion kinds."),
    levels: str = typer.Option("1,2,3", help="Comma-separated levels (1 perceptible .. 3 very annoying)."),
    limit: int | None = typer.Option(None, help="Use only the first N images (quick runs)."),
    overwrite: bool = typer.Option(False, help="Replace an existing layout."),
) -> None:
    """Build a CUID-VSS-style shift layout from fixations + synthetic distortions.

    The saliency maps of the distorted images are SYNTHESISED (not human data); see docs/DATA.md."""
    from .data import DatasetError, build_shift_layout, read_fixation_dataset

    try:
        items = read_fixation_dataset(data, on_outside="drop")[:limit]
        scenes = build_shift_layout(items, out, [d.strip() for d in distortions.split(",")],
                                    [int(v) for v in levels.split(",")], overwrite=overwrite, progress=True)
    except (DatasetError, ValueError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {len(scenes)} scenes to {out} (manifest.csv); distorted-image maps are synthetic")


@app.command()
def info() -> None:
    """List model configs (with parameter counts), backbones and packaged weights."""
    from .backbones import available_backbones
    from .configs import CONFIGS
    from .model import build_model, count_parameters
    from .zoo import ZOO

    typer.echo("configs (parameters):")
    for name in sorted(CONFIGS):
        c = CONFIGS[name]
        decoder = "dual" if c.dual_decoder else "single"
        typer.echo(f"  {name:24} {count_parameters(build_model(name)) / 1e6:6.2f} M  backbone {c.backbone}, "
                   f"transformer blocks {'/'.join(map(str, c.depths))}, {decoder} decoder")
    typer.echo("backbones: " + ", ".join(available_backbones()))
    typer.echo("packaged weights: " + (", ".join(sorted(ZOO)) or "none"))


def main() -> None:
    app(prog_name="sspnet")


if __name__ == "__main__":
    sys.exit(main())
