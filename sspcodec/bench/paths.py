"""Where the benchmarks' data lives: the shared folder beside the repository (read only).

The folder is found when asked, never at import, so that the package imports (and the tests
that need no data run) on a machine without it; every script can point elsewhere with its own
command-line flag (``--data``, ``--kodak``...).
"""

from __future__ import annotations

from pathlib import Path

#: The eye-tracking sets the held-out images come from, in the order the benchmarks spread over.
EYE_TRACKING_SETS = ("osie", "eyecrowd")


def shared_dir() -> Path:
    """The default shared folder: ``shared/`` next to the repository checkout (it may not exist)."""
    return Path(__file__).resolve().parents[2].parent / "shared"


def dataset_dirs(shared: Path | None = None) -> list[Path]:
    """The OSIE and EyeCrowd folders under *shared* (default: :func:`shared_dir`)."""
    root = shared_dir() if shared is None else shared
    return [root / "datasets" / name for name in EYE_TRACKING_SETS]


def kodak_dir(shared: Path | None = None) -> Path:
    """The Kodak PNG folder under *shared* (default: :func:`shared_dir`)."""
    return (shared_dir() if shared is None else shared) / "images" / "kodak"


__all__ = ["EYE_TRACKING_SETS", "dataset_dirs", "kodak_dir", "shared_dir"]
