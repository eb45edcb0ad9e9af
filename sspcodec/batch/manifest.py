"""OUT's record of a batch and the safe way to touch OUT: the append-only manifest (what was
claimed and finished, with SHA-256s, so a rerun redoes exactly what changed), outputs read
back only as regular files, and OUT's subfolders made without ever entering a link.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from sspnet.files.outputs import UnsafeWriteError

from .entries import open_entry

MANIFEST_NAME = ".sspcodec-manifest.jsonl"
#: A manifest line longer than this is not one the batch wrote: skipped unread (a record is ~400 B).
MAX_MANIFEST_LINE = 1 << 16


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


__all__ = ["MANIFEST_NAME", "MAX_MANIFEST_LINE", "Manifest", "make_folders_inside", "model_identity",
           "read_output_file"]
