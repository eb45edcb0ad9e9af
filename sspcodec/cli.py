"""`sspcodec` command line: thin wrappers over the API; errors are one line, never a traceback."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from sspnet.errors import OneLineUsageGroup, one_line_errors
from sspnet.files.images import image_size
from sspnet.files.outputs import OutputPlan
from sspnet.version import add_version_option

from .options import (
    DEFAULT_STRENGTH,
    Budget,
    CompressError,
    check_engine,
    check_jpeg_name,
    check_keep,
    check_max_pixels,
    check_reading,
    check_workers,
    check_writable_file,
)

app = typer.Typer(
    cls=OneLineUsageGroup,
    add_completion=False,
    no_args_is_help=True,
    help=(
        "Smaller JPEGs that do not pull the eye to compression artifacts.\n\n"
        "sspcodec predicts where a viewer looks (SSPNet) and where a distortion would move that "
        "attention, then spends the bytes there. The output is one standard JPEG (progressive "
        "where that is smaller) that every decoder reads.\n\n"
        "Examples:\n\n"
        "  sspcodec compress photo.png                      # bytes of a plain jpegli q85 JPEG\n\n"
        "  sspcodec compress photo.png --max-bytes 150KB --report r.png\n\n"
        "  sspcodec batch photos/ encoded/ --workers 2\n\n"
        "  sspcodec batch s3://bucket/photos s3://bucket/encoded --engine ray --address auto --workers 64\n\n"
        "  sspcodec ssm photo.png photo_q30.jpg -o ssm.png"
    ),
)


add_version_option(app, "sspcodec")


def _budget(max_bytes: str | None, bpp: float | None, max_shift: float | None, quality: int | None) -> dict:
    """The one budget asked for, checked (finite, in range, at most one) before any work starts."""
    return Budget.parse(max_bytes=max_bytes, bpp=bpp, max_shift=max_shift, quality=quality).as_options()


def _extras(
    strip: bool, max_pixels: int | None, alpha: str | None, background: str | None, frame: int | None
) -> dict:
    """--strip, --max-pixels and the reading options as `Encoder.compress` keywords, checked like
    the budget. Reading options left at their defaults are not passed, so a batch's manifest key
    (and with it what a rerun skips) is what it was before they existed."""
    check_reading(alpha, background, frame)  # refused here, before any work; compress reads them again
    reading = {"alpha": alpha, "background": background, "frame": frame}
    return {"strip": strip, "max_pixels": check_max_pixels(max_pixels),
            **{k: v for k, v in reading.items() if v is not None}}


def _notices(texts: list[str] | tuple[str, ...]) -> None:
    """What reading changed in the picture, one ``notice:`` line each on stderr."""
    for text in texts:
        typer.echo(f"notice: {text}", err=True)


def _refuse_terminal(kind: str, example: str) -> None:
    """Binary output never goes to a terminal (`-o -` with stdout not redirected)."""
    if sys.stdout.isatty():
        raise CompressError(f"refusing to write {kind} bytes to a terminal: redirect stdout (> {example}) "
                            "or give -o FILE")


def _write_stdout(data: bytes) -> None:
    stream = typer.get_binary_stream("stdout")
    stream.write(data)
    stream.flush()


MAX_BYTES = typer.Option(None, "--max-bytes", help="Byte budget, e.g. 150KB, 1.2MB, 200KiB or 120000.")
BPP = typer.Option(None, "--bpp", help="Budget in bits per pixel, e.g. 1.0.")
MAX_SHIFT = typer.Option(
    None, "--max-shift", help="Fewest bytes whose predicted shift (mean SSM, 0..1) is at most this: a bound on the "
                              "model's score, not a visible-quality target (its level depends on the picture).")
QUALITY = typer.Option(None, "--quality", "-q", help="Budget = the bytes of a plain JPEG at this quality (default 85).")
BACKEND = typer.Option(
    None, "--backend",
    help="JPEG back-end: jpegli (default of --method rd), turbo (libjpeg-turbo; default of --method search), mozjpeg.")
METHOD = typer.Option(
    "rd", "--method",
    help="rd: saliency-weighted RD pruning of a finer jpegli JPEG (default); search: the older quality-map search.")
STRENGTH = typer.Option(
    DEFAULT_STRENGTH, "--strength",
    help="How far bytes move towards where people look: 0 (default) = the plain jpegli JPEG at the budget, "
         "what models of human vision preferred; up to 0.5 detail is kept less and less away from where people "
         "look; above 0.5 where they look gets finer still; 1 = full. Measured cost (bytes for the same "
         "ColorVideoVDP, validation images): 0.25 +3.5%, 0.5 +10%, 1 +18%.")
MODEL = typer.Option("default", "--model", help="SSPNet zoo name or checkpoint file (.safetensors).")
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda (cuda:N) or mps.")
OVERWRITE = typer.Option(
    False, "--overwrite", help="Replace existing output files (never an input, a link, a FIFO or a device).")
STRIP = typer.Option(False, "--strip", help="Drop every metadata block from the output (= --keep none).")
KEEP = typer.Option(
    None, "--keep",
    help="Metadata blocks to carry, comma-separated: icc,exif,xmp,iptc,comment (default: all of them, byte for byte; "
         "EXIF orientation reset to 1) or none.")
QUIET = typer.Option(False, "--quiet", help="Print nothing but errors (--json output still goes out).")
MAX_PIXELS = typer.Option(None, "--max-pixels", help="Refuse inputs with more pixels than this (default 100 MP).")
ALPHA = typer.Option(
    None, "--alpha",
    help="Transparent inputs: composite (default: flatten onto --background, with a notice) or error (refuse).")
BACKGROUND = typer.Option(
    None, "--background", help="Colour transparency is flattened onto: white (default), black, #rrggbb or r,g,b.")
FRAME = typer.Option(
    None, "--frame", help="Which frame of an animated GIF/APNG/WebP or multi-page TIFF to encode (default 0).")


@app.command()
def compress(
    src: Path | None = typer.Argument(
        None, help="Input image (PNG, JPEG, TIFF, WebP, ...); - or none: read it from stdin (a pipe)."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Output JPEG (default: IN with .sspcodec.jpg); - writes to stdout (a pipe)."),
    max_bytes: str | None = MAX_BYTES,
    bpp: float | None = BPP,
    max_shift: float | None = MAX_SHIFT,
    quality: int | None = QUALITY,
    backend: str | None = BACKEND,
    method: str = METHOD,
    strength: float = STRENGTH,
    report: Path | None = typer.Option(
        None, "--report", help="Also write a side-by-side PNG with heatmaps and numbers."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the figures as JSON (bytes, bpp, shift, plain-JPEG figures)."),
    model: str = MODEL,
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    strip: bool = STRIP,
    keep: str | None = KEEP,
    quiet: bool = QUIET,
    max_pixels: int | None = MAX_PIXELS,
    alpha: str | None = ALPHA,
    background: str | None = BACKGROUND,
    frame: int | None = FRAME,
) -> None:
    """Encode one image at a budget, keeping detail where people look (SSPNet) and taking it where they do not.

    Everything is checked before the model loads (options, the input, every output); the JPEG
    and the report are written together at the end, or neither. An output that is a link, FIFO
    or device is refused even with --overwrite. What reading changes in the picture
    (transparency flattened, one frame of an animation) is said in a notice on stderr.

    Pipes: `cat in.png | sspcodec compress - -o - > out.jpg` (with -o -, the summary and --json
    go to stderr; JPEG bytes are never written to a terminal)."""
    import warnings

    from .api import ContentChangeWarning, Encoder
    from .options import check_method, check_strength
    from .result import guard_words
    from .source import read_source

    with one_line_errors():
        opts = _budget(max_bytes, bpp, max_shift, quality) | _extras(strip, max_pixels, alpha, background, frame)
        opts["keep"] = sorted(check_keep(keep, strip))  # --strip is --keep none
        del opts["strip"]
        check_engine(model, device, backend)
        check_method(method), check_strength(strength)
        reading = {k: opts.pop(k) for k in ("max_pixels", "alpha", "background", "frame") if k in opts}
        piped_in = src is None or str(src) == "-"
        if piped_in and sys.stdin.isatty():
            raise CompressError("give an input image, or pipe one in: cat in.png | sspcodec compress - -o -")
        to_stdout = str(out) == "-" or (out is None and piped_in)
        if to_stdout:
            _refuse_terminal("JPEG", "out.jpg")
        data = typer.get_binary_stream("stdin").read() if piped_in else src
        # the one open of the file (or the bytes piped in), before the model loads
        source = read_source(data, name="<stdin>" if piped_in else None, **reading)
        plan = OutputPlan(sources=[] if piped_in else [src], overwrite=overwrite)
        name_notice = None
        if not to_stdout:
            out = out or src.with_name(src.stem + ".sspcodec.jpg")
            plan.add(out, "-o")
            name_notice = check_jpeg_name(out, "-o")
        if report:
            plan.add(report, "--report")
        with warnings.catch_warnings():  # printed below as notices, once
            warnings.simplefilter("ignore", ContentChangeWarning)
            result = Encoder(model, device, backend, method=method, strength=strength).compress(source, **opts)
        files = {} if to_stdout else {out: result.data}
        if report:
            from .report import report_png

            files[report] = report_png(source.rgb, result)
        plan.commit(files)
        if to_stdout:
            _write_stdout(result.data)
    shown = "<stdout>" if to_stdout else str(out)
    if not quiet:
        _notices(list(result.notices) + ([name_notice] if name_notice else []))
    if as_json:
        summary = {"input": "<stdin>" if piped_in else str(src), "output": shown, **result.summary()}
        typer.echo(json.dumps(summary, indent=2, allow_nan=False), err=to_stdout)
    elif not quiet:
        b = result.baseline
        typer.echo(
            f"{shown}: {result.bytes / 1000:.1f} kB ({result.bpp:.3f} bpp); "
            f"plain JPEG q{b.quality:g} of the same budget: {b.bytes / 1000:.1f} kB\n"
            f"where people are predicted to look (saliency-weighted PSNR): {result.predicted_wpsnr:.2f} dB vs "
            f"{b.predicted_wpsnr:.2f} dB plain ({result.predicted_gain_db:+.2f} dB)\n"
            f"predicted shift (mean SSM): {result.predicted_shift:.5f} vs {b.predicted_shift:.5f} plain "
            f"(at equal bytes such differences are noise; the model's own score, not a measure of quality)\n"
            f"{result.model_evaluations} model evaluations, {result.seconds:.2f} s",
            err=to_stdout,
        )
        if result.guard.acted:
            typer.echo(f"guard: {guard_words(result.guard)}", err=to_stdout)
        if method == "rd" and strength == 0:
            typer.echo("strength 0 (default): the plain JPEG, which models of human vision preferred; "
                       "--strength 0.25 .. 1 moves detail to where people look (docs/METHOD.md)", err=to_stdout)
        if report:
            typer.echo(f"report: {report}", err=to_stdout)


@app.command()
def batch(
    in_dir: str = typer.Argument(..., help="Folder of images (searched recursively); with --engine ray also a URL."),
    out_dir: str = typer.Argument(
        ..., help="Output folder (same tree, .jpg files; may sit inside IN); with --engine ray also a URL."),
    max_bytes: str | None = MAX_BYTES,
    bpp: float | None = BPP,
    max_shift: float | None = MAX_SHIFT,
    quality: int | None = QUALITY,
    backend: str | None = BACKEND,
    method: str = METHOD,
    strength: float = STRENGTH,
    workers: int = typer.Option(
        1, "--workers", "-j", help="Parallel workers, each loading the model (local processes or Ray actors)."),
    model: str = MODEL,
    device: str = DEVICE,
    log: Path | None = typer.Option(None, "--log", help="Append one JSON line per image to this file."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs this batch did not write."),
    strip: bool = STRIP,
    keep: str | None = KEEP,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on stdout."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (for logs and scripts)."),
    quiet: bool = QUIET,
    max_pixels: int | None = MAX_PIXELS,
    alpha: str | None = ALPHA,
    background: str | None = BACKGROUND,
    frame: int | None = FRAME,
    engine: str = typer.Option(
        "local", "--engine",
        help="local: processes on this machine; ray: Ray actors, here or on a cluster (pip install "
             "'sspcodec\\[ray]'); IN and OUT may then be URLs: file://, s3://, gs://, ..."),
    address: str | None = typer.Option(
        None, "--address",
        help="--engine ray: the cluster to join ('auto' = the one this machine belongs to, or host:port); "
             "default: a private local Ray with --workers CPUs."),
) -> None:
    """Re-encode a folder; rerun the same command to resume.

    OUT/.sspcodec-manifest.jsonl records each input's SHA-256 and options, so a rerun skips exactly
    the images already done and encodes changed ones again. Ctrl-C or SIGTERM stops queuing,
    finishes the images in flight (a second signal drops them), prints the summary and exits
    130 or 143. `--engine ray` writes the same outputs and manifest (see docs/SCALE.md)."""
    from sspcodec.batch import BatchError, check_folders, run_batch

    from .options import check_method, check_strength

    with one_line_errors():
        opts = _budget(max_bytes, bpp, max_shift, quality) | _extras(strip, max_pixels, alpha, background, frame)
        if keep is not None:  # only when given, so the manifest key of a default run stays what it was
            opts["keep"] = sorted(check_keep(keep, strip))
            del opts["strip"]
        check_workers(workers)
        check_engine(model, device, backend)
        check_method(method), check_strength(strength)
        if log is not None:
            check_writable_file(log, "--log")
        common = dict(model=model, device=device, backend=backend, workers=workers, log=log, overwrite=overwrite,
                      method=method, strength=strength, progress=not (no_progress or quiet or as_json))
        if engine == "ray":
            from sspcodec.batch.ray_engine import import_ray, local_path, run_ray_batch

            import_ray()
            src, dst = local_path(in_dir), local_path(out_dir)
            if src is not None and dst is not None:
                check_folders(src, dst)
            summary = run_ray_batch(in_dir, out_dir, opts, address=address, **common)
        elif engine == "local":
            if address is not None:
                raise BatchError("--address is for --engine ray")
            if "://" in in_dir or "://" in out_dir:
                raise BatchError("URLs as IN or OUT need --engine ray")
            check_folders(Path(in_dir), Path(out_dir))
            summary = run_batch(Path(in_dir), Path(out_dir), opts, **common)
        else:
            raise BatchError(f"--engine must be local or ray, got {engine!r}")
    if as_json:
        typer.echo(json.dumps(summary.as_json(), indent=2, allow_nan=False))
    elif not quiet:
        for line in summary.lines():
            typer.echo(line)
    if summary.interrupted is not None:
        raise typer.Exit(128 + summary.interrupted)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def ssm(
    pristine: Path = typer.Argument(..., help="The original image."),
    distorted: Path = typer.Argument(
        ..., help="A distorted version of it (same size), e.g. a JPEG; - reads it from stdin (a pipe)."),
    out: Path = typer.Option(
        Path("ssm.png"), "-o", "--out", help="Heatmap overlay PNG of the saliency shift map; - writes it to stdout."),
    raw: Path | None = typer.Option(None, "--raw", help="Also write the raw map (.npy float32 or 16-bit .png)."),
    model: str = MODEL,
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
) -> None:
    """Predict where attention moves because of the distortion (SSM = (SM_d - SM_r)+).

    Pipes: `cjpeg -quality 20 in.ppm | sspcodec ssm in.png - -o - > ssm.png` (the summary then goes
    to stderr)."""
    from sspnet import load_model
    from sspnet.files.images import load_image
    from sspnet.files.mapfiles import check_raw_map_suffix, encode_png, encode_raw_map
    from sspnet.visualize import overlay

    with one_line_errors():
        check_engine(model, device)
        piped_in, to_stdout = str(distorted) == "-", str(out) == "-"
        if to_stdout:
            _refuse_terminal("PNG", "ssm.png")
        second = typer.get_binary_stream("stdin").read() if piped_in else distorted
        (w1, h1), (w2, h2) = image_size(pristine), image_size(second, name="<stdin>" if piped_in else None)
        if (w1, h1) != (w2, h2):
            raise CompressError(f"the images differ in size: {w1}x{h1} vs {w2}x{h2}")
        plan = OutputPlan(sources=[pristine] + ([] if piped_in else [distorted]), overwrite=overwrite)
        if not to_stdout:
            plan.add(out, "-o")
        if raw:
            check_raw_map_suffix(raw)
            plan.add(raw, "--raw")
        a, b = load_image(pristine), load_image(second, name="<stdin>" if piped_in else None)
        pred = load_model(model, device).predict_shift(a.pixels, b.pixels)
        heatmap = encode_png(overlay(b.pixels, pred.ssm, vmax=max(float(pred.ssm.max()), 1e-6)))
        files = {} if to_stdout else {out: heatmap}
        if raw:
            files[raw] = encode_raw_map(pred.ssm, raw)
        plan.commit(files)
        if to_stdout:
            _write_stdout(heatmap)
    _notices(a.notices + b.notices)
    peak = float(pred.ssm.max())
    shown = "<stdout>" if to_stdout else out
    typer.echo(f"{shown}: mean predicted shift {float(pred.ssm.mean()):.5f}, peak {peak:.3f} (SSM in 0..1)",
               err=to_stdout)


def main() -> None:
    app(prog_name="sspcodec")


if __name__ == "__main__":
    sys.exit(main())
