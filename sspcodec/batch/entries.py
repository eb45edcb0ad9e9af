"""The batch's own entries on disk: files it writes in place (log, manifest, lock) and the
temporary files a killed writer leaves behind. Both follow the output rule of
:mod:`sspnet.files.outputs`: no link followed, regular files only.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat

from sspnet.files.outputs import TEMP_SUFFIX, UnsafeWriteError, entry_kind


def open_entry(path: str | os.PathLike, flags: int, what: str, perm: int = 0o644) -> int:
    """A descriptor of *path* opened without following a final symbolic link, refused unless it
    is a regular file (:class:`UnsafeWriteError` naming *what*). For the files a command opens
    in place -- append-only logs, a manifest, a lock --, where the atomic writer's rename does not
    apply: a link there must not redirect the write, and a FIFO must not block it."""
    shown = repr(os.fspath(path))
    extra = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags | extra, perm)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeWriteError(f"cannot open {what} {shown}: it is a symbolic link; links are never followed "
                                   "for files written in place") from None
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise UnsafeWriteError(f"cannot open {what} {shown}: it is a FIFO (named pipe), not a regular file") \
                from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeWriteError(f"cannot open {what} {shown}: it is {entry_kind(st)}, not a regular file")
    os.set_blocking(fd, True)
    return fd


def remove_temp_files(folder: str | os.PathLike) -> int:
    """Delete the atomic writer's leftover temporary files under *folder* (a writer killed with
    SIGKILL cannot clean up); only names ending in :data:`TEMP_SUFFIX` are touched. Call it
    only while no other writer uses *folder*. Returns how many were removed."""
    removed = 0
    for root, _dirs, names in os.walk(folder):
        for n in names:
            if n.startswith(".") and n.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(root, n))
                    removed += 1
    return removed


__all__ = ["open_entry", "remove_temp_files"]
