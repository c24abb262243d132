"""Byte counts as people write them: ``250KB``, ``1.5 MiB``, ``2 GB`` (decimal KB = 1000 B)."""

from __future__ import annotations

import re

from .errors import BadInput

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*(?:/s)?\s*")


def parse_size(value: object) -> int:
    """``250KB``, ``1.5 MiB``, ``1000`` -> bytes (decimal units: KB = 1000 B); :class:`BadInput`
    for anything else (``true``, a negative number, an unknown unit)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    match = _SIZE.fullmatch(str(value)) if isinstance(value, str) else None
    if not match or match.group(2).lower() not in _UNITS:
        raise BadInput(f"bad size {value!r}: use a number with B, KB, MB, GB, KiB, MiB or GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def human_size(size: float) -> str:
    """``1234567`` -> ``1.2 MB``: decimal units, as :func:`parse_size` reads them back."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
