"""`sspcodec batch --engine ray`: the folder batch with Ray actors as the encoders, on this
machine or a cluster, over local folders or fsspec URLs (file://, s3://, gs://, ...).

Why it is built this way:

- **One driver, one writer.** The driver (this process) lists and reads the inputs, hashes
  them against the manifest, and writes every output and every manifest line itself; the actors
  only turn input bytes into JPEG bytes. A killed actor therefore loses nothing: its image is
  retried on a fresh actor (up to ``retries`` times, then recorded as failed with the reason),
  and no output or manifest line is ever half-written. It is the local batch's design
  (:mod:`sspcodec.batch.run`) with Ray in place of the process pool, and it literally shares that
  code: the same manifest, names, skip rules, signals, progress bar and summary, through the
  :class:`~sspcodec.batch.run.Pool` interface. So equal options give byte-identical outputs.
- **One model per actor.** Loading the model (torch import included) is the expensive part,
  so each actor loads it once and encodes image after image; an actor requests the CPUs its
  torch threads use (and one GPU with ``device="cuda"``).
- **Local folders and file:// URLs** go through the local batch unchanged (atomic writes,
  lock, scratch sweeping). **Other fsspec URLs** are read and written by the driver through
  fsspec: an object store publishes an object only once it is complete, so an output is never
  partial; the manifest is ``OUT/.sspcodec-manifest.jsonl`` plus small journal objects (one
  per claim, see :class:`FsspecManifest`), folded into the one file at the start and end of
  each run. No lock exists there: run one batch per OUT at a time.

Ray is optional: :func:`import_ray` turns its absence into one clear error.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sspcodec.batch import (
    MANIFEST_NAME,
    BatchError,
    BatchJob,
    BatchRun,
    BatchSummary,
    Manifest,
    Pool,
    batch_key,
    encode_task,
    execute,
    make_encoder,
    output_names,
    run_batch,
    worker_setup,
)
from sspcodec.options import DEFAULT_STRENGTH
from sspnet.errors import error_text
from sspnet.files.images import IMAGE_SUFFIXES

RAY_MISSING = 'the ray engine needs Ray, which is not installed: pip install "sspcodec[ray]"'
FSSPEC_MISSING = 'URLs need fsspec, which is not installed: pip install "sspcodec[ray]"'
#: How many times an image whose actor died is tried again (each time on a fresh actor).
DEFAULT_RETRIES = 2
JOURNAL_SUFFIX = ".d"  # OUT/.sspcodec-manifest.jsonl.d/: the journal objects of a remote OUT


def import_ray() -> Any:
    """The `ray` module, or ImportError with the one-line install hint (the CLI prints it as
    ``error: ...``, never a traceback)."""
    try:
        import ray
    except ImportError:
        raise ImportError(RAY_MISSING) from None
    return ray


def is_url(location: str | os.PathLike) -> bool:
    return "://" in str(location)


def local_path(location: str | os.PathLike) -> Path | None:
    """The local path of a plain path or a file:// URL; None for any other URL."""
    text = str(location)
    if not is_url(text):
        return Path(text)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    return None


# --------------------------------------------------------------------------
# the actors
# --------------------------------------------------------------------------
class SspcodecEncoder:
    """A Ray actor: one loaded model, encoding input bytes to the batch's result dicts.

    A failure to load the model is kept and returned by every call (the driver stops the run
    with it, as the local batch does), so it is one message, not an actor crash loop."""

    def __init__(self, setup: tuple, scratch: str | None):
        self.own_scratch = scratch is None
        self.scratch = scratch or tempfile.mkdtemp(prefix="sspcodec-ray-")
        os.makedirs(self.scratch, exist_ok=True)
        tempfile.tempdir = os.environ["TMPDIR"] = self.scratch  # the JPEG library's temporary files
        self.error: str | None = None
        self.encoder = None
        try:
            self.encoder = make_encoder(*setup)
        except Exception as exc:  # reported on the first task
            self.error = error_text(exc)

    def pid(self) -> int:
        """This actor's process id (benchmarks kill it to test recovery)."""
        return os.getpid()

    def encode(self, data: bytes, options: dict) -> dict:
        if self.error is not None:
            return {"ok": False, "init_error": self.error}
        return encode_task(self.encoder, data, options)

    def close(self) -> None:
        if self.own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


@dataclass
class _Task:
    data: bytes
    options: dict
    attempts: int = 1


class RayPool:
    """Up to `n` encoder actors, started on demand, one task each at a time (the local pool's
    contract, :class:`sspcodec.batch.run.Pool`). An actor that dies is killed for good and its task
    resubmitted to a fresh actor, at most `retries` times; after that the task's result is a
    failure naming the cause, so one image can never fail the job."""

    def __init__(self, ray: Any, n: int, setup: tuple, scratch: Path | None, retries: int = DEFAULT_RETRIES):
        self.ray, self.n, self.setup, self.retries = ray, n, setup, retries
        self.scratch = scratch
        threads, device = setup[3], setup[1]
        self.actor_class = ray.remote(
            num_cpus=threads, num_gpus=1 if str(device).startswith("cuda") else 0, max_restarts=0,
            max_task_retries=0,
        )(SspcodecEncoder)
        self.started = 0
        self.actors: list[Any] = []  # idle actors
        self.running: dict[Any, tuple[int, Any]] = {}  # object ref -> (task id, actor)
        self.tasks: dict[int, _Task] = {}

    def _actor(self) -> Any:
        if self.actors:
            return self.actors.pop()
        scratch = None if self.scratch is None else str(self.scratch / f"w{self.started}")
        self.started += 1
        return self.actor_class.remote(self.setup, scratch)

    def busy(self) -> int:
        return len(self.running)

    def submit(self, task_id: int, data: bytes, options: dict) -> None:
        self.tasks[task_id] = _Task(data, options)
        self._start(task_id, self._actor())

    def _start(self, task_id: int, actor: Any) -> None:
        task = self.tasks[task_id]
        self.running[actor.encode.remote(task.data, task.options)] = (task_id, actor)

    def results(self, timeout: float) -> list[tuple[int, dict]]:
        """Finished (task id, result) pairs. Raises RuntimeError if an actor could not load the
        model: every other would fail the same way."""
        if not self.running:
            return []
        refs = list(self.running)
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # and whatever else is done by now
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        out = []
        for ref in ready:
            task_id, actor = self.running.pop(ref)
            try:
                result = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:  # the actor died (killed, out of memory, node lost)
                self._discard(actor)
                task = self.tasks[task_id]
                if task.attempts <= self.retries:
                    task.attempts += 1
                    self._start(task_id, self._actor())
                    continue
                why = f"the Ray worker died {task.attempts} times encoding it ({type(exc).__name__})"
                result = {"ok": False, "error": why}
            if "init_error" in result:
                raise RuntimeError(f"a Ray batch worker could not start: {result['init_error']}")
            self.actors.append(actor)
            del self.tasks[task_id]
            out.append((task_id, result))
        return out

    def _discard(self, actor: Any) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(actor, no_restart=True)

    def close(self, drop: bool = False) -> None:
        """Stop every actor: idle ones tidy their scratch first; with *drop*, tasks in flight are lost."""
        idle = list(self.actors)
        if not drop and idle:
            with contextlib.suppress(Exception):
                self.ray.get([a.close.remote() for a in idle], timeout=10)
        for actor in idle + [a for _, a in self.running.values()]:
            self._discard(actor)
        self.actors.clear()
        self.running.clear()
        self.tasks.clear()


# --------------------------------------------------------------------------
# fsspec stores
# --------------------------------------------------------------------------
def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise ImportError(FSSPEC_MISSING) from None
    return fsspec.core.url_to_fs(url)


class FsspecManifest(Manifest):
    """The manifest of an OUT on an fsspec store, which cannot append to a file.

    ``OUT/.sspcodec-manifest.jsonl`` plus journal objects in ``OUT/.sspcodec-manifest.jsonl.d/``,
    read in name order after it. A claim is written at once as its own small object (with any
    records waiting), before its output is written, so ownership survives a driver kill exactly
    as with the local file; other records follow with the next claim or at `close`. Opening and
    closing fold everything into the one file and delete the journal objects (one writer per OUT).
    """

    def __init__(self, fs: Any, out_root: str):  # Manifest's state, loaded from the store instead of a file
        self.fs, self.out_root = fs, out_root
        self.path = f"{out_root}/{MANIFEST_NAME}"  # type: ignore[assignment]
        self.journal = self.path + JOURNAL_SUFFIX
        self.finished, self.owned, self.skipped = {}, set(), []
        self._fd = None
        self._lines: list[bytes] = []
        self._pending: list[bytes] = []
        self._run = f"{time.time_ns():020d}-{os.getpid()}"
        self._seq = 0
        with contextlib.suppress(FileNotFoundError):
            self._lines += fs.cat_file(self.path).splitlines(keepends=True)
        parts = sorted(fs.find(self.journal)) if fs.exists(self.journal) else []
        for part in parts:
            self._lines += fs.cat_file(part).splitlines(keepends=True)
        self._lines = [ln if ln.endswith(b"\n") else ln + b"\n" for ln in self._lines]
        self._load(self._lines)
        if parts:
            self._fold(parts)

    def _fold(self, parts: list[str]) -> None:
        """Write every record into the one file, then remove the journal objects it holds."""
        self.fs.pipe_file(self.path, b"".join(self._lines))
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(part)

    def append(self, **rec: Any) -> None:
        line = (json.dumps(rec, sort_keys=True) + "\n").encode()
        self._pending.append(line)
        self._lines.append(line)
        self._apply(rec)
        if rec.get("event") == "claim":
            self.flush()

    def flush(self) -> None:
        """Write the waiting records as one journal object."""
        if self._pending:
            self._seq += 1
            self.fs.pipe_file(f"{self.journal}/{self._run}-{self._seq:09d}.jsonl", b"".join(self._pending))
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        parts = sorted(self.fs.find(self.journal)) if self.fs.exists(self.journal) else []
        if parts:
            self._fold(parts)


class FsspecRun(BatchRun):
    """A batch run whose IN and OUT are fsspec URLs: the driver reads inputs and writes outputs
    through fsspec, under the same manifest rules as a local folder."""

    def __init__(self, fs: Any, out_root: str, key: dict, overwrite: bool):
        super().__init__(out_root, key, overwrite, manifest=FsspecManifest(fs, out_root))
        self.fs = fs

    def _out(self, name: str) -> str:
        return f"{self.out_dir}/{name}"

    def read(self, job: BatchJob) -> bytes:
        return self.fs.cat_file(str(job.src))

    def read_output(self, name: str) -> bytes:
        return self.fs.cat_file(self._out(name))

    def output_path(self, job: BatchJob) -> str:
        return self.fs.unstrip_protocol(self._out(job.output))

    def output_exists(self, job: BatchJob) -> bool:
        return self.fs.exists(self._out(job.output))

    def check_output(self, job: BatchJob) -> None:
        """Nothing to check up front: an object store has no links or special files."""

    def write(self, job: BatchJob, data: bytes, overwrite: bool) -> None:
        """One object put: an object store publishes it whole or not at all."""
        dst = self._out(job.output)
        if not overwrite and self.fs.exists(dst):
            raise FileExistsError(f"{self.output_path(job)} exists and was not written by this batch")
        self.fs.pipe_file(dst, data)


def _fsspec_jobs(fs: Any, in_root: str, out_root: str) -> deque[BatchJob]:
    """The image files under IN (OUT left out when it lies inside), with the local batch's names."""
    inside = f"{out_root}/"
    if in_root == out_root:
        raise BatchError("the output folder must differ from the input folder (inputs are never overwritten)")
    if f"{in_root}/".startswith(inside):
        raise BatchError(f"the input folder {in_root} is inside the output folder {out_root}; choose another output")
    if not fs.isdir(in_root):
        raise BatchError(f"{fs.unstrip_protocol(in_root)} is not a folder")
    keys = [k for k in fs.find(in_root) if not k.startswith(inside) and PurePosixPath(k).suffix.lower()
            in IMAGE_SUFFIXES]
    sources = sorted(PurePosixPath(k) for k in keys)
    names = output_names(sources, PurePosixPath(in_root))  # type: ignore[arg-type]
    return deque(BatchJob(fs.unstrip_protocol(str(s)), s.relative_to(in_root).as_posix(), names[s].as_posix())
                 for s in sources)


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------
@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int) -> Iterator[Any]:
    """Ray for one run: the cluster at *address* ("auto": the one this machine belongs to), or a
    private local Ray limited to *num_cpus* that is shut down afterwards; a Ray already started
    by the caller (a notebook, the tests) is used as it is and left running."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is None:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()


def run_ray_batch(
    in_dir: str | os.PathLike, out_dir: str | os.PathLike, options: dict, *, model: str = "default",
    device: str = "cpu", backend: str | None = None, workers: int = 2, log: Path | None = None,
    overwrite: bool = False, method: str = "rd", strength: float = DEFAULT_STRENGTH, address: str | None = None,
    retries: int = DEFAULT_RETRIES, progress: bool = True,
) -> BatchSummary:
    """`sspcodec.batch.run_batch` with `workers` Ray actors as the encoders; IN and OUT may be
    local paths or fsspec URLs. Same outputs, manifest and summary as the local batch with the
    same options. `address`: None starts a local Ray with the workers' CPUs; "auto" or
    "host:port" joins a cluster."""
    import_ray()  # before any folder is made: the missing extra is the first thing to say
    setup = worker_setup(model, device, backend, workers, method, strength)
    local_in, local_out = local_path(in_dir), local_path(out_dir)
    if (local_in is None) != (local_out is None):
        raise BatchError("IN and OUT must both be local (paths or file:// URLs) or both remote URLs")
    if local_in is not None and local_out is not None:
        with ray_session(address, workers * setup[3]) as ray:
            # local actors share OUT's scratch folder, which the local batch sweeps; a cluster's
            # nodes do not see it, so their actors use their own temporary folders
            def make_pool(n: int, setup: tuple, scratch: Path) -> Pool:
                return RayPool(ray, n, setup, scratch if address is None else None, retries)

            return run_batch(local_in, local_out, options, model=model, device=device, backend=backend,
                             workers=workers, log=log, overwrite=overwrite, method=method, strength=strength,
                             make_pool=make_pool)
    fs, in_root = _fs(str(in_dir))
    out_fs, out_root = _fs(str(out_dir))
    if type(out_fs) is not type(fs):
        raise BatchError("IN and OUT must be on the same store (one fsspec protocol)")
    in_root, out_root = in_root.rstrip("/"), out_root.rstrip("/")
    key, compress_options = batch_key(options, model=model, backend=backend, method=method, strength=strength)
    jobs = _fsspec_jobs(fs, in_root, out_root)
    fs.makedirs(out_root, exist_ok=True)
    with ray_session(address, workers * setup[3]) as ray:
        run = FsspecRun(fs, out_root, key, overwrite)
        return execute(run, jobs, RayPool(ray, workers, setup, None, retries), compress_options, log, progress)


__all__ = ["RAY_MISSING", "FsspecManifest", "FsspecRun", "RayPool", "SspcodecEncoder", "import_ray",
           "local_path", "ray_session", "run_ray_batch"]
