"""A running site: its store and index, and the events its links and pages follow.

The HTTP server and the links both work through a :class:`Node`; neither knows the
other. Blocking work (hashing, disk) runs in threads so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import hashtree
from .blockindex import block_index
from .checkpoint import start_at
from .chunking import FileRecord
from .entries import Entry
from .errors import Corrupt, ObjectMissing, Pending
from .eviction import evict
from .ids import Item, ObjectId
from .index import Index, Rule
from .log import Change, Commit
from .logstate import CheckpointRef
from .manifests import Span, children
from .parts import Part, Parts
from .sitestore import SiteStore
from .stores import offloop
from .tree import walk

log = logging.getLogger(__name__)

#: Rejected commits of one batch logged one by one; the rest are counted in one line.
LOGGED_REJECTS = 5


@dataclass(frozen=True)
class Reader:
    """Who asks for objects: names the wants recorded for it; a ``trusted`` reader (a
    token holder, a peer site) earns wants for any id."""

    name: str
    trusted: bool = False


class Fetcher(Protocol):
    """Gets objects this site lacks from other sites (the links)."""

    async def fetch(self, oids: list[ObjectId], site: str | None, hops: int,
                    spans: dict[ObjectId, Span] | None = None, priority: Any = None, *,
                    leaves: bool = False) -> None:
        """Return once every object is stored here (for a record in ``spans``, the
        holder also sends the blocks of that byte span along, and with ``leaves`` the
        leaves of those a reader here reads in parts), asked at ``priority`` (a link's
        priority class; None: a reader's, the most urgent).

        Raises :class:`~eurec4a_nt.errors.Pending` when the site holding them cannot
        be reached now (the want is recorded), or ObjectMissing when nobody has them.
        """
        ...

    async def fetch_part(self, oid: ObjectId, site: str | None, size: int, tree: str, first: int,
                         last: int, record: ObjectId | None = None) -> Part | None:
        """Bring the leaves ``[first, last)`` of block ``oid`` (of ``size`` bytes, tree
        root ``tree``) of ``site`` here into :attr:`Node.parts`, verified, and return
        them with their proof; None (nothing asked) when no link to ``site`` carries parts
        of blocks (given the file ``record`` naming the block, a hub between may relay
        them). Raises as :meth:`fetch`."""
        ...


@dataclass
class Traffic:
    """Bytes moved since the server started."""

    served: int = 0
    uploaded: int = 0
    fetched: int = 0
    started: float = field(default_factory=time.time)


class Node:
    """One site's running state."""

    def __init__(self, store: SiteStore, index: Index, *, cache_cap: int | None = None,
                 pinned_topics: Iterable[str] = ()) -> None:
        self.store = store
        self.index = index
        self.cache_cap = cache_cap
        self.pinned_topics = set(pinned_topics)
        self.fetcher: Fetcher | None = None
        #: Verified parts of blocks not held whole here, fetched for readers.
        self.parts = Parts()
        self.traffic = Traffic()
        self.version = 0
        self._changed: asyncio.Condition | None = None
        self._listeners: dict[str, list[Callable[[Any], object]]] = {}
        self._evicting = False
        self._damaged: set[ObjectId] = set()

    @property
    def site(self) -> str:
        return self.store.site or ""

    # -- events ------------------------------------------------------------------------

    def listen(self, event: str, listener: Callable[[Any], object]) -> None:
        """Call ``listener`` on ``commits`` (new commits), ``objects`` (ids newly stored)
        or ``rules`` (prefetch rules changed)."""
        self._listeners.setdefault(event, []).append(listener)

    async def _emit(self, event: str, payload: Any) -> None:
        for listener in self._listeners.get(event, []):
            listener(payload)
        await self._notify()

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _notify(self) -> None:
        self.version += 1
        async with self._condition():
            self._condition().notify_all()

    async def wait_change(self, version: int, timeout: float) -> int:
        """Wait until something changed after ``version`` (or timeout); return the version."""
        if self.version == version:
            async with self._condition():
                try:
                    await asyncio.wait_for(self._condition().wait_for(lambda: self.version != version),
                                           timeout)
                except TimeoutError:
                    pass
        return self.version

    # -- objects -----------------------------------------------------------------------

    async def put_objects(self, items: Sequence[Item]) -> list[ObjectId]:
        """Verify and store objects; return those new here."""
        try:
            new = await offloop.call(self.store.objects.put_many, items)
        except Corrupt:  # objects before the bad one were kept: index them
            self.index.added((oid, len(d)) for oid, d in items if self.store.objects.has(oid))
            raise
        if new:
            sizes = {oid: len(data) for oid, data in items}
            self.index.added((oid, sizes[oid]) for oid in new)
            self.index.satisfied(new)
            fresh = set(new)
            named = [child for oid, data in items if oid in fresh for child, _ in children(data)]
            if named:
                await asyncio.to_thread(self.index.name, named)
            await self._emit("objects", new)
            await self.evict_if_needed()
        return new

    async def ensure(self, oids: Iterable[ObjectId], site: str | None = None, hops: int = 2,
                     spans: dict[ObjectId, Span] | None = None, reader: Reader | None = None,
                     priority: Any = None) -> None:
        """Make sure the objects are here, fetching missing ones over links (once, however
        many readers ask). Raises Pending or ObjectMissing as :class:`Fetcher` does; on
        Pending, what ``reader`` earned is recorded as wants (see :meth:`want`). The
        ``spans`` of a ``reader`` here are read at once: their leaves come along."""
        missing = await offloop.call(self.store.objects.missing, oids)
        if not missing:
            return
        if self.fetcher is None or hops <= 0:
            raise ObjectMissing(f"{len(missing)} object(s) of {site or 'this site'} are not held "
                                f"here (first: {missing[0]}) and no link can supply them")
        try:
            await self.fetcher.fetch(missing, site, hops, spans, priority, leaves=reader is not None)
        except Pending:
            if reader is not None and site:
                await asyncio.to_thread(self.want, missing, site, reader, spans)
            raise

    async def part(self, oid: ObjectId, start: int, end: int, size: int, tree: str, site: str | None,
                   reader: Reader | None = None, record: ObjectId | None = None) -> bytes | None:
        """Bytes ``[start, end)`` of block ``oid`` (``size`` bytes, tree root ``tree``, named
        by file ``record``), not held here, from its verified parts: those held, and the
        leaves lacking fetched over the link to ``site``. None when no link brings parts
        of blocks (then fetch the block whole). Raises as :meth:`ensure` does."""
        first, last = hashtree.span(size, start, end)
        lacking = self.parts.lacking(oid, tree, first, last)
        if lacking is not None and await self._fetch_part(oid, site, size, tree, *lacking, record, reader) is None:
            return None
        return self.parts.get(oid, tree, start, end)

    async def proven(self, oid: ObjectId, start: int, end: int, record: ObjectId, site: str | None,
                     reader: Reader | None = None) -> Part | None:
        """The leaves holding bytes ``[start, end)`` of block ``oid``, not held here, with
        their proof, fetched from ``site`` and verified against the block's tree root in
        file ``record`` (fetched first if not held here): what a hub relays to a reader
        elsewhere. Those relayed before (with their proof, see :class:`~.parts.Parts`)
        cross no link again. None when no link to ``site`` brings parts of blocks (then
        fetch the block whole); ObjectMissing if the record names no such block with a
        tree root or the range runs beyond it."""
        await self.ensure([record], site, reader=reader)
        index = await asyncio.to_thread(
            block_index, record, lambda: FileRecord.from_bytes(self.store.objects.get(record)))
        found = index.tree_of(oid)
        if found is None or end > found[0]:
            raise ObjectMissing(f"file record {record.short} names no block {oid.short} of a tree root "
                                f"holding bytes {start}-{end}")
        size, tree = found
        first, last = hashtree.span(size, start, end)
        return self.parts.proven(oid, tree, first, last) or await self._fetch_part(
            oid, site, size, tree, first, last, None, reader)

    async def _fetch_part(self, oid: ObjectId, site: str | None, size: int, tree: str, first: int, last: int,
                          record: ObjectId | None, reader: Reader | None) -> Part | None:
        """:meth:`Fetcher.fetch_part`; on Pending, what ``reader`` earned is recorded as wants."""
        if self.fetcher is None:
            return None
        try:
            return await self.fetcher.fetch_part(oid, site, size, tree, first, last, record)
        except Pending:
            if reader is not None and site:
                await asyncio.to_thread(self.want, [oid], site, reader, None)
            raise

    def want(self, oids: list[ObjectId], site: str, reader: Reader, spans: dict[ObjectId, Span] | None) -> int:
        """Record wants of ``reader`` for objects of ``site`` it earned, sent to the site
        on its next contact; return how many were recorded.

        A reader with a token (or a peer site) earns any id; anyone else only ids that
        a known entry names (a root, or what a record or manifest held here lists), so
        a flood of made-up ids records nothing. Wants are capped per site and per
        reader and expire (see :meth:`Index.want`); what is not recorded is one log line.
        """
        earned = list(oids) if reader.trusted else self.named(oids)
        recorded = self.index.want(earned, site, reader.name, dict(spans or {})) if earned else 0
        if recorded < len(oids):
            log.info("wants of %s for %s: %d of %d recorded (others named by no entry, already "
                     "wanted, or over the cap)", reader.name, site, recorded, len(oids))
        return recorded

    def named(self, oids: list[ObjectId]) -> list[ObjectId]:
        """Those of ``oids`` a known entry names: roots, and what records and manifests held here list."""
        named: set[str] = set(self.index.named(oids))
        named |= self.store.db.roots(oid for oid in oids if oid not in named)
        return [oid for oid in oids if oid in named]

    def touch(self, oids: Iterable[ObjectId]) -> None:
        for oid in oids:
            self.index.touch(oid)

    # -- commits -----------------------------------------------------------------------

    async def commit(self, changes: list[Change]) -> Commit:
        """Sign and append changes to this site's log."""
        commit = await asyncio.to_thread(self.store.commit, changes)
        await self._emit("commits", [commit])
        return commit

    async def receive(self, raws: list[bytes]) -> tuple[list[Commit], list[str]]:
        """Verify and append commits from other sites; return (added, rejected reasons).
        A forked log (see :class:`~eurec4a_nt.errors.Forked`) is logged as an error; a
        batch logs at most :data:`LOGGED_REJECTS` reasons (forks first) and a count."""
        added, rejected = await asyncio.to_thread(self.store.receive, raws)
        for reason in sorted(rejected, key=lambda r: not r.startswith("FORK"))[:LOGGED_REJECTS]:
            (log.error if reason.startswith("FORK") else log.warning)("rejected: %s", reason)
        if len(rejected) > LOGGED_REJECTS:
            log.warning("rejected %d more commits of that batch", len(rejected) - LOGGED_REJECTS)
        if added:
            await self._emit("commits", added)
        return added, rejected

    async def start_at(self, ref: CheckpointRef) -> bool:
        """Start the log of another site at the checkpoint ``ref``, its objects held here
        (see :func:`~eurec4a_nt.checkpoint.start_at`, whose errors it raises), and pass it
        on like new commits; False if that seq is held already."""
        started = await offloop.call(start_at, self.store, ref, self.store.objects)
        if started:
            await self._emit("commits", [])
        return started

    async def follow_logs(self) -> list[str]:
        """Read commits other processes made durable in this store's logs (servers
        sharing a bucket or a folder) and pass them on like any new commits; return
        the sites whose logs grew."""
        grown = await asyncio.to_thread(self.store.refresh)
        if grown:
            await self._emit("commits", [])
        return grown

    async def rules_changed(self) -> None:
        await self._emit("rules", self.rules())

    # -- selection ---------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every current entry of every site."""
        out: list[Entry] = []
        for site in self.store.sites():
            out.extend(self.store.state(site).entries.values())
        return out

    def rules(self) -> list[Rule]:
        return self.index.rules()

    def wanted_here(self, entry: Entry) -> bool:
        """Whether a prefetch rule asks this site to hold the entry."""
        return any(entry.matches(r.topics, r.sites, r.names) for r in self.rules())

    def presence(self, entry: Entry) -> tuple[int, int]:
        """``(objects held, objects needed)`` for an entry (roots and records first).

        An entry whose record or manifest is damaged or disagrees with it counts as
        never complete (one log line says why); it breaks no page or listing.
        """
        held = needed = 0
        try:
            for present in (n.held for n in walk(entry, self.store.objects)):
                needed += 1
                held += present
        except Corrupt as exc:
            self.report_damaged(entry, exc)
            needed += 1
        return held, needed

    # -- cache eviction ----------------------------------------------------------------

    async def evict_if_needed(self) -> int:
        """Evict least recently used objects until the store is under 90% of the cap
        (see :mod:`eurec4a_nt.eviction`); the bytes freed."""
        if not self.cache_cap or self._evicting or self.index.total_size() <= self.cache_cap:
            return 0
        self._evicting = True
        try:
            return await asyncio.to_thread(evict, self, self.cache_cap)
        finally:
            self._evicting = False

    def report_damaged(self, entry: Entry, exc: Corrupt) -> None:
        """Log once per entry that it cannot be served, and why."""
        if entry.root not in self._damaged:
            self._damaged.add(entry.root)
            log.warning("entry %s cannot be served: %s", entry.path, exc)
