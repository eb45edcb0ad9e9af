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
import ctypes
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from sspnet.cli import error_text
from sspnet.imageio import (
    ImageReadError,
    UnsafeWriteError,
    check_output_entry,
    list_images,
    open_entry,
    open_regular_file,
    remove_temp_files,
    same_file,
    write_bytes_atomic,
)

from .options import Budget

MANIFEST_NAME = ".sspcodec-manifest.jsonl"
LOCK_NAME = ".sspcodec-batch.lock"
SCRATCH_NAME = ".sspcodec-tmp"
#: A manifest line longer than this is not one the batch wrote: skipped unread (a record is ~400 B).
MAX_MANIFEST_LINE = 1 << 16


class BatchError(ValueError):
    """The batch cannot start as asked (folders, names, OUT in use); the message says why."""


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
    gain_db: float = 0.0  # sum of predicted_gain_db (saliency-weighted PSNR vs the plain JPEG)
    interrupted: int | None = None  # the signal that stopped the run
    not_done: int = 0  # images left unencoded by the interruption
    notices: list[str] = field(default_factory=list)  # what the run left out or skipped, and why

    def lines(self) -> list[str]:
        out = [f"encoded {self.done} image(s), skipped {self.skipped_existing} already done, {len(self.failed)} failed"]
        if self.done:
            saved = 1 - self.bytes_out / max(self.bytes_in, 1)
            change = f"{100 * saved:.1f}% smaller" if saved >= 0 else f"{-100 * saved:.1f}% larger"
            out.append(f"input {self.bytes_in / 1e6:.2f} MB -> output {self.bytes_out / 1e6:.2f} MB ({change})")
            out.append(
                f"mean predicted shift {self.shift / self.done:.5f} vs {self.shift_baseline / self.done:.5f} "
                f"for plain JPEGs of the same bytes ({self.bytes_baseline / 1e6:.2f} MB); "
                f"mean {self.gain_db / self.done:+.2f} dB saliency-weighted PSNR vs them"
            )
        for path, why in self.failed:
            out.append(f"  failed: {path}: {why}")
        out += [f"  notice: {text}" for text in self.notices[:20]]
        if len(self.notices) > 20:
            out.append(f"  ... and {len(self.notices) - 20} more notice(s) (--log has every image's)")
        if self.interrupted is not None:
            out.append(
                f"interrupted by {signal.Signals(self.interrupted).name}: {self.not_done} image(s) not encoded; "
                "rerun the same command to finish them"
            )
        return out


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


class Manifest:
    """OUT's append-only record of claimed and finished outputs (one JSON object per line).

    A line cut short by a kill is ignored on reading, and the next append starts on a fresh line.
    ``owned`` is the set of outputs this batch wrote or was writing, so a rerun replaces them but
    never a file it did not create. The file is opened without following links and only if it
    is a regular file; any line survives reading (``skipped`` lists the line numbers of those that
    did not parse, overlong or too deeply nested ones included).
    """

    def __init__(self, path: Path):
        self.path = path
        self.finished: dict[str, dict] = {}
        self.owned: set[str] = set()
        self.skipped: list[int] = []
        self._fd: int | None = None
        try:
            fd = open_entry(path, os.O_RDONLY, "the batch manifest")
        except FileNotFoundError:
            return
        with os.fdopen(fd, "rb") as f:
            self._load(_capped_lines(f))

    def _load(self, lines: Iterable[bytes | None]) -> None:
        """Apply recorded lines; one that does not parse (cut short by a kill, edited by hand,
        overlong: None) is skipped and its number kept in ``skipped``."""
        for number, line in enumerate(lines, 1):
            try:
                if line is None or len(line) > MAX_MANIFEST_LINE:
                    raise ValueError("overlong line")
                self._apply(json.loads(line))
            except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the parser's depth
                self.skipped.append(number)

    def notice(self) -> str | None:
        """The skipped lines in words, for the run's summary (None when every line was read)."""
        if not self.skipped:
            return None
        shown = ", ".join(map(str, self.skipped[:5])) + (", ..." if len(self.skipped) > 5 else "")
        return (f"{len(self.skipped)} unreadable line(s) of {self.path} skipped (line {shown}): cut short by a kill "
                "or not written by sspcodec")

    def _apply(self, rec: Any) -> None:
        if not isinstance(rec, dict) or not isinstance(rec.get("output"), str):
            return
        event = rec.get("event")
        if event == "release":
            self.owned.discard(rec["output"])
            return
        if event in ("claim", "done"):
            self.owned.add(rec["output"])
        if event == "done" and isinstance(rec.get("src"), str):
            self.finished[rec["src"]] = rec

    def append(self, **rec: Any) -> None:
        """Record one event durably (fsync'ed): it must not be lost if the machine stops next."""
        if self._fd is None:
            self._fd = open_entry(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, "the batch manifest")
            size = os.lseek(self._fd, 0, os.SEEK_END)  # O_APPEND: writes land at the end whatever the offset
            if size and os.lseek(self._fd, size - 1, os.SEEK_SET) >= 0 and os.read(self._fd, 1) != b"\n":
                os.write(self._fd, b"\n")  # a line cut short by a kill stays alone on its line
        os.write(self._fd, (json.dumps(rec, sort_keys=True) + "\n").encode())
        os.fsync(self._fd)
        self._apply(rec)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def is_finished(
        self, src: str, sha256: str, options: dict, out_dir: Path, read: Callable[[str], bytes] | None = None,
        output: str | None = None,
    ) -> bool:
        """Whether *src* with this content and these options is done and its output intact.
        *read* returns an output's bytes from its name (default: the regular file under
        *out_dir*, never through a link), so a store other than a local folder checks the same
        way; *output*, when given, is the name the output must have (a record naming another
        file is not trusted)."""
        rec = self.finished.get(src)
        if rec is None or rec.get("sha256") != sha256 or rec.get("options") != options:
            return False
        if output is not None and rec["output"] != output:
            return False
        try:
            data = read(rec["output"]) if read is not None else read_output_file(out_dir / rec["output"])
        except (OSError, ValueError):
            return False
        return len(data) == rec.get("bytes") and hashlib.sha256(data).hexdigest() == rec.get("output_sha256")


def _capped_lines(f: Any) -> Iterator[bytes | None]:
    """The lines of a binary file, each read at most :data:`MAX_MANIFEST_LINE` + 1 bytes at a
    time: an overlong line is consumed in chunks and given as None, so no line, however long,
    is ever held whole in memory."""
    while line := f.readline(MAX_MANIFEST_LINE + 1):
        if len(line) <= MAX_MANIFEST_LINE or line.endswith(b"\n"):
            yield line if len(line) <= MAX_MANIFEST_LINE else None
            continue
        while (rest := f.readline(MAX_MANIFEST_LINE)) and not rest.endswith(b"\n"):
            pass
        yield None


def read_output_file(path: Path) -> bytes:
    """An output's bytes, read only if it is a regular file (no link followed, no FIFO opened)."""
    with os.fdopen(open_entry(path, os.O_RDONLY, "output"), "rb") as f:
        return f.read()


def make_folders_inside(root: Path, rel: Path) -> Path:
    """``root / rel`` as a real folder, made part by part, refusing any part that is a symbolic
    link or not a folder: an output is never written through a link found inside OUT."""
    folder = root
    for part in rel.parts:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a folder"
            raise UnsafeWriteError(f"cannot write into {os.fspath(folder)!r}: it is {what} inside the output folder; "
                                   "outputs are never written through links")
    return folder


def model_identity(model: str) -> str:
    """What identifies the model's outputs in the manifest: a packaged name with its digest, or
    the SHA-256 of a checkpoint file (retraining into the same path re-encodes)."""
    from sspnet.zoo import ZOO, sha256_file

    return f"{model}:{ZOO[model][1]}" if model in ZOO else "sha256:" + sha256_file(model)


# --------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------
class Pool(Protocol):
    """What `_drive` needs of the encoders: up to `n` tasks at a time, results as they finish
    (a task that cannot finish is reported as a failed result, never lost). The local process
    pool and the Ray engine (:mod:`sspcodec.ray_batch`) both implement it, so they share the
    driver, the manifest and the output writing, and so their outputs."""

    n: int

    def busy(self) -> int: ...
    def submit(self, task_id: int, data: bytes, options: dict) -> None: ...
    def results(self, timeout: float) -> list[tuple[int, dict]]: ...
    def close(self, drop: bool = False) -> None: ...


#: Builds the pool of a run from (workers, encoder setup, scratch folder); see `worker_setup`.
PoolFactory = Callable[[int, tuple, Path], Pool]


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker exit when the batch process dies, however it dies (kill -9 included):
    Linux's parent-death signal, plus a watchdog thread polling the parent id elsewhere."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def worker_setup(model: str, device: str, backend: str | None, workers: int, method: str, strength: float) -> tuple:
    """The arguments every worker builds its encoder from (`make_encoder`): the machine's cores
    shared between the workers as torch threads. Every engine uses it, so equal options give
    equal bytes whatever runs them."""
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    return (model, device, backend, threads, method, strength)


def make_encoder(model: str, device: str, backend: str | None, threads: int, method: str, strength: float):
    import torch

    from .api import Encoder

    torch.set_num_threads(threads)
    return Encoder(model, device, backend, method=method, strength=strength)


def encode_task(encoder, data: bytes, options: dict) -> dict:
    """One image's JPEG bytes and figures, or why it failed (a bad file never stops the batch)."""
    from .api import ContentChangeWarning

    try:
        with warnings.catch_warnings():  # the notices travel in the summary, said once by the parent
            warnings.simplefilter("ignore", ContentChangeWarning)
            result = encoder.compress(data, **options)
    except Exception as exc:  # isolate failures: report and continue with the next file
        return {"ok": False, "error": f"{type(exc).__name__}: {error_text(exc)}"}
    return {"ok": True, "data": result.data, "summary": result.summary()}


def _worker_main(conn: Connection, parent_pid: int, setup: tuple, scratch: str) -> None:
    """A worker process: load the model once, then encode (task id, bytes, options) until told
    to stop. Ctrl-C is the parent's to handle; temporary files go to the run's scratch folder."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.makedirs(scratch, exist_ok=True)
    tempfile.tempdir = os.environ["TMPDIR"] = scratch
    try:
        encoder = make_encoder(*setup)
    except BaseException as exc:
        conn.send(("init_error", error_text(exc)))
        return
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        task_id, data, options = task
        conn.send(("result", task_id, encode_task(encoder, data, options)))


class _Workers:
    """Up to *n* spawned worker processes, started on demand, one task each at a time.

    Spawn, not fork: forking a process whose torch thread pool is live can deadlock.
    """

    def __init__(self, n: int, setup: tuple, scratch: Path):
        self.n, self.setup, self.scratch = n, setup, scratch
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list[dict] = []  # {"proc", "conn", "task"}
        self.started = 0

    def _idle(self) -> dict:
        """An idle worker, starting one if fewer than *n* run (the caller checked ``busy``)."""
        for w in self.procs:
            if w["task"] is None:
                return w
        parent_conn, child_conn = self.ctx.Pipe()
        scratch = str(self.scratch / f"w{self.started}")
        proc = self.ctx.Process(target=_worker_main, args=(child_conn, os.getpid(), self.setup, scratch),
                                name=f"sspcodec-batch-{self.started}", daemon=True)
        proc.start()
        child_conn.close()
        self.started += 1
        self.procs.append({"proc": proc, "conn": parent_conn, "task": None})
        return self.procs[-1]

    def busy(self) -> int:
        return sum(w["task"] is not None for w in self.procs)

    def submit(self, task_id: int, data: bytes, options: dict) -> None:
        w = self._idle()
        w["task"] = task_id
        with contextlib.suppress(OSError):  # a worker that died meanwhile: `results` reports it
            w["conn"].send((task_id, data, options))

    def results(self, timeout: float) -> list[tuple[int, dict]]:
        """Finished (task id, result) pairs; a worker that died is reported as its task failing
        and removed (a replacement starts on the next ``free``). Raises RuntimeError if a
        worker could not load the model: every other would fail the same way."""
        busy = [w for w in self.procs if w["task"] is not None]
        ready = set(wait([w["conn"] for w in busy] + [w["proc"].sentinel for w in busy], timeout))
        out = []
        for w in busy:
            if w["conn"] not in ready and w["proc"].sentinel not in ready:
                continue
            try:
                msg = w["conn"].recv() if w["conn"].poll() else None
            except (EOFError, OSError):
                msg = None
            if msg is not None and msg[0] == "init_error":
                raise RuntimeError(f"a batch worker could not start: {msg[1]}")
            if msg is None:  # died mid-task (killed, out of memory, ...)
                w["proc"].join(5)
                code = w["proc"].exitcode
                out.append((w["task"], {"ok": False, "error": f"the worker process died (exit code {code})"}))
                w["conn"].close()
                self.procs.remove(w)
                continue
            out.append((msg[1], msg[2]))
            w["task"] = None
        return out

    def close(self, drop: bool = False) -> None:
        """Stop every worker: politely when idle, terminated when *drop* (their tasks are lost)."""
        for w in self.procs:
            with contextlib.suppress(OSError, BrokenPipeError):
                if drop:
                    w["proc"].terminate()
                else:
                    w["conn"].send(None)
        for w in self.procs:
            w["proc"].join(10)
            if w["proc"].is_alive():
                w["proc"].kill()
                w["proc"].join()
            w["conn"].close()
        self.procs.clear()


class _Inline:
    """The one-worker case, in this process: no start-up cost, the model loaded once, lazily."""

    n = 1

    def __init__(self, setup: tuple, scratch: Path):
        self.setup, self.scratch = setup, scratch
        self.encoder = None
        self.task: tuple | None = None

    def busy(self) -> int:
        return int(self.task is not None)

    def submit(self, task_id: int, data: bytes, options: dict) -> None:
        self.task = (task_id, data, options)

    def results(self, timeout: float) -> list[tuple[int, dict]]:
        if self.task is None:
            return []
        task_id, data, options = self.task
        self.scratch.mkdir(parents=True, exist_ok=True)
        saved, tempfile.tempdir = tempfile.tempdir, str(self.scratch)
        try:
            if self.encoder is None:
                self.encoder = make_encoder(*self.setup)
            result = encode_task(self.encoder, data, options)
        finally:
            tempfile.tempdir = saved
        self.task = None
        return [(task_id, result)]

    def close(self, drop: bool = False) -> None:
        self.task = None


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


def local_pool(workers: int, setup: tuple, scratch: Path) -> Pool:
    """The local engine: the encoder in this process for one worker, spawned processes above."""
    return _Inline(setup, scratch) if workers <= 1 else _Workers(workers, setup, scratch)


@dataclass
class BatchJob:
    src: Path | str  # a local path, or a URL for `sspcodec.ray_batch`'s fsspec stores
    rel: str
    output: str
    sha256: str = ""
    bytes_in: int = 0


class BatchRun:
    """One batch run's state: the jobs left, the manifest, the summary, the log.

    Input and output I/O go through `read`, `output_exists`, `write` and `read_output`: a local
    folder here, another store in a subclass (:mod:`sspcodec.ray_batch`'s fsspec URLs), with
    the same manifest rules either way."""

    def __init__(self, out_dir: Path | str, key: dict, overwrite: bool, manifest: Manifest | None = None):
        self.out_dir, self.key, self.overwrite = out_dir, key, overwrite
        self.manifest = manifest if manifest is not None else Manifest(Path(out_dir) / MANIFEST_NAME)
        self.summary = BatchSummary()
        self.log_file: Any = None
        self.progress: Any = None  # a tqdm bar, set by `execute`

    # -- the store: a local folder --
    def read(self, job: BatchJob) -> bytes:
        """The input's bytes (a regular file only: no FIFO or device is ever opened)."""
        with open_regular_file(job.src) as f:
            return f.read()

    def read_output(self, name: str) -> bytes:
        return read_output_file(Path(self.out_dir) / name)

    def check_output(self, job: BatchJob) -> None:
        """The output rule before any work: the output's entry is a regular file or absent
        (never a link, FIFO, device or folder), whatever the manifest says it is."""
        check_output_entry(Path(self.out_dir) / job.output)

    def output_path(self, job: BatchJob) -> str:
        """The output as the user names it (log lines, messages)."""
        return str(Path(self.out_dir) / job.output)

    def output_exists(self, job: BatchJob) -> bool:
        return os.path.lexists(Path(self.out_dir) / job.output)

    def write(self, job: BatchJob, data: bytes, overwrite: bool) -> None:
        """Publish one output atomically (never onto its input, never over a file unless *overwrite*)."""
        make_folders_inside(Path(self.out_dir), Path(job.output).parent)
        write_bytes_atomic(Path(self.out_dir) / job.output, data, source=job.src, overwrite=overwrite)

    # -- the rules --
    def prepare(self, job: BatchJob) -> bytes | None:
        """The input's bytes if it needs encoding; None once it is counted as skipped or failed."""
        try:
            data = self.read(job)
        except (ImageReadError, OSError) as exc:
            self.fail(job, error_text(exc))
            return None
        job.sha256, job.bytes_in = hashlib.sha256(data).hexdigest(), len(data)
        if self.manifest.is_finished(job.rel, job.sha256, self.key, Path(self.out_dir), self.read_output, job.output):
            self.summary.skipped_existing += 1
            self.progress.update()
            return None
        try:
            self.check_output(job)
        except (OSError, ValueError) as exc:
            self.fail(job, error_text(exc))
            return None
        if self.output_exists(job) and not self.overwrite and job.output not in self.manifest.owned:
            self.fail(job, f"{self.output_path(job)} exists and was not written by this batch; "
                           "pass --overwrite to replace it")
            return None
        return data

    def finish(self, job: BatchJob, result: dict) -> None:
        """Write one encoded image: claimed in the manifest, written atomically, then recorded."""
        if not result["ok"]:
            self.fail(job, result["error"])
            return
        owned = self.overwrite or job.output in self.manifest.owned
        self.manifest.append(event="claim", src=job.rel, output=job.output)
        try:
            self.write(job, result["data"], owned)
        except (OSError, ValueError) as exc:
            if not owned:
                self.manifest.append(event="release", src=job.rel, output=job.output)
            self.fail(job, error_text(exc))
            return
        data, fig = result["data"], result["summary"]
        self.manifest.append(event="done", src=job.rel, output=job.output, sha256=job.sha256, options=self.key,
                             bytes=len(data), output_sha256=hashlib.sha256(data).hexdigest())
        self.log({"ok": True, "src": str(job.src), "output": self.output_path(job), "bytes_in": job.bytes_in, **fig})
        s = self.summary
        s.done += 1
        s.bytes_in += job.bytes_in
        s.bytes_out += fig["bytes"]
        s.bytes_baseline += fig["baseline"]["bytes"]
        s.shift += fig["predicted_shift"]
        s.shift_baseline += fig["baseline"]["predicted_shift"]
        s.gain_db += fig.get("predicted_gain_db") or 0.0  # None: lossless, nothing to gain
        s.notices += fig.get("notices", [])
        self.progress.update()

    def fail(self, job: BatchJob, why: str) -> None:
        self.summary.failed.append((str(job.src), why))
        self.log({"ok": False, "src": str(job.src), "error": why})
        self.progress.update()

    def log(self, record: dict) -> None:
        if self.log_file is not None:
            self.log_file.write(json.dumps(record) + "\n")
            self.log_file.flush()


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
    method: str = "rd", strength: float = 1.0, make_pool: PoolFactory = local_pool,
) -> BatchSummary:
    """Encode every image under `in_dir` to `out_dir` (same tree, .jpg); returns the summary.

    `options` are `Encoder.compress` keywords (a budget, ...). `make_pool` chooses who encodes
    (default: local processes; :mod:`sspcodec.ray_batch` passes Ray actors). Raises
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
            return execute(run, jobs, pool, compress_options, log)
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


def execute(run: BatchRun, jobs: deque, pool: Pool, options: dict, log: Path | None) -> BatchSummary:
    """Run the jobs through the pool with a progress bar and the --log file; the manifest is
    closed whatever happens. Shared by every engine and store."""
    log_fd = open_entry(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "--log") if log else None
    log_file = os.fdopen(log_fd, "a", encoding="utf-8") if log_fd is not None else None
    run.log_file = log_file
    run.progress = tqdm(total=len(jobs), desc="sspcodec batch", unit="img")
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


__all__ = [
    "BatchError", "BatchJob", "BatchRun", "BatchSummary", "Manifest", "Pool", "PoolFactory", "batch_key",
    "check_folders", "encode_task", "execute", "local_pool", "make_encoder", "output_names", "run_batch",
    "worker_setup",
]
