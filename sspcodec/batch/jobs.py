"""One batch run's rules, image by image: read and hash the input, skip what the manifest says is
done and intact, refuse an output that is not ours or not a regular file, write atomically,
record, count. The local folder is the store here; :mod:`sspcodec.batch.ray_engine` swaps in fsspec
URLs under the same rules.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sspcodec.batch.manifest import MANIFEST_NAME, Manifest, make_folders_inside, read_output_file
from sspnet.errors import error_text
from sspnet.files.images import ImageReadError, open_regular_file
from sspnet.files.outputs import check_output_entry, write_bytes_atomic


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

    def as_json(self) -> dict:
        """The summary as one JSON object (`batch --json`): counts, bytes, means per encoded image
        (null when none was encoded), failures and notices."""
        n = self.done
        return {
            "encoded": n, "skipped": self.skipped_existing, "failed": [{"path": p, "error": e} for p, e in self.failed],
            "bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "bytes_baseline": self.bytes_baseline,
            "mean_predicted_shift": self.shift / n if n else None,
            "mean_baseline_predicted_shift": self.shift_baseline / n if n else None,
            "mean_predicted_gain_db": round(self.gain_db / n, 3) if n and math.isfinite(self.gain_db) else None,
            "interrupted_by": signal.Signals(self.interrupted).name if self.interrupted is not None else None,
            "not_done": self.not_done, "notices": list(self.notices),
        }

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


@dataclass
class BatchJob:
    src: Path | str  # a local path, or a URL for `sspcodec.batch.ray_engine`'s fsspec stores
    rel: str
    output: str
    sha256: str = ""
    bytes_in: int = 0


class BatchRun:
    """One batch run's state: the jobs left, the manifest, the summary, the log.

    Input and output I/O go through `read`, `output_exists`, `write` and `read_output`: a local
    folder here, another store in a subclass (:mod:`sspcodec.batch.ray_engine`'s fsspec URLs), with
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


__all__ = ["BatchJob", "BatchRun", "BatchSummary"]
