"""One site's entries sorted by name: folders, series products, pages and search.

A :class:`SiteIndex` belongs to one seq of a site log and never changes; the next one
is made from the new commits alone (:meth:`SiteIndex.advance`), so a catalog or a
page of entries costs a binary search and the entries shown, at any number of
entries. :class:`Listings` keeps the newest index of every site of a store.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .entries import Entry
from .errors import NotFound
from .folders import Folder, IndexNames, find_product, make_folder, mapped_folder, non_empty
from .log import Commit
from .logstate import LogState, SiteState
from .products import name_pattern
from .series import Product, members, stamp_of

if TYPE_CHECKING:
    from .settings import ProductRule
    from .sitestore import SiteStore

#: Items sorted in one call at most (see gently_sorted).
_SLICE = 4096
#: Sorts after every character a name may hold.
_END = "\x7f"


def gently_sorted(items: list[Any]) -> list[Any]:
    """``sorted(items)``, in slices merged by Python code: no single call holds the
    interpreter long, so a server's event loop keeps answering while an index of
    100,000 entries is sorted in a worker thread."""
    if len(items) <= _SLICE:
        return sorted(items)
    return list(heapq.merge(*(sorted(items[i:i + _SLICE]) for i in range(0, len(items), _SLICE))))


def entry_time(entry: Entry, rules: Mapping[str, ProductRule] | None = None) -> str:
    """The time an entry is about: what its name says through the first pattern of the
    product map ``rules`` that matches it, else the timestamp in its name, else when it
    was published (ISO 8601, comparable as text)."""
    for rule in (rules or {}).values():
        when = name_pattern(rule.pattern).time_of(entry.name)
        if when is not None:
            return when.isoformat()
    stamp = stamp_of(entry.name)
    return stamp.time.isoformat() if stamp else entry.published.removesuffix("Z")


@dataclass(frozen=True)
class Page:
    """Entries matching a search, in name order from a cursor; ``next`` is the cursor of
    the following page (None on the last), ``matched`` how many match in all."""

    entries: list[Entry]
    next: str | None
    matched: int


class SiteIndex:
    """The entries of ``site`` at log ``seq``, by name; ``products`` is the site's
    product map (none: products by the timestamps in names, see :mod:`eurec4a_nt.series`)."""

    def __init__(self, site: str, seq: int = 0, head: str | None = None,
                 entries: dict[str, Entry] | None = None, names: list[str] | None = None,
                 recent: list[tuple[str, str]] | None = None,
                 products: Mapping[str, ProductRule] | None = None,
                 folders: Mapping[str, Folder] | None = None) -> None:
        self.site, self.seq, self.head = site, seq, head
        self.products = dict(products or {})
        self.entries = entries if entries is not None else {}
        self.names = names if names is not None else gently_sorted(list(self.entries))
        #: ``(published, name)`` of every entry, oldest first.
        self.recent = recent if recent is not None else gently_sorted(
            [(e.published, n) for n, e in self.entries.items()])
        self._folders: dict[str, Folder] = dict(folders or {})
        self._topics: list[str] | None = None

    def advance(self, commits: Iterable[Commit]) -> SiteIndex:
        """The index after ``commits`` (the next ones of this site's log, in order); the
        folders made of this one that the commits change nothing in are kept."""
        entries, names, recent = dict(self.entries), list(self.names), list(self.recent)
        seq, head = self.seq, self.head
        changed: set[str] = set()
        for commit in commits:
            for change in commit.changes:
                changed.update(_folders_of(change.name))
                old = entries.pop(change.name, None)
                if old is not None:
                    del names[bisect.bisect_left(names, change.name)]
                    del recent[bisect.bisect_left(recent, (old.published, change.name))]
                if change.op == "put" and change.entry is not None:
                    entries[change.name] = change.entry.with_site(self.site)
                    bisect.insort(names, change.name)
                    bisect.insort(recent, (change.entry.published, change.name))
            seq, head = commit.seq, commit.id
        kept = {prefix: found for prefix, found in self._folders.items() if prefix not in changed}
        return SiteIndex(self.site, seq, head, entries, names, recent, self.products, kept)

    def names_under(self, prefix: str, after: str = "") -> Iterator[str]:
        """The names that start with ``prefix`` (after the name ``after``), in order."""
        return self._range(prefix, after)

    def _range(self, prefix: str, after: str = "") -> Iterator[str]:
        lo = bisect.bisect_left(self.names, prefix)
        if after > prefix:
            lo = bisect.bisect_right(self.names, after)
        hi = bisect.bisect_left(self.names, prefix + _END) if prefix else len(self.names)
        return iter(self.names[lo:hi])

    def under(self, prefix: str) -> Iterator[Entry]:
        """The entries whose names start with ``prefix``, in name order."""
        return (self.entries[name] for name in self._range(prefix))

    def count(self, prefix: str = "") -> int:
        hi = bisect.bisect_left(self.names, prefix + _END) if prefix else len(self.names)
        return hi - bisect.bisect_left(self.names, prefix)

    def entry(self, name: str) -> Entry:
        """The entry ``name``; :class:`NotFound` if absent."""
        try:
            return self.entries[name]
        except KeyError:
            raise NotFound(f"{self.site} has no entry {name!r}") from None

    def children(self, prefix: str = "") -> tuple[list[str], list[str]]:
        """The last parts of the names directly in the folder ``prefix``, and its
        sub-folders: a binary search past each sub-folder, so the cost is that of what
        is directly in the folder, not of every name below it."""
        files: list[str] = []
        dirs: list[str] = []
        i = bisect.bisect_left(self.names, prefix)
        end = bisect.bisect_left(self.names, prefix + _END) if prefix else len(self.names)
        while i < end:
            sub, slash, _ = self.names[i][len(prefix):].partition("/")
            if slash:
                dirs.append(sub)
                i = bisect.bisect_left(self.names, f"{prefix}{sub}/{_END}", i, end)
            else:
                files.append(sub)
                i += 1
        return files, dirs

    def _folder(self, prefix: str) -> Folder:
        """The folder ``prefix``, made once (and kept by :meth:`advance` while no commit
        changes a name in it)."""
        found = self._folders.get(prefix)
        if found is None:
            found = mapped_folder(self, prefix) if self.products else make_folder(IndexNames(self), prefix)
            self._folders[prefix] = found
        return found

    def folder(self, prefix: str = "") -> Folder:
        """The folder ``prefix`` (``""`` or ending in ``/``); :class:`NotFound` if empty
        and not the top."""
        return non_empty(self._folder(prefix))

    def members(self, product: Product, start: datetime, end: datetime) -> list[Entry]:
        """The entries of ``product`` whose name time is in ``[start, end)``, oldest first."""
        return members(product, (self.entries[n] for n in self._range(product.head)), start, end)

    def days(self, product: Product) -> dict[str, list[Entry]]:
        """The entries of ``product`` by day (``YYYY-MM-DD``), days and entries in time order."""
        out: dict[str, list[Entry]] = {}
        for entry in self.members(product, datetime.min, datetime.max):
            out.setdefault(entry_time(entry, self.products)[:10], []).append(entry)
        return out

    def product(self, path: str) -> Product:
        """The product ``FOLDER/KEY`` (or ``KEY`` in the top folder); NotFound if none."""
        return find_product(self.site, path, self._folder)

    def _newest(self, prefix: str, after: str = "") -> Iterator[str]:
        """Names under ``prefix``, newest first, from the one after the name ``after``."""
        end = len(self.recent)
        if after in self.entries:
            end = bisect.bisect_left(self.recent, (self.entries[after].published, after))
        for i in range(end - 1, -1, -1):
            name = self.recent[i][1]
            if name.startswith(prefix):
                yield name

    def search(self, prefix: str = "", topic: str = "", q: str = "", since: str = "",
               until: str = "", after: str = "", limit: int = 100, newest: bool = False) -> Page:
        """Entries under ``prefix`` with ``topic``, containing ``q`` (in name, description
        or format, any case), of a time (:func:`entry_time`) in ``[since, until]``, at most
        ``limit``, in name order (newest first with ``newest``) from the one after the
        entry named ``after``."""
        q = q.strip().lower()
        filtered = bool(topic or q or since or until)
        names = self._newest(prefix, after) if newest else self._range(prefix, after)
        if filtered:
            names = (n for n in names if self._matches(self.entries[n], topic, q, since, until))
        taken = list(itertools.islice(names, limit + 1))
        page = [self.entries[n] for n in taken[:limit]]
        nxt = taken[limit - 1] if len(taken) > limit else None
        if not filtered:
            return Page(page, nxt, self.count(prefix))
        everything = self._range(prefix)
        return Page(page, nxt, sum(1 for n in everything if self._matches(self.entries[n], topic, q, since, until)))

    def topics(self) -> list[str]:
        """Every topic of the site's entries."""
        if self._topics is None:
            self._topics = sorted({t for e in self.entries.values() for t in e.topics})
        return self._topics


    def _matches(self, entry: Entry, topic: str, q: str, since: str, until: str) -> bool:
        if topic and topic not in entry.topics:
            return False
        if q and q not in f"{entry.name} {entry.description} {entry.format}".lower():
            return False
        if since or until:
            when = entry_time(entry, self.products)
            if (since and when < since) or (until and when[:len(until)] > until):
                return False
        return True


def _folders_of(name: str) -> Iterator[str]:
    """The folders ``name`` is in: ``""``, ``a/``, ``a/b/`` for ``a/b/c``."""
    yield ""
    end = name.find("/")
    while end >= 0:
        yield name[:end + 1]
        end = name.find("/", end + 1)


def _quietly(build: Callable[[], SiteIndex], freeze: bool) -> SiteIndex:
    """``build()`` without the garbage collector's passes; with ``freeze``, its objects
    then left out of later full passes: each pass walks every object (30 ms at 30,000
    entries), time in which a server's event loop waits. Frozen objects in reference
    cycles are never freed, so only a process that keeps its store for life freezes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        index = build()
    finally:
        if enabled:
            gc.enable()
    if freeze:
        gc.freeze()
    return index


class Listings:
    """The newest :class:`SiteIndex` of every site of a store, advanced from the new
    commits of its log when asked (blocking: call it in a thread on a server)."""

    def __init__(self, store: SiteStore) -> None:
        self.store = store
        self._by_site: dict[str, SiteIndex] = {}
        self._lock = threading.Lock()
        self._freeze = False

    def get(self, site: str) -> SiteIndex:
        """The index of ``site`` now; :class:`NotFound` for a site this store does not know."""
        if site not in self.store.sites():
            raise NotFound(f"unknown site {site!r}; known: {', '.join(self.store.sites()) or 'none'}")
        log = self.store.log(site)
        with self._lock:
            index = self._by_site.get(site)
            if index is None or log.seq < index.seq:  # first, or the log was replaced: from the state
                index = _quietly(lambda: self._from_state(site), self._freeze)
            if log.seq != index.seq:  # commits since (a commit already in the state changes nothing)
                index = index.advance(log.commits_after(index.seq))
            self._by_site[site] = index
            return index

    def _from_state(self, site: str) -> SiteIndex:
        self.store.state(site)  # the state brought up to date with the durable log
        # read through a connection of its own: the store's queries (a catalog's, as a
        # server starts) do not wait behind these pages of 10,000 entries for its lock
        reader = LogState(self.store.db.path)
        try:
            state = SiteState(reader, site, reader.head(site))
            entries = {e.name: e for e in state.entries.values()}  # in name order, with their site
        finally:
            reader.close()
        return SiteIndex(site, state.seq, state.head, entries, list(entries), products=self.store.product_map(site))

    def warm(self) -> None:
        """Bring the index of every site up to date now (a server does this as it
        starts, and keeps its store for life: the indexes are frozen from then on, see
        :func:`_quietly`)."""
        self._freeze = True
        for site in self.store.sites():
            self.get(site)
