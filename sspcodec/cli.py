"""`sspcodec` command line: thin wrappers over the API; errors are one line, never a traceback."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=(
        "Smaller JPEGs that do not pull the eye to compression artifacts.\n\n"
        "sspcodec predicts where a viewer looks (SSPNet) and where a distortion would move that "
        "attention, then spends the bytes there. The output is one standard baseline JPEG.\n\n"
        "Examples:\n\n"
        "  sspcodec compress photo.png                      # bytes of a plain q85 JPEG, least shift\n\n"
        "  sspcodec compress photo.png --max-bytes 150KB --report r.png\n\n"
        "  sspcodec batch photos/ encoded/ --workers 2\n\n"
        "  sspcodec ssm photo.png photo_q30.jpg -o ssm.png"
    ),
)


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _options(max_bytes, bpp, max_shift, quality) -> dict:
    """The one budget asked for, checked before any work starts."""
    from .io import parse_size

    given = {k: v for k, v in (("max_bytes", max_bytes), ("bpp", bpp), ("max_shift", max_shift), ("quality", quality)) if v is not None}
    if len(given) > 1:
        _fail("choose one target: --max-bytes, --bpp, --max-shift or --quality")
    if max_bytes is not None:
        try:
            given["max_bytes"] = parse_size(max_bytes)
        except ValueError as exc:
            _fail(str(exc))
    return given


MAX_BYTES = typer.Option(None, "--max-bytes", help="Byte budget, e.g. 150KB, 1.2MB, 200KiB or 120000.")
BPP = typer.Option(None, "--bpp", help="Budget in bits per pixel, e.g. 1.0.")
MAX_SHIFT = typer.Option(None, "--max-shift", help="Fewest bytes whose predicted shift (mean SSM, 0..1) is at most this.")
QUALITY = typer.Option(None, "--quality", "-q", help="Budget = the bytes of a plain JPEG at this quality (default 85).")
BACKEND = typer.Option("turbo", "--backend", help="Encoder back-end: turbo (libjpeg-turbo), mozjpeg.")
MODEL = typer.Option("default", "--model", help="SSPNet zoo name or checkpoint file (.safetensors).")
DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda.")


@app.command()
def compress(
    src: Path = typer.Argument(..., help="Input image (PNG, JPEG, TIFF, WebP, ...)."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Output JPEG (default: IN with .sspcodec.jpg)."),
    max_bytes: str | None = MAX_BYTES,
    bpp: float | None = BPP,
    max_shift: float | None = MAX_SHIFT,
    quality: int | None = QUALITY,
    backend: str = BACKEND,
    report: Path | None = typer.Option(None, "--report", help="Also write a side-by-side PNG with heatmaps and numbers."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON (bytes, bpp, shift, plain-JPEG figures)."),
    model: str = MODEL,
    device: str = DEVICE,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Encode one image at a budget with the least predicted attention shift."""
    from .api import CompressError, Encoder
    from .io import ImageReadError, UnsafeWriteError, read_image, write_bytes_atomic

    opts = _options(max_bytes, bpp, max_shift, quality)
    out = out or src.with_name(src.stem + ".sspcodec.jpg")
    if out.exists() and not overwrite:
        _fail(f"{out} exists; pass --overwrite to replace it")
    try:
        rgb = read_image(src)
        encoder = Encoder(model, device, backend)
        result = encoder.compress(rgb, **opts)
        write_bytes_atomic(out, result.data, source=src)
        if report:
            from .report import save_report

            save_report(rgb, result, report)
    except (ImageReadError, UnsafeWriteError, CompressError, ValueError, RuntimeError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"input": str(src), "output": str(out), **result.summary()}, indent=2))
    else:
        b = result.baseline
        typer.echo(
            f"{out}: {result.bytes / 1000:.1f} kB ({result.bpp:.3f} bpp), predicted shift {result.predicted_shift:.5f}\n"
            f"plain JPEG q{b.quality:g} at {b.bytes / 1000:.1f} kB: predicted shift {b.predicted_shift:.5f} "
            f"({100 * result.shift_reduction:.1f}% less shift with sspcodec)\n"
            f"{result.model_evaluations} model evaluations, {result.seconds:.2f} s"
        )
        if report:
            typer.echo(f"report: {report}")


@app.command()
def batch(
    in_dir: Path = typer.Argument(..., help="Folder of images (searched recursively)."),
    out_dir: Path = typer.Argument(..., help="Output folder (same tree, .jpg files)."),
    max_bytes: str | None = MAX_BYTES,
    bpp: float | None = BPP,
    max_shift: float | None = MAX_SHIFT,
    quality: int | None = QUALITY,
    backend: str = BACKEND,
    workers: int = typer.Option(1, "--workers", "-j", help="Parallel worker processes (each loads the model)."),
    model: str = MODEL,
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    log: Path | None = typer.Option(None, "--log", help="Append one JSON line per image to this file."),
) -> None:
    """Re-encode a folder; rerun the same command to resume (finished outputs are skipped)."""
    from .batch import run_batch

    if not in_dir.is_dir():
        _fail(f"{in_dir} is not a folder")
    if out_dir.resolve() == in_dir.resolve():
        _fail("the output folder must differ from the input folder (inputs are never overwritten)")
    opts = _options(max_bytes, bpp, max_shift, quality)
    summary = run_batch(in_dir, out_dir, opts, model=model, device=device, backend=backend, workers=workers, log=log)
    for line in summary.lines():
        typer.echo(line)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def ssm(
    pristine: Path = typer.Argument(..., help="The original image."),
    distorted: Path = typer.Argument(..., help="A distorted version of it (same size), e.g. a JPEG."),
    out: Path = typer.Option(Path("ssm.png"), "-o", "--out", help="Heatmap overlay PNG of the saliency shift map."),
    raw: Path | None = typer.Option(None, "--raw", help="Also write the raw map (.npy float32 or 16-bit .png)."),
    model: str = MODEL,
    device: str = DEVICE,
) -> None:
    """Predict where attention moves because of the distortion (SSM = (SM_d - SM_r)+)."""
    from PIL import Image

    from sspnet import load_model
    from sspnet.visualize import overlay, save_map

    from .io import ImageReadError, read_image, write_bytes_atomic

    try:
        a, b = read_image(pristine), read_image(distorted)
        if a.shape != b.shape:
            _fail(f"the images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
        pred = load_model(model, device).predict_shift(a, b)
        import io as _io

        buf = _io.BytesIO()
        Image.fromarray(overlay(b, pred.ssm, vmax=max(float(pred.ssm.max()), 1e-6))).save(buf, format="PNG")
        write_bytes_atomic(out, buf.getvalue(), overwrite=True)
        if raw:
            save_map(pred.ssm, raw)
    except (ImageReadError, ValueError, RuntimeError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"{out}: mean predicted shift {float(pred.ssm.mean()):.5f}, peak {float(pred.ssm.max()):.3f} (SSM in 0..1)")


def main() -> None:
    app(prog_name="sspcodec")


if __name__ == "__main__":
    sys.exit(main())
