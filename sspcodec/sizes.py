"""Byte sizes as users write them ("150KB", "1.5MiB") and values shortened for messages."""

from __future__ import annotations

import math
import re

# --------------------------------------------------------------------------
# sizes
# --------------------------------------------------------------------------
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$")


def shorten(value: object) -> str:
    """A value for an error line: its repr, cut in the middle when long (a 400-digit number)."""
    r = repr(value)
    return r if len(r) <= 40 else f"{r[:18]}...{r[-12:]} ({len(r)} characters)"


def parse_size(text: str | int) -> int:
    """Parse a byte size such as ``"150KB"``, ``"1.5 MiB"`` or ``"2048"``.

    Decimal units are powers of 1000 (KB, MB, GB), binary ones powers of 1024
    (KiB, MiB, GiB); case is ignored and a bare number means bytes. Ambiguous
    shorthands like ``"K"`` or ``"M"`` are refused rather than guessed.
    Fractions are rounded to whole bytes; the result must be positive.
    """
    if isinstance(text, bool):
        raise TypeError("size must be a string or an integer, not bool")
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE_RE.match(str(text))
        unit = m.group(2).lower() if m else None
        if not m or unit not in _UNITS:
            valid = "B, KB, KiB, MB, MiB, GB, GiB"
            raise ValueError(f"cannot parse size {shorten(text)}: expected a number with an optional unit ({valid})")
        number = float(m.group(1))  # 400 digits give inf, which round() cannot take
        if not math.isfinite(number * _UNITS[unit]):
            raise ValueError(f"size {shorten(text)} is far too large")
        value = round(number * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"size must be positive, got {shorten(text)}")
    return value


__all__ = ["parse_size", "shorten"]
