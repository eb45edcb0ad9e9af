"""The fuzz runner: cases in a worker process, a per-case timeout in the parent, so that a hang
in C code is timed out too (benchmarks/fuzz.py, benchmarks/pillow_corpus.py)."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from sspcodec.bench.fuzz_cases import Outcome, run_case
from sspcodec.bench.fuzz_inputs import OutputCase


def _worker(conn: Connection, model: str, scratch: str) -> None:
    """The worker process: one encoder on one thread, its temporary folder *scratch*; runs each
    case it receives until it receives None."""
    import torch

    tempfile.tempdir = scratch
    torch.set_num_threads(1)
    from sspcodec import Encoder

    encoder = Encoder(model, device="cpu")
    while True:
        job = conn.recv()
        if job is None:
            return
        data, options, output, folder = job
        conn.send(run_case(encoder, data, options, Path(folder), Path(scratch), output))


class CaseRunner:
    """One worker process (spawned: no state shared with the parent) encoding with the checkpoint
    *model*, replaced when a case times out; *scratch* is its private temporary folder."""

    def __init__(self, model: Path, scratch: Path) -> None:
        self.model, self.scratch, self.ctx = model, scratch, mp.get_context("spawn")
        self.proc: BaseProcess | None = None

    def start(self) -> None:
        """Start a fresh worker."""
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, str(self.model), str(self.scratch)), daemon=True)
        self.proc.start()

    def run(self, data: bytes, options: dict, output: OutputCase, folder: Path, timeout: float) -> Outcome:
        """One case in the worker (started if needed): its outcome, "crash" if the worker died,
        "hang" (and the worker killed) after *timeout* seconds without one."""
        if self.proc is None or not self.proc.is_alive():
            self.start()
        self.conn.send((data, options, output, str(folder)))
        if self.conn.poll(timeout):
            try:
                return self.conn.recv()
            except EOFError:  # the worker died (a segfault, the OOM killer)
                self.proc = None
                return Outcome("crash", "the worker process died")
        self.proc.kill()
        self.proc.join()
        self.proc = None
        for p in self.scratch.iterdir():  # a killed case cannot clean up; not a leak of ours
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()
        return Outcome("hang", f"no verdict in {timeout:g} s")

    def close(self) -> None:
        """Ask the worker to stop and wait for it (at most 10 s)."""
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(10)


__all__ = ["CaseRunner"]
