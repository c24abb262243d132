"""A site's product map: name patterns that say which entries form which product.

A pattern is a glob whose time is written with strftime fields, matched against whole
entry names::

    sondes/%Y%m%dT%H%M%S*.nc         sondes/20200201T104500_launch.nc
    radar/%Y/%m/%d/LIMRAD94.nc       radar/2020/02/01/LIMRAD94.nc
    lidar/%Y%j.nc                    lidar/2020032.nc (a day of the year)

Fields: ``%Y`` (four digits), ``%m``, ``%d``, ``%H``, ``%M``, ``%S`` (two digits),
``%j`` (three digits), ``%%`` (a ``%``). A pattern names a day (``%Y`` with ``%m`` and
``%d``, or with ``%j``); a field may repeat (``%Y/%Y%m%d``) and then must say the same.
Globs: ``*`` (any characters but ``/``), ``?`` (one character but ``/``). Everything
else stands for itself. The time of a matching name is what its fields say (UTC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

_FIELDS = {"Y": r"\d{4}", "m": r"\d\d", "d": r"\d\d", "H": r"\d\d", "M": r"\d\d", "S": r"\d\d", "j": r"\d{3}"}
_TOKEN = re.compile(r"%(.)|[*?]|[^%*?]+", re.S)
#: What a product of a map may be called: a catalog key, reached as ``cat[site].NAME``.
PRODUCT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")


@dataclass(frozen=True)
class NamePattern:
    """A compiled name pattern (see the module's text); build with :func:`name_pattern`."""

    text: str
    regex: re.Pattern[str]
    #: The text every matching name starts with (the part before the first field or glob).
    head: str

    def time_of(self, name: str) -> datetime | None:
        """The time ``name`` says through this pattern; None if it does not match or
        its fields are no date (a 31 February)."""
        match = self.regex.fullmatch(name)
        if match is None:
            return None
        g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        try:
            if "j" in g:
                day = datetime(g["Y"], 1, 1) + timedelta(days=g["j"] - 1)
                if day.year != g["Y"] or g["j"] < 1:
                    return None
            else:
                day = datetime(g["Y"], g["m"], g["d"])
            return day.replace(hour=g.get("H", 0), minute=g.get("M", 0), second=g.get("S", 0))
        except ValueError:
            return None


@lru_cache(maxsize=256)
def name_pattern(text: str) -> NamePattern:
    """``text`` compiled; :class:`ValueError` saying what is wrong (an unknown field, no
    day, a pattern that does not name entries)."""
    if not text or text.startswith("/") or "//" in text:
        raise ValueError(f"pattern {text!r} must be an entry name with fields, like 'sondes/%Y%m%dT%H%M%S*.nc'")
    parts: list[str] = []
    seen: set[str] = set()
    head: str | None = None
    literal = ""
    for token in _TOKEN.finditer(text):
        field, piece = token.group(1), token.group(0)
        if field == "%":
            literal += "%"
            parts.append("%")
            continue
        if field is None and piece not in "*?":
            literal += piece
            parts.append(re.escape(piece))
            continue
        if head is None:
            head = literal
        if field is None:
            parts.append("[^/]*" if piece == "*" else "[^/]")
        elif field not in _FIELDS:
            raise ValueError(f"pattern {text!r}: unknown field %{field} (use %Y %m %d %j %H %M %S)")
        else:
            parts.append(f"(?P={field})" if field in seen else f"(?P<{field}>{_FIELDS[field]})")
            seen.add(field)
    if "Y" not in seen or not ({"m", "d"} <= seen or "j" in seen) or ("j" in seen and seen & {"m", "d"}):
        raise ValueError(f"pattern {text!r} must name a day: %Y with %m and %d, or %Y with %j")
    return NamePattern(text, re.compile("".join(parts), re.S), head if head is not None else literal)
