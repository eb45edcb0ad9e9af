"""Helpers for the tests that run batches the way the batch benchmarks do (the benchmarks' own
checks are in :mod:`sspcodec.bench.batchchecks`)."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path


def start_until_output(cmd: list[str], out: Path, timeout: float) -> subprocess.Popen:
    """Start *cmd* (a batch into *out*) and return it once its first .jpg is there, still running."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not list(out.glob("*.jpg")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no output within {timeout:g} s"
        time.sleep(0.05)
    return proc
