"""Re-encode whole folders: recursive, exactly resumable, one bad file never stops the rest, and no
file lost or half-written whatever stops the run (Ctrl-C, SIGTERM, kill -9, a crashed worker).

What the batch keeps in OUT besides the outputs (hidden names, all its own):

- ``.sspcodec-manifest.jsonl``: one line per output claimed (before it is written) and finished
  (after): the input's SHA-256, the options, the output's name, bytes and SHA-256. A rerun
  skips an input exactly when its last finished record has the same input hash and options and
  the output is still there, byte for byte; a changed input or option is encoded again.
- ``.sspcodec-batch.lock``: held while a run writes, so two runs never share OUT.
- ``.sspcodec-tmp/``: the run's scratch folders (the JPEG library's temporary files), removed at
  the end, and with the atomic writer's leftovers swept at the next start after a kill -9.

Output names mirror the input tree with ``.jpg``; inputs whose names would collide in one folder
(photo.png, photo.jpg, photo.webp) keep their extension (photo.png.jpg, ...). An OUT inside IN is
not scanned; an IN inside OUT is refused.

Parallelism is across images in spawned worker processes, each with its own model. The parent
reads and hashes every input, sends the bytes, gets the JPEG bytes back and writes every file
itself: a worker that dies can lose no output, and the manifest has one writer. Workers die with
the parent (PR_SET_PDEATHSIG on Linux, a parent watchdog everywhere). The first SIGINT/SIGTERM
stops queuing and lets the images being encoded finish; a second drops them; either way the
summary says what is left and the command exits 128 + the signal number.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from sspcodec.batch.jobs import BatchJob, BatchRun, BatchSummary
from sspcodec.batch.manifest import (
    Manifest,
    make_folders_inside,
    model_identity,
)
from sspcodec.batch.workers import Pool, PoolFactory, local_pool, worker_setup
from sspcodec.options import DEFAULT_STRENGTH, Budget
from sspnet.files.images import list_images
from sspnet.files.outputs import same_file

from .entries import open_entry, remove_temp_files

LOCK_NAME = ".sspcodec-batch.lock"
SCRATCH_NAME = ".sspcodec-tmp"


class BatchError(ValueError):
    """The batch cannot start as asked (folders, names, OUT in use); the message says why."""


# --------------------------------------------------------------------------
# names and the manifest
# --------------------------------------------------------------------------
def output_names(sources: list[Path], in_dir: Path) -> dict[Path, Path]:
    """Each source's output, relative to OUT: the same path with ``.jpg``, except that sources
    whose outputs would collide (case-insensitively, for macOS and Windows disks) keep their
    extension in the name: photo.png.jpg, photo.jpg.jpg. Deterministic for a given set of files;
    raises :class:`BatchError` listing the names it cannot separate."""
    rel = {s: s.relative_to(in_dir) for s in sources}
    names = {s: r.with_suffix(".jpg") for s, r in rel.items()}
    while True:
        groups: dict[str, list[Path]] = defaultdict(list)
        for s, n in names.items():
            groups[n.as_posix().casefold()].append(s)
        clashing = [s for group in groups.values() if len(group) > 1 for s in group]
        renamed = {s: rel[s].with_name(rel[s].name + ".jpg") for s in clashing}
        if not clashing:
            return names
        if all(names[s] == n for s, n in renamed.items()):
            shown = ", ".join(sorted(str(rel[s]) for s in clashing))
            raise BatchError(f"these inputs would write the same output (names differ only in case): {shown}")
        names |= renamed


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------
class _Signals:
    """SIGINT/SIGTERM while the batch runs: the first stops queuing (recorded in ``signum``), a
    second raises KeyboardInterrupt to drop the images in flight. Installed only in the main
    thread (Python's rule), restored afterwards."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._saved[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._saved.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _locked(out_dir: Path):
    """Hold OUT's lock file for the run; a second batch into the same OUT is refused at once.
    The lock dies with the process (kill -9 included), so it never needs clearing by hand."""
    fd = open_entry(out_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, "the batch lock")
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock on this platform: run unlocked
            pass
        except OSError:
            raise BatchError(f"another sspcodec batch is writing to {out_dir}; wait for it or choose another folder") \
                from None
        yield
    finally:
        os.close(fd)


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """IN must be a folder and OUT neither IN nor a folder above it (outputs would land among
    the inputs); OUT inside IN is fine: it is left out of the scan."""
    if not in_dir.is_dir():
        raise BatchError(f"{in_dir} is not a folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise BatchError(f"{out_dir} exists and is not a folder")
    real_in, real_out = Path(os.path.realpath(in_dir)), Path(os.path.realpath(out_dir))
    if real_in == real_out:
        raise BatchError("the output folder must differ from the input folder (inputs are never overwritten)")
    if real_out in real_in.parents:
        raise BatchError(f"the input folder {in_dir} is inside the output folder {out_dir}; choose another output")


def batch_key(
    options: dict, *, model: str, backend: str | None, method: str, strength: float
) -> tuple[dict, dict]:
    """The manifest's key of a run (what decides an output's bytes) and the `Encoder.compress`
    keywords, from the command's `options`. One function, so every engine skips and encodes
    exactly alike."""
    extras = {k: v for k, v in options.items() if k not in ("max_bytes", "bpp", "max_shift", "quality")}
    target = Budget.parse(**{k: v for k, v in options.items() if k not in extras}).as_options()
    # what decides the output's bytes (a pixel limit only refuses, so it is not part of it)
    # (defaults left out, so `strip=False` and no `strip` give the same key)
    key = {"target": target, "model": model_identity(model), "backend": backend, "method": method, "strength": strength,
           **{k: v for k, v in extras.items() if k != "max_pixels" and v not in (None, False)}}
    return key, {**target, **extras}


def run_batch(
    in_dir: Path, out_dir: Path, options: dict, *, model: str = "default", device: str = "cpu",
    backend: str | None = None, workers: int = 1, log: Path | None = None, overwrite: bool = False,
    method: str = "rd", strength: float = DEFAULT_STRENGTH, make_pool: PoolFactory = local_pool, progress: bool = True,
) -> BatchSummary:
    """Encode every image under `in_dir` to `out_dir` (same tree, .jpg); returns the summary.

    `options` are `Encoder.compress` keywords (a budget, ...). `make_pool` chooses who encodes
    (default: local processes; :mod:`sspcodec.batch.ray_engine` passes Ray actors). Raises
    :class:`BatchError` when the run cannot start; a run stopped by SIGINT/SIGTERM returns with
    ``summary.interrupted`` set.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    check_folders(in_dir, out_dir)
    key, compress_options = batch_key(options, model=model, backend=backend, method=method, strength=strength)
    sources = list_images(in_dir, exclude=out_dir)
    names = output_names(sources, in_dir)
    if log is not None and any(same_file(log, s) for s in sources):
        raise BatchError(f"--log {log} is one of the input images; choose another file")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        remove_temp_files(out_dir)  # leftovers of a killed run: nobody else writes here now
        _clear_scratch(out_dir / SCRATCH_NAME)
        scratch = make_folders_inside(out_dir, Path(SCRATCH_NAME, f"run-{os.getpid()}"))
        jobs = deque(BatchJob(s, s.relative_to(in_dir).as_posix(), names[s].as_posix()) for s in sources)
        run = BatchRun(out_dir, key, overwrite)
        run.summary.notices += _unscanned(in_dir, out_dir, run.manifest)
        pool = make_pool(workers, worker_setup(model, device, backend, workers, method, strength), scratch)
        try:
            return execute(run, jobs, pool, compress_options, log, progress)
        finally:
            _clear_scratch(out_dir / SCRATCH_NAME)


def _clear_scratch(path: Path) -> None:
    """Remove the scratch folder; a link or file put in its place is removed, never followed."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _unscanned(in_dir: Path, out_dir: Path, manifest: Manifest) -> list[str]:
    """Why images already in an OUT inside IN are not encoded: OUT is never read as input (it
    would read the batch's own outputs back). Images the batch wrote itself are not counted."""
    real_in, real_out = Path(os.path.realpath(in_dir)), Path(os.path.realpath(out_dir))
    if real_in not in real_out.parents:
        return []
    foreign = [p for p in list_images(out_dir) if p.relative_to(out_dir).as_posix() not in manifest.owned]
    if not foreign:
        return []
    return [f"{len(foreign)} image(s) already in {out_dir} (e.g. {foreign[0]}) were not encoded: the output folder "
            "lies inside the input folder and is never scanned for inputs; move them out of it or choose another "
            "output folder"]


def execute(
    run: BatchRun, jobs: deque, pool: Pool, options: dict, log: Path | None, progress: bool = True
) -> BatchSummary:
    """Run the jobs through the pool with a progress bar (unless not `progress`) and the --log
    file; the manifest is closed whatever happens. Shared by every engine and store."""
    log_fd = open_entry(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "--log") if log else None
    log_file = os.fdopen(log_fd, "a", encoding="utf-8") if log_fd is not None else None
    run.log_file = log_file
    run.progress = tqdm(total=len(jobs), desc="sspcodec batch", unit="img", disable=not progress)
    skipped = run.manifest.notice()
    if skipped:
        run.summary.notices.append(skipped)
    try:
        _drive(run, jobs, pool, options)
    finally:
        run.progress.close()
        run.manifest.close()
        if log_file is not None:
            log_file.close()
    return run.summary


def _drive(run: BatchRun, jobs: deque, pool: Pool, options: dict) -> None:
    """Feed the workers until the jobs are done or a signal stops the run (see `_Signals`)."""
    in_flight: dict[int, BatchJob] = {}
    with _Signals() as sig:
        try:
            while True:
                while sig.signum is None and jobs and pool.busy() < pool.n:
                    job = jobs.popleft()
                    data = run.prepare(job)  # read and hashed here, so skipped files start no worker
                    if data is not None:
                        in_flight[id(job)] = job
                        pool.submit(id(job), data, {**options, "name": str(job.src)})  # errors name the file
                if not in_flight:
                    break
                for task_id, result in pool.results(timeout=0.5):
                    run.finish(in_flight.pop(task_id), result)
            pool.close()
        except KeyboardInterrupt:
            sig.signum = sig.signum or signal.SIGINT
            pool.close(drop=True)
        except BaseException:
            pool.close(drop=True)
            raise
    if sig.signum is not None:
        run.summary.interrupted = int(sig.signum)
        run.summary.not_done = len(jobs) + len(in_flight)


__all__ = ["LOCK_NAME", "SCRATCH_NAME", "BatchError", "batch_key", "check_folders", "execute", "output_names",
           "run_batch"]
