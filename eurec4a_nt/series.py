"""Series: entries whose names differ only by a timestamp form one product.

``sondes/2020-02-01T1045.nc`` and ``sondes/2020-02-01T2245.nc`` are two entries of the
product ``sondes``; ``radar/LIMRAD94_20200201.nc`` and ``radar/LIMRAD94_20200202.nc``
of the product ``LIMRAD94`` in the folder ``radar/``. The naming rule: the first
timestamp in the last part of a name (``YYYY-MM-DD`` or ``YYYYMMDD``, optionally
followed by a time of day) is the entry's time; the rest of the name, with the
timestamp replaced by ``{time}``, is the product's template. A folder that holds one
template and nothing else is the product itself, named after the folder. A template
becomes a product at its second entry: one name with a date in it is a file like any
other (``report_20200201.pdf``) until a second one shows it is a series.

A site's product map (``products:`` in its store's ``config.yaml``, see
:mod:`eurec4a_nt.products`) replaces this rule for that site: each pattern of the map
is a product of the site's top folder from its first entry on, and names no pattern
matches are plain entries.

A product opens as one dataset for a ``date`` (a day) or a ``start``/``end`` range:
its entries are opened lazily and concatenated along ``series_dim`` (a metadata key
of the entries; a new dimension ``entry`` when not given).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from .errors import BadInput
from .products import name_pattern
from .times import is_date, naive_utc

if TYPE_CHECKING:
    from .entries import Entry

_STAMP = re.compile(
    r"(?<!\d)(?P<date>(?P<y>(?:19|20)\d\d)(?P<s>-?)(?P<m>[01]\d)(?P=s)(?P<d>[0-3]\d))"
    r"(?:[T_ -]?(?P<H>[0-2]\d):?(?P<M>[0-5]\d)(?::?(?P<S>[0-5]\d))?)?(?!\d)")
#: The dimension a series is concatenated along when its entries do not name one.
DEFAULT_DIM = "entry"
_ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)


class Stamp(NamedTuple):
    """Where the timestamp of a name's last part is, and what time it says."""

    start: int
    end: int
    time: datetime
    compact: bool


def stamp_of(name: str) -> Stamp | None:
    """The timestamp in the last ``/``-part of ``name`` (offsets in ``name``), or None."""
    base = name.rfind("/") + 1
    for match in _STAMP.finditer(name, base):
        g = match.groupdict()
        try:
            when = datetime(int(g["y"]), int(g["m"]), int(g["d"]), int(g["H"] or 0),
                            int(g["M"] or 0), int(g["S"] or 0))
        except ValueError:
            continue
        return Stamp(match.start(), match.end(), when, not g["s"])
    return None


@lru_cache(maxsize=1 << 18)
def template_of(name: str) -> str | None:
    """``name`` with its timestamp replaced by ``{time}``; None without one (kept for the
    next ask: a site's index asks for every name each time a folder is listed)."""
    stamp = stamp_of(name)
    return None if stamp is None else template_at(name, stamp)


def template_at(name: str, stamp: Stamp) -> str:
    """``name`` with its timestamp ``stamp`` (see :func:`stamp_of`) replaced by ``{time}``."""
    return name[:stamp.start] + "{time}" + name[stamp.end:]


def product_key(template: str) -> str:
    """What a product is called in its folder: the last part of the template without
    the timestamp and the suffix (``LIMRAD94_{time}.nc`` -> ``LIMRAD94``); empty
    when nothing is left (then the folder names it)."""
    last = template.rsplit("/", 1)[-1]
    head, _, tail = last.partition("{time}")
    tail = tail.split(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{head}_{tail}").strip("_")


@dataclass(frozen=True)
class Product:
    """Entries of one site that share a template, or that match a ``pattern`` of its
    product map: a series opened by date."""

    site: str
    key: str
    template: str
    format: str
    count: int
    first: str
    last: str
    compact: bool
    series_dim: str = DEFAULT_DIM
    pattern: str = ""
    description: str = ""

    @property
    def head(self) -> str:
        """The text the names of every entry of the product start with."""
        return name_pattern(self.pattern).head if self.pattern else self.template.partition("{time}")[0]

    def time_of(self, name: str) -> datetime | None:
        """The time of the entry ``name`` if it is one of this product's, else None."""
        if self.pattern:
            return name_pattern(self.pattern).time_of(name)
        stamp = stamp_of(name)
        return stamp.time if stamp and template_of(name) == self.template else None

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "template": self.template, "format": self.format,
                "count": self.count, "first": self.first, "last": self.last,
                "compact": self.compact, "series_dim": self.series_dim,
                "pattern": self.pattern, "description": self.description}

    @classmethod
    def from_json(cls, body: dict[str, object], site: str) -> Product:
        return cls(site=site, key=str(body["key"]), template=str(body["template"]),
                   format=str(body["format"]), count=int(body["count"]),  # type: ignore[call-overload]
                   first=str(body["first"]), last=str(body["last"]),
                   compact=bool(body["compact"]), series_dim=str(body["series_dim"]),
                   pattern=str(body.get("pattern") or ""), description=str(body.get("description") or ""))


def members(product: Product, entries: Iterable[Entry], start: datetime, end: datetime) -> list[Entry]:
    """The entries of ``product`` among ``entries`` with a name time in ``[start, end)``,
    oldest first."""
    found = []
    for entry in entries:
        when = product.time_of(entry.name)
        if when is not None and start <= when < end:
            found.append((when, entry))
    return [e for _, e in sorted(found, key=lambda t: t[0])]


def time_range(date: str | None = None, start: str | None = None,
               end: str | None = None) -> tuple[datetime, datetime]:
    """``[start, end)`` for a ``date`` (that whole day) or a ``start``/``end`` range
    (``end`` included when it is a time, its whole day when it is a date)."""
    if date:
        if start or end:
            raise BadInput("give date= or start=/end=, not both")
        day = naive_utc(date, "date").replace(hour=0, minute=0, second=0, microsecond=0)
        return day, _later(day, _ONE_DAY)
    if not (start or end):
        raise BadInput("give date= (a day, e.g. 2020-02-01) or start=/end= to select from a series")
    lo = naive_utc(start, "start") if start else datetime.min
    if not end:
        return lo, datetime.max
    return lo, _later(naive_utc(end, "end"), _ONE_DAY if is_date(end) else _TICK)


def _later(when: datetime, step: timedelta) -> datetime:
    """``when + step``, or the last time there is."""
    return when + step if when <= datetime.max - step else datetime.max
