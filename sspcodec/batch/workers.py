"""Who encodes a batch's images: the encoder in this process for one worker, spawned worker
processes above that (each with its own model, dying with the parent), behind the small
:class:`Pool` interface the Ray engine implements too.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Protocol

from sspnet.errors import error_text


class Pool(Protocol):
    """What `_drive` needs of the encoders: up to `n` tasks at a time, results as they finish
    (a task that cannot finish is reported as a failed result, never lost). The local process
    pool and the Ray engine (:mod:`sspcodec.batch.ray_engine`) both implement it, so they share the
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

    from sspcodec.api import Encoder

    torch.set_num_threads(threads)
    return Encoder(model, device, backend, method=method, strength=strength)


def encode_task(encoder, data: bytes, options: dict) -> dict:
    """One image's JPEG bytes and figures, or why it failed (a bad file never stops the batch)."""
    from sspcodec.api import ContentChangeWarning

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


def local_pool(workers: int, setup: tuple, scratch: Path) -> Pool:
    """The local engine: the encoder in this process for one worker, spawned processes above."""
    return _Inline(setup, scratch) if workers <= 1 else _Workers(workers, setup, scratch)


__all__ = ["Pool", "PoolFactory", "encode_task", "local_pool", "make_encoder", "worker_setup"]
