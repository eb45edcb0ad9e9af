"""Every file either package writes: one rule, one atomic writer.

The rule, for every output (a JPEG, a report, maps, checkpoints, batch outputs): never onto an
input (symlinks and hard links resolved), never onto an existing file unless asked, never onto
or through a symbolic link, FIFO, device, socket or folder even when asked
(:func:`check_output_entry`, examined with ``lstat`` and again just before the rename), created
atomically (a temporary file beside the target, then a hard link that fails if the name was
taken meanwhile, or a rename when replacing), so an interrupted run never leaves a
half-written or lost file. :class:`OutputPlan` applies it to a command's outputs together: all
checked before any work, all written after it. (The batch's files written in place -- log,
manifest, lock -- follow the same rule in :mod:`sspcodec.batch.entries`.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path


class UnsafeWriteError(ValueError):
    """A write was refused because it would clobber something it should not."""


class OutputExistsError(UnsafeWriteError, FileExistsError):
    """The output exists and replacing it was not allowed (also a ``FileExistsError``)."""


#: Suffix of the atomic writer's temporary files, so a cleaner can tell them from real files.
TEMP_SUFFIX = ".sspnet-tmp"

#: What a directory entry that is not a regular file is, in words, by its file type.
FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def current_umask() -> int:
    """Current umask without touching it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def same_file(a: Path, b: Path) -> bool:
    """Same file on disk: symlinks and hard links resolved (inode compare), else same real path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def entry_kind(st: os.stat_result) -> str:
    """What a non-regular directory entry is, in words."""
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    return FILE_KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")


def check_output_entry(path: str | os.PathLike) -> os.stat_result | None:
    """The one output rule, on the entry itself (``lstat``: a link is never followed): absent
    (None) or a regular file (its stat) may be written; a symbolic link (dangling or not), FIFO,
    device, socket or folder is refused with :class:`UnsafeWriteError` (a folder with
    ``IsADirectoryError``) whatever ``--overwrite`` says: replacing one would destroy what it
    stands for (/dev/null, a pipe another program reads) and writing through a link lands
    outside the place the user named."""
    shown = repr(os.fspath(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError as exc:
        raise UnsafeWriteError(f"cannot write {shown}: a part of its folder path is not a folder") from exc
    if stat.S_ISREG(st.st_mode):
        return st
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"cannot write {shown}: it is a directory")
    raise UnsafeWriteError(
        f"cannot write {shown}: it is {entry_kind(st)}, not a regular file; outputs are never written through "
        "links or onto special files, even with --overwrite (remove it or choose another path)"
    )


def _check_target(path: str | os.PathLike, sources: Iterable[str | os.PathLike], overwrite: bool) -> Path:
    """The checks every output passes before any work: a regular file or absent (no link, FIFO,
    device, socket or folder: :func:`check_output_entry`), its folder exists, not an input
    (symlinks and hard links resolved), and absent unless *overwrite*."""
    shown = repr(os.fspath(path))
    dest = Path(path)
    for s in sources:  # first: "that is the input" says more than "that is a link"
        if same_file(dest, Path(s)):
            raise UnsafeWriteError(
                f"refusing to overwrite the input file {os.fspath(s)!r}; choose another output path"
            )
    existing = check_output_entry(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {shown}: folder {os.fspath(parent)!r} does not exist")
    if not overwrite and existing is not None:
        raise OutputExistsError(f"cannot write {shown}: file exists; pass --overwrite to replace it")
    return dest


def _stage(dest: Path, data: bytes | bytearray | memoryview) -> str:
    """The bytes in a hidden, fsync'ed temporary file beside *dest* (same file system, so the
    final link or rename is atomic), with the permissions *dest* will have. Removed on failure."""
    existing = check_output_entry(dest)  # a regular file or nothing: its mode never comes via a link
    mode = existing.st_mode & 0o7777 if existing is not None else 0o666 & ~current_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TEMP_SUFFIX, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(memoryview(data).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return tmp_name


#: errnos of file systems without hard links (FAT, some network shares): fall back to O_EXCL.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


def _publish(tmp_name: str, dest: Path, overwrite: bool) -> None:
    """Make the staged file visible as *dest*. With *overwrite* an atomic rename; without it a
    hard link, which fails if *dest* appeared since the checks, so a race loses with
    :class:`OutputExistsError` instead of replacing the other writer's file. The caller removes
    *tmp_name* afterwards."""
    if overwrite:
        check_output_entry(dest)  # again, just before: a link or FIFO put there meanwhile is refused
        os.replace(tmp_name, dest)  # rename replaces the entry itself, never a link's target
        return
    try:
        os.link(tmp_name, dest)
        return
    except FileExistsError:
        raise OutputExistsError(f"cannot write {os.fspath(dest)!r}: file exists (created meanwhile)") from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    try:  # no hard links here: claim the name exclusively, then rename over the claim
        os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise OutputExistsError(f"cannot write {os.fspath(dest)!r}: file exists (created meanwhile)") from None
    os.replace(tmp_name, dest)


def write_bytes_atomic(
    path: str | os.PathLike,
    data: bytes | bytearray | memoryview,
    *,
    source: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    overwrite_source: bool = False,
    overwrite: bool = True,
) -> Path:
    """Write *data* to *path* so that readers see the old file or the new one, never a part.

    The bytes go to a hidden temporary file in the same folder, are fsync'ed, then renamed
    over the target (``overwrite=True``) or hard-linked to it (``overwrite=False``: an existing
    target, even one created by another process a moment ago, raises
    :class:`OutputExistsError`, a ``FileExistsError``); the folder is fsync'ed. On any failure
    the temporary file is removed and an existing target is left untouched.

    *source* names the input file(s): writing onto one of them (symlinks and hard links
    resolved) raises :class:`UnsafeWriteError` unless ``overwrite_source=True``. A target that
    is a symbolic link, FIFO, device, socket or folder is refused whatever *overwrite* says
    (:func:`check_output_entry`). Returns the path written. Commands that write
    several files use :class:`OutputPlan`, which runs the same checks before any work.
    """
    if source is None or overwrite_source:
        sources: list[str | os.PathLike] = []
    else:
        sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    dest = _check_target(path, sources, overwrite)
    tmp_name = _stage(dest, data)
    try:
        _publish(tmp_name, dest, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    _fsync_dir(dest.parent if str(dest.parent) else Path("."))
    return dest


class OutputPlan:
    """Every file one command writes, checked together before any work, written together after.

    ``add`` runs the checks at once (not a folder, folder exists, not one of *sources* --
    symlinks and hard links resolved --, absent unless *overwrite*, distinct from the other
    outputs), so a doomed command fails before the model loads. ``commit`` stages every file,
    then publishes them all (atomic create without *overwrite*, atomic replace with it); if
    one fails, the files it had newly created are removed again, so a command leaves all its
    outputs or none of the new ones. Without *overwrite*, a file that appears between ``add``
    and ``commit`` makes ``commit`` fail with :class:`OutputExistsError`, never replaced.
    """

    def __init__(self, *, sources: Iterable[str | os.PathLike] = (), overwrite: bool = False):
        self.sources = [Path(s) for s in sources]
        self.overwrite = overwrite
        self._planned: dict[str, tuple[Path, str]] = {}  # real target -> (given path, label)

    def add(self, path: str | os.PathLike, label: str = "output") -> Path:
        """Check one output now; *label* names it in errors (e.g. ``--report``). Returns *path*."""
        dest = _check_target(path, self.sources, self.overwrite)
        key = os.path.realpath(dest)
        if key in self._planned:
            other, other_label = self._planned[key]
            raise UnsafeWriteError(
                f"{label} and {other_label} name the same file {os.fspath(other)!r}; give them different paths"
            )
        self._planned[key] = (Path(path), label)
        return Path(path)

    @property
    def paths(self) -> list[Path]:
        """The planned outputs, in the order added."""
        return [given for given, _ in self._planned.values()]

    def commit(self, files: Mapping[str | os.PathLike, bytes | bytearray | memoryview]) -> list[Path]:
        """Write *files* (each a planned path -> its bytes); all are staged before any appears."""
        planned = {os.path.realpath(given): key for key, (given, _) in self._planned.items()}
        jobs = []
        for path, data in files.items():
            key = planned.get(os.path.realpath(path))
            if key is None:
                raise ValueError(f"{os.fspath(path)!r} was not planned; OutputPlan.add it before any work")
            jobs.append((_check_target(path, self.sources, self.overwrite), data))
        staged: list[tuple[Path, str]] = []
        created: list[tuple[Path, int]] = []
        try:
            for dest, data in jobs:
                staged.append((dest, _stage(dest, data)))
            for dest, tmp_name in staged:
                inode = os.stat(tmp_name).st_ino
                _publish(tmp_name, dest, self.overwrite)
                created.append((dest, inode))
        except BaseException:
            if not self.overwrite:  # take back what this commit created (still ours: same inode)
                for dest, ino in created:
                    with contextlib.suppress(OSError):
                        if os.stat(dest).st_ino == ino:
                            os.unlink(dest)
            raise
        finally:
            for _, tmp_name in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
        for folder in {dest.parent if str(dest.parent) else Path(".") for dest, _ in jobs}:
            _fsync_dir(folder)
        return [Path(p) for p in files]


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); best effort elsewhere."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


__all__ = [
    "FILE_KINDS",
    "TEMP_SUFFIX",
    "OutputExistsError",
    "OutputPlan",
    "UnsafeWriteError",
    "check_output_entry",
    "entry_kind",
    "same_file",
    "write_bytes_atomic",
]
