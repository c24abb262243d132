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

Names come from other sites, so matching costs at most a few steps per pattern token
and name character, whatever the name: a backtracking regular expression would take
minutes on a 500-character name against ``*_*_*_*_%Y%m%d*.nc``. Where a name matches
in several ways, a ``*`` takes as much as it can (as a greedy regular expression does),
and a repeated field must say the same where that match puts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

#: Digits of each field.
_WIDTH = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "j": 3}
_TOKEN = re.compile(r"%(.)|[*?]|[^%*?]+", re.S)
#: What a product of a map may be called: a catalog key, reached as ``cat[site].NAME``.
PRODUCT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
#: Longest pattern, and most ``*`` in one (each bounds how deep a match may go).
MAX_PATTERN, MAX_STARS = 512, 32

#: One token of a compiled pattern: ``("text", s)``, ``("one", "")`` (``?``), ``("star", "")``
#: or ``("field", F)`` (its digits).
Token = tuple[str, str]


@dataclass(frozen=True)
class NamePattern:
    """A compiled name pattern (see the module's text); build with :func:`name_pattern`."""

    text: str
    tokens: tuple[Token, ...]
    #: The text every matching name starts with (the part before the first field or glob).
    head: str

    def fields(self, name: str) -> dict[str, int] | None:
        """What each field of this pattern says in ``name``; None if it does not match.

        A depth-first search in the order a greedy regular expression tries, remembering
        the states (token, position in the name) that failed, so each is tried once. A
        repeated field is read where that search puts it, and must then say the same."""
        tokens, failed = self.tokens, set()

        def match(i: int, at: int) -> list[tuple[str, str]] | None:
            if i == len(tokens):
                return [] if at == len(name) else None
            if (i, at) in failed:
                return None
            kind, arg = tokens[i]
            found = None
            if kind == "text":
                found = match(i + 1, at + len(arg)) if name.startswith(arg, at) else None
            elif kind in ("one", "star"):
                found = match(i + (kind == "one"), at + 1) if at < len(name) and name[at] != "/" else None
                if found is None and kind == "star":
                    found = match(i + 1, at)
            else:
                digits = name[at:at + _WIDTH[arg]]
                if len(digits) == _WIDTH[arg] and digits.isascii() and digits.isdigit():
                    found = match(i + 1, at + len(digits))
                    if found is not None:
                        found.append((arg, digits))
            if found is None:
                failed.add((i, at))
            return found

        said = match(0, 0)
        if said is None or len(dict(said)) < len(set(said)):
            return None  # a repeated field says something else
        return {k: int(v) for k, v in said}

    def time_of(self, name: str) -> datetime | None:
        """The time ``name`` says through this pattern; None if it does not match or
        its fields are no date (a 31 February)."""
        g = self.fields(name)
        if g is None:
            return None
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
    if len(text) > MAX_PATTERN or text.count("*") > MAX_STARS:
        raise ValueError(f"pattern {text[:40]!r}... is too long: at most {MAX_PATTERN} characters "
                         f"and {MAX_STARS} '*'")
    tokens: list[Token] = []
    seen: set[str] = set()
    head: str | None = None
    literal = ""
    for token in _TOKEN.finditer(text):
        field, piece = token.group(1), token.group(0)
        if (field is None and piece not in "*?") or field == "%":
            piece = "%" if field == "%" else piece
            literal += piece
            tokens.append(("text", piece))
            continue
        if head is None:
            head = literal
        if field is None:
            tokens.append(("star" if piece == "*" else "one", ""))
        elif field not in _WIDTH:
            raise ValueError(f"pattern {text!r}: unknown field %{field} (use %Y %m %d %j %H %M %S)")
        else:
            tokens.append(("field", field))
            seen.add(field)
    if "Y" not in seen or not ({"m", "d"} <= seen or "j" in seen) or ("j" in seen and seen & {"m", "d"}):
        raise ValueError(f"pattern {text!r} must name a day: %Y with %m and %d, or %Y with %j")
    return NamePattern(text, tuple(tokens), head if head is not None else literal)
