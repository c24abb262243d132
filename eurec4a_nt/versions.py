"""Every version of every entry, and a site's state at any past point of its log.

A site log never forgets: each ``put`` of a name is a version, each ``remove`` ends
one. A point in a log is a position (a seq: the state after that commit) or a time
(the state after the last commit made at or before it); :func:`index_at` replays the
log up to it (read in pages, never all of it at once), so a catalog pinned to a point
lists the same entries, with the same bytes, however often they were republished since.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import takewhile
from typing import TYPE_CHECKING, Any

from .entries import Entry
from .errors import BadInput, NotFound
from .listing import SiteIndex
from .log import Commit, SiteLog
from .times import parse_time

if TYPE_CHECKING:
    from .settings import ProductRule

#: A point in a site log: a seq, or a time (timezone-aware).
At = int | datetime

_SEQ = re.compile(r"[0-9]{1,12}")


def parse_at(value: object) -> At:
    """A point in a log from a seq (int or digits) or an ISO 8601 time (string or
    datetime); raise :class:`BadInput` for anything else."""
    if isinstance(value, bool):
        raise BadInput(f"bad point in a log {value!r}: give a seq or an ISO 8601 time")
    if isinstance(value, int):
        if value < 0:
            raise BadInput(f"bad log position {value}: a seq is 0 or more")
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        if value.isascii() and value.isdigit() and not _SEQ.fullmatch(value):
            raise BadInput(f"bad log position {value[:20]!r}: a seq has at most 12 digits")
        return int(value) if _SEQ.fullmatch(value) else parse_time(value)
    raise BadInput(f"bad point in a log {value!r}: give a seq or an ISO 8601 time")


def at_text(at: At) -> str:
    """``at`` as written in URLs and catalogs."""
    return str(at) if isinstance(at, int) else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=100_000)
def _commit_time(text: str) -> datetime:
    return parse_time(text)


def position(log: SiteLog, at: At) -> int:
    """The seq of the last commit at or before ``at`` (0 before the first one); a time
    costs a binary search of a few single-commit reads (commit times never decrease
    along a log: each is stamped by its site when appended after the previous one)."""
    if isinstance(at, int):
        return min(at, log.seq)
    lo, hi = 0, log.seq
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _commit_time(time_at(log, mid)) <= at:
            lo = mid
        else:
            hi = mid - 1
    return lo


def index_at(log: SiteLog, at: At, products: Mapping[str, ProductRule] | None = None) -> SiteIndex:
    """The site's entries at ``at`` (with its product map ``products``), replayed from
    the start of its log; raise :class:`NotFound` where the log held here starts later
    (at a checkpoint)."""
    seq = position(log, at)
    if not seq:
        return SiteIndex(log.site, products=products)
    first = log.commits_after(0, limit=1)[0].seq
    if first != 1:
        raise NotFound(f"the log of {log.site} held here starts at #{first}: earlier points cannot be shown")
    return SiteIndex(log.site, products=products).advance(takewhile(lambda c: c.seq <= seq, log))


def time_at(log: SiteLog, seq: int) -> str:
    """The time of commit ``seq`` ("" for 0)."""
    return log.commits_after(seq - 1, limit=1)[0].time if seq else ""


@dataclass(frozen=True)
class Version:
    """One version of an entry: put (``entry`` set) or removed (``entry`` None) by the
    commit ``seq``; ``replaces`` and ``replaced_by`` are the seqs of the changes of the
    same name before and after it (None if there is none)."""

    site: str
    name: str
    seq: int
    time: str
    entry: Entry | None
    replaces: int | None = None
    replaced_by: int | None = None

    @property
    def op(self) -> str:
        return "put" if self.entry is not None else "remove"

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "name": self.name, "seq": self.seq, "time": self.time, "op": self.op,
                "entry": self.entry.to_json() if self.entry else None,
                "replaces": self.replaces, "replaced_by": self.replaced_by}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Version:
        site = str(body["site"])
        entry = Entry.from_json(body["entry"], site) if body.get("entry") else None
        return cls(site, str(body["name"]), int(body["seq"]), str(body["time"]), entry,
                   body.get("replaces"), body.get("replaced_by"))


def history(commits: Iterable[Commit], site: str, name: str) -> list[Version]:
    """Every version of ``name`` in a site's commits, oldest first; raise
    :class:`NotFound` if the name was never published."""
    changes = [(c, ch) for c in commits for ch in c.changes if ch.name == name]
    if not changes:
        raise NotFound(f"{site} never published {name!r}")
    out = []
    for i, (commit, change) in enumerate(changes):
        out.append(Version(site, name, commit.seq, commit.time,
                           change.entry.with_site(site) if change.entry else None,
                           changes[i - 1][0].seq if i else None,
                           changes[i + 1][0].seq if i + 1 < len(changes) else None))
    return out


class Pinned:
    """A site store or site-server client seen at one point of every site's log: what
    :func:`~eurec4a_nt.api.open_catalog` reads a pinned catalog from."""

    def __init__(self, backend: Any, at: At) -> None:
        self.backend, self.at = backend, at

    def __repr__(self) -> str:
        return f"Pinned({self.backend!r}, at={at_text(self.at)})"

    def summary(self) -> dict[str, dict[str, Any]]:
        return self.backend.summary(at=self.at)

    def folder(self, site: str, prefix: str = "") -> Any:
        return self.backend.folder(site, prefix, at=self.at)

    def entry(self, site: str, name: str) -> Entry:
        return self.backend.entry(site, name, at=self.at)

    def series_entries(self, product: Any, start: datetime, end: datetime) -> list[Entry]:
        return self.backend.series_entries(product, start, end, at=self.at)
