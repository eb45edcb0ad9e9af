"""Benchmark scripts as modules, for tests that share their checks (benchmarks/ is no package)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py imported under its own name."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"no benchmarks/{name}.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def start_until_output(cmd: list[str], out: Path, timeout: float) -> subprocess.Popen:
    """Start *cmd* (a batch into *out*) and return it once its first .jpg is there, still running."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not list(out.glob("*.jpg")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no output within {timeout:g} s"
        time.sleep(0.05)
    return proc
