"""What the batch robustness benchmarks and tests check after a run: the outputs it left, the
temporary files it must not leave, and its processes (found through /proc: Linux only).

Shared by benchmarks/kill_batch.py and bench_ray.py and by tests/test_batch_safety.py and
test_ray_batch.py, so that a benchmark and its test judge a run the same way.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from sspcodec.batch import SCRATCH_NAME
from sspnet.files.outputs import TEMP_SUFFIX


def visible_outputs(folder: Path) -> dict[str, bytes]:
    """Visible files under *folder*, by relative name (the batch's own bookkeeping files, whose
    names start with a dot, are left out)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)}


def leftovers(folder: Path) -> list[str]:
    """Atomic-writer temporary files and batch scratch folders anywhere under *folder*."""
    return [p.name for p in folder.rglob("*") if p.name.endswith(TEMP_SUFFIX) or p.name == SCRATCH_NAME]


def children(pid: int) -> list[int]:
    """Processes whose parent is *pid*, from /proc."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry.name))
    return kids


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def encoding_actor_pids() -> list[int]:
    """Pids of Ray actors busy in SspcodecEncoder.encode (Ray names its worker processes after
    the task they run), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::SspcodecEncoder.encode"):
                pids.append(int(entry.name))
    return pids


def kill_one_actor_while(thread: threading.Thread, timeout: float = 600) -> int | None:
    """SIGKILL the first actor seen encoding while *thread* (a Ray batch) runs; its pid (None if
    none was seen before the thread ended or *timeout* seconds passed)."""
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        busy = encoding_actor_pids()
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            return busy[0]
        time.sleep(0.01)
    return None


__all__ = ["alive", "children", "encoding_actor_pids", "kill_one_actor_while", "leftovers", "visible_outputs"]
