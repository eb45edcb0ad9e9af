"""Re-encode whole folders: recursive, resumable, one bad file never stops the rest.

Resumable by construction: an output that already exists (written atomically, so never partial)
is skipped. Parallelism is across images in worker processes, each with its own model; torch
threads are split between workers so two workers on a 2-core machine do not oversubscribe.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass
class BatchSummary:
    done: int = 0
    skipped_existing: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes_out: int = 0
    bytes_baseline: int = 0
    bytes_in: int = 0
    shift: float = 0.0
    shift_baseline: float = 0.0

    def lines(self) -> list[str]:
        out = [f"encoded {self.done} image(s), skipped {self.skipped_existing} already done, {len(self.failed)} failed"]
        if self.done:
            saved = 1 - self.bytes_out / max(self.bytes_in, 1)
            out.append(f"input {self.bytes_in / 1e6:.2f} MB -> output {self.bytes_out / 1e6:.2f} MB ({100 * saved:.1f}% smaller)")
            out.append(
                f"mean predicted shift {self.shift / self.done:.5f} vs {self.shift_baseline / self.done:.5f} "
                f"for plain JPEGs of the same bytes ({self.bytes_baseline / 1e6:.2f} MB)"
            )
        for path, why in self.failed:
            out.append(f"  failed: {path}: {why}")
        return out


def find_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def output_path(src: Path, in_dir: Path, out_dir: Path) -> Path:
    return (out_dir / src.relative_to(in_dir)).with_suffix(".jpg")


_WORKER = None


def _init_worker(model: str, device: str, backend: str, threads: int) -> None:
    import torch

    from .api import Encoder

    torch.set_num_threads(threads)
    global _WORKER
    _WORKER = Encoder(model, device, backend)


def _encode_one(src: str, dst: str, options: dict) -> dict:
    from .io import write_bytes_atomic

    try:
        result = _WORKER.compress(src, **options)  # type: ignore[union-attr]
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(dst, result.data)
        return {"ok": True, "src": src, "bytes_in": os.path.getsize(src), **result.summary()}
    except Exception as exc:  # isolate failures: report and continue with the next file
        return {"ok": False, "src": src, "error": f"{type(exc).__name__}: {exc}"}


def run_batch(
    in_dir: Path, out_dir: Path, options: dict, *, model: str = "default", device: str = "cpu",
    backend: str = "turbo", workers: int = 1, log: Path | None = None,
) -> BatchSummary:
    """Encode every image under `in_dir` to `out_dir` (same tree, .jpg); returns the summary."""
    summary = BatchSummary()
    todo = []
    for src in find_images(in_dir):
        dst = output_path(src, in_dir, out_dir)
        if dst.exists():
            summary.skipped_existing += 1
        else:
            todo.append((src, dst))
    if not todo:
        return summary
    workers = max(1, min(workers, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    log_file = open(log, "a") if log else None
    try:
        if workers == 1:  # in-process: no start-up cost, and the model is loaded once
            _init_worker(model, device, backend, threads)
            results = (_encode_one(str(s), str(d), options) for s, d in todo)
            pool = None
        else:  # spawn, not fork: forking a process whose torch thread pool is live can deadlock
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=(model, device, backend, threads))
            results = (f.result() for f in as_completed([pool.submit(_encode_one, str(s), str(d), options) for s, d in todo]))
        for r in tqdm(results, total=len(todo), desc="sspcodec batch", unit="img"):
            if log_file:
                log_file.write(json.dumps(r) + "\n")
            if not r["ok"]:
                summary.failed.append((r["src"], r["error"]))
                continue
            summary.done += 1
            summary.bytes_in += r["bytes_in"]
            summary.bytes_out += r["bytes"]
            summary.bytes_baseline += r["baseline"]["bytes"]
            summary.shift += r["predicted_shift"]
            summary.shift_baseline += r["baseline"]["predicted_shift"]
        if pool is not None:
            pool.shutdown()
    finally:
        if log_file:
            log_file.close()
    return summary
