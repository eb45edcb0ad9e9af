"""`sspnet` command line: thin wrappers that parse options and call the library."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import typer

from .errors import USAGE_ERRORS, OneLineUsageGroup, error_text, fail, one_line_errors
from .version import add_version_option

app = typer.Typer(
    cls=OneLineUsageGroup,
    add_completion=False,
    no_args_is_help=True,
    help="SSPNet: predict human saliency and where attention shifts when an image is distorted.",
)


add_version_option(app, "sspnet")


def _fail(msg: str) -> NoReturn:
    fail(msg, 2)


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
    leave_out: bool = typer.Option(
        False, "--leave-one-dataset-out",
        help="One run per --data set in OUT/test-<name>: trained on the other sets, tested on all of it "
             "(then `sspnet eval --split OUT/test-<name>/split.json`). The honest generalisation test."),
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
    freeze_backbone: bool = typer.Option(
        False, help="Freeze the whole backbone: only the encoder and decoders learn (implies --freeze-stem)."),
    grey_prob: float = typer.Option(0.0, help="Probability of showing a training image in greyscale (augmentation)."),
    colour_jitter: float = typer.Option(
        0.0, help="Augmentation: brightness, contrast and saturation each scaled by U(1-j, 1+j) (e.g. 0.3)."),
    teacher: list[Path] = typer.Option(
        [], help="Saliency mode: distil from this trained checkpoint (repeat for an ensemble); it sees each "
                 "image at its own canvas size, mirrored and not."),
    distil: float = typer.Option(0.5, help="Share of each target's mass that comes from the teachers' map."),
    time_limit: float = typer.Option(
        0.0, help="Wall seconds after which no new epoch starts (0 = none); the best epoch is kept."),
    backbone_weights: Path | None = typer.Option(
        None, help="ImageNet weights file for the backbone (else the packaged or cached one is looked for)."),
) -> None:
    """Train with the paper's protocol (defaults); rerun the same command to resume after an interruption."""
    from sspnet.training.distributed import is_main_process
    from sspnet.training.experiments import train_saliency, train_shift
    from sspnet.training.train import TrainConfig

    from .data import DatasetError

    if (out.exists() or out.is_symlink()) and not out.is_dir():  # is_dir is False for a broken link
        _fail(f"--out {out} exists and is not a folder (a file or a broken link): the run folder must be a folder")
    with one_line_errors(usage=(DatasetError, ValueError, RuntimeError), runtime=()):
        cfg = TrainConfig(mode=mode, epochs=epochs, lr=lr, lr_step=lr_step, batch_size=batch_size, patience=patience,
                          seed=seed, workers=workers, device=device, max_steps_per_epoch=max_steps,
                          freeze_stem=freeze_stem, freeze_backbone=freeze_backbone, grey_prob=grey_prob,
                          colour_jitter=colour_jitter, teachers=tuple(str(t) for t in teacher), distil=distil,
                          time_limit=time_limit)
        weights = str(backbone_weights) if backbone_weights else None
        if mode == "saliency":
            results = train_saliency(data, out, cfg, config, pretrained, holdout=holdout, folds=folds,
                                     leave_out=leave_out, backbone_weights=weights)
        else:
            if len(data) != 1:
                _fail("shift mode takes exactly one --data folder (a shift layout)")
            results = train_shift(data[0], out, cfg, config, pretrained, init=init, folds=folds or 6)
    for r in results if is_main_process() else ():
        typer.echo(f"best epoch {r.best_epoch}: validation loss {r.best_val_loss:.4f} -> {r.best_path}")


@app.command("fit-prior")
def fit_prior(
    model: str = typer.Option(..., "--model", "-m", help="Trained checkpoint (or zoo name) whose output stage to fit."),
    data: list[Path] = typer.Option(..., "--data", "-d", help="OSIE/EyeCrowd-format folder; repeat for several."),
    out: Path = typer.Option(..., "--out", "-o", help="New checkpoint (.safetensors, fp16) with the fitted stage."),
    split: Path | None = typer.Option(None, help="A run's split.json: fit on its --subset only (else all images)."),
    subset: str = typer.Option("val", help="Which subset of --split to fit on (val: images the network "
                                            "did not train on, so the gate sees its real errors)."),
    prior: bool = typer.Option(True, help="Fit a centre prior and its gate (off: only choose the output blur)."),
    image_features: bool = typer.Option(False, help="Let the gate also read the scene (deepest tokens)."),
    blurs: str = typer.Option("0,2,4,6,8,12", help="Output blurs to try (input pixels), comma-separated."),
    shift_blur: float = typer.Option(0.0, help="Sigma (input pixels) the SSM is smoothed with (see SSPNet.shift)."),
    shift_spread: float = typer.Option(0.0, help="Share of the shift spread like the distorted image's saliency."),
    centre_sigma: float = typer.Option(0.0, help="Multiply every map by a Gaussian of this sigma (fraction of the "
                                                 "image; 0 = off): the shipped model's 0.6 was chosen on "
                                                 "leave-one-dataset-out runs (benchmarks/prior_study.py)."),
    steps: int = typer.Option(200, help="Adam steps per fit (batches of 64 images)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Fit the output stage (blur, centre prior, SSM spread) of a trained network on human maps.

    The network stays frozen; its maps are computed once, so this takes minutes on a CPU. Choose
    the design with leave-one-dataset-out runs (benchmarks/prior_study.py), then fit it here."""
    import json
    from dataclasses import replace

    from sspnet.training.experiments import image_key, read_saliency_items, read_split
    from sspnet.training.priorfit import collect, fit_output_stage

    from .data import SaliencyDataset
    from .zoo import load_model, save_checkpoint

    with one_line_errors():
        if out.exists() and not overwrite:
            _fail(f"{out} exists; pass --overwrite to replace it")
        tried = [float(b) for b in blurs.split(",") if b.strip()]
        if not tried or min(tried) < 0:
            _fail(f"--blurs must list non-negative numbers, got {blurs!r}")
        if shift_blur < 0 or shift_spread < 0 or centre_sigma < 0:
            _fail("--shift-blur, --shift-spread and --centre-sigma must be >= 0")
        net = load_model(model, "cpu")
        items = read_saliency_items(data)
        if split is not None:
            wanted = set(read_split(split, subset)[subset])
            items = [i for i in items if image_key(i) in wanted]
        if not items:
            _fail("no images to fit on (check --data and --split)")
        collected = collect(net, SaliencyDataset(items, size=net.config.input_size))
        fitted, report = fit_output_stage(net, collected, tried, prior, image_features, steps)
        fitted.config = replace(fitted.config, shift_blur=shift_blur, shift_spread=shift_spread,
                                centre_sigma=centre_sigma)
        info = dict(getattr(net, "info", {})) | {"output_stage": report | {"source": str(model),
                                                                          "subset": subset if split else "all"}}
        save_checkpoint(fitted, out, info=info, half=True)
    typer.echo(json.dumps({k: v for k, v in report.items() if k != "tried"}))
    for row in report["tried"]:
        typer.echo(f"blur {row['blur']:g}: CC {row['cc']:.4f}  SIM {row['sim']:.4f}  KLD {row['kld']:.4f}")
    typer.echo(f"wrote {out}")


def _map_names(stem: str, raw: str, shift: bool) -> dict[str, str]:
    """The files `predict` writes for one image, by role (the plan and the writer share them)."""
    roles = ["saliency"] + (["saliency_distorted", "ssm"] if shift else [])
    names = {f"{r}_overlay": f"{stem}_{r}_overlay.png" for r in roles}
    return names | {r: f"{stem}_{r}.{raw}" for r in roles}


def _predict_maps(net, src: Path, dst: Path | None, names: dict[str, str], max_pixels: int) -> dict[str, bytes]:
    """One image's overlays and raw maps, encoded in memory: file name -> bytes (see `_map_names`)."""
    from sspnet.files.images import read_image
    from sspnet.files.mapfiles import encode_png, encode_raw_map

    from .visualize import overlay

    rgb = read_image(src, max_pixels=max_pixels)
    if dst is None:
        sm = net.predict_saliency(rgb)
        pictures, maps = {"saliency_overlay": overlay(rgb, sm)}, {"saliency": sm}
    else:
        drgb = read_image(dst, max_pixels=max_pixels)
        if drgb.shape != rgb.shape:
            raise ValueError(f"{src} is {rgb.shape[1]}x{rgb.shape[0]} but {dst} is {drgb.shape[1]}x{drgb.shape[0]}")
        pred = net.predict_shift(rgb, drgb)
        typer.echo(f"{src.stem}: mean predicted shift {float(pred.ssm.mean()):.4f} (SSM in [0,1])")
        pictures = {
            "saliency_overlay": overlay(rgb, pred.sm_pristine),
            "saliency_distorted_overlay": overlay(drgb, pred.sm_distorted),
            "ssm_overlay": overlay(drgb, pred.ssm, vmax=max(float(pred.ssm.max()), 1e-6)),
        }
        maps = {"saliency": pred.sm_pristine, "saliency_distorted": pred.sm_distorted, "ssm": pred.ssm}
    return {names[r]: encode_png(p) for r, p in pictures.items()} | {
        names[r]: encode_raw_map(m, names[r]) for r, m in maps.items()}


@app.command()
def predict(
    image: Path = typer.Argument(..., help="Pristine image, or a folder of images."),
    distorted: Path | None = typer.Argument(None, help="Distorted version (same size): also writes the shift map."),
    out: Path = typer.Option(Path("sspnet-out"), "--out", "-o", help="Output folder."),
    model: str = typer.Option("default", help="Zoo name or checkpoint (.safetensors)."),
    raw: str = typer.Option("png", help="Raw map format: 'png' (16-bit) or 'npy' (float32)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    max_pixels: int = typer.Option(100_000_000, "--max-pixels", help="Refuse images with more pixels than this."),
) -> None:
    """Write saliency (and shift) maps as heatmap overlays and raw maps.

    Files per image: NAME_saliency_overlay.png and NAME_saliency.png|npy (raw: 16-bit PNG,
    0..65535 = 0..1, or float32 .npy); with DISTORTED also the distorted image's saliency and
    NAME_ssm_overlay.png / NAME_ssm.png|npy. Every output is checked before the model loads
    (never an input, never an existing file without --overwrite, no two images writing the
    same name) and an image's files are written together, atomically."""
    from tqdm.auto import tqdm

    from sspnet.files.images import image_size, list_images
    from sspnet.files.outputs import OutputPlan

    from .zoo import WeightsError, load_model

    with one_line_errors(usage=USAGE_ERRORS + (WeightsError,)):
        if raw not in ("png", "npy"):
            raise ValueError("--raw must be 'png' or 'npy'")
        if max_pixels < 1:
            raise ValueError(f"--max-pixels must be >= 1, got {max_pixels}")
        if image.is_dir():
            pairs = [(p, distorted / p.relative_to(image) if distorted else None) for p in list_images(image, out)]
        else:
            # from the headers, before the model loads: a bomb, a FIFO or a size mismatch is one line
            sizes = [image_size(p, max_pixels=max_pixels) for p in (image, distorted) if p is not None]
            if len(set(sizes)) > 1:
                raise ValueError("the images differ in size: " + " vs ".join(f"{w}x{h}" for w, h in sizes))
            pairs = [(image, distorted)]
        out.mkdir(parents=True, exist_ok=True)
        plans, writer = [], {}
        for src, dst in pairs:
            plan = OutputPlan(sources=[src] + ([dst] if dst else []), overwrite=overwrite)
            names = _map_names(src.stem, raw, dst is not None)
            for name in names.values():
                if name in writer:
                    raise ValueError(f"{writer[name]} and {src} would both write {out / name}; predict them separately")
                writer[name] = src
                plan.add(out / name)
            plans.append((src, dst, plan, names))
        net = load_model(model, device)

    failed = 0
    for src, dst, plan, names in tqdm(plans, desc="predict", unit="img", disable=len(plans) < 2):
        try:
            plan.commit({out / name: data for name, data in _predict_maps(net, src, dst, names, max_pixels).items()})
        except (OSError, ValueError, MemoryError) as exc:
            if len(plans) == 1:
                fail(error_text(exc), 2 if isinstance(exc, USAGE_ERRORS) else 1)
            failed += 1
            typer.secho(f"skipped {src}: {error_text(exc)}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"wrote maps for {len(plans) - failed} image(s) to {out}")
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
    greyscale: bool = typer.Option(False, help="Show the model every image in greyscale (saliency mode; the "
                                               "human maps stay those of the colour images): a generalisation probe."),
) -> None:
    """Score a model: CC, SIM, KLD (+ NSS, AUC-Judd with fixations), baselines and significance."""
    from sspnet.training.experiments import eval_saliency, eval_shift

    from .data import DatasetError
    from .zoo import WeightsError

    with one_line_errors(usage=(DatasetError, WeightsError, ValueError, RuntimeError), runtime=()):
        if mode == "saliency":
            summary = eval_saliency(model, data, out, split, subset, device, workers, greyscale)
            for row in summary:
                typer.echo("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        elif mode == "shift":
            if len(data) != 1:
                _fail("shift mode takes exactly one --data folder (a shift layout)")
            eval_shift(model, data[0], out, split, subset, intuitive, device)
        else:
            _fail("--mode must be 'saliency' or 'shift'")
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

    with one_line_errors(usage=(DatasetError, ValueError, OSError), runtime=()):
        items = read_fixation_dataset(data, on_outside="drop")[:limit]
        scenes = build_shift_layout(items, out, [d.strip() for d in distortions.split(",")],
                                    [int(v) for v in levels.split(",")], overwrite=overwrite, progress=True)
    typer.echo(f"wrote {len(scenes)} scenes to {out} (manifest.csv); distorted-image maps are synthetic")


@app.command()
def info() -> None:
    """List model configs (with parameter counts), backbones and packaged weights."""
    from sspnet.net.backbones import available_backbones
    from sspnet.net.configs import CONFIGS
    from sspnet.net.model import build_model, count_parameters

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
