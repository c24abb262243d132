"""A read-through cache: a store over a local cache and an origin.

Reads are served from the cache; a miss is fetched once from the origin, verified,
kept in the cache and returned. Concurrent misses for one object wait for the same
transfer. If the cache cannot keep an object (disk full), the failure is logged and
the read still succeeds. Writes go to the origin.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

from ..errors import NTError, ObjectMissing
from ..ids import Hashed, Item, ObjectId
from .base import ObjectStore, checked, verified

log = logging.getLogger(__name__)


class CachingStore(ObjectStore):
    """``cache`` in front of ``origin``."""

    #: Deleting drops only the cached copy; listing shows only what is cached.
    supports_delete = False
    supports_listing = False

    def __init__(self, cache: ObjectStore, origin: ObjectStore) -> None:
        self.cache = cache
        self.origin = origin
        self._locks: dict[ObjectId, threading.Lock] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"CachingStore({self.cache!r}, {self.origin!r})"

    def _fetch(self, oid: ObjectId) -> bytes | None:
        """Make ``oid`` local (one transfer however many ask); return its bytes if fetched."""
        with self._guard:
            lock = self._locks.setdefault(oid, threading.Lock())
        with lock:
            try:
                if self.cache.has(oid):
                    return None
                data = self.origin.get(oid)
                verified(data, oid)
                try:
                    self.cache.put_many([Hashed(oid, data)])
                except (NTError, OSError) as exc:
                    log.warning("could not keep %s in the cache: %s", oid.short, exc)
                return data
            finally:
                with self._guard:
                    self._locks.pop(oid, None)

    def _read(self, oid: ObjectId) -> bytes:
        if self.cache.has(oid):
            try:
                return self.cache.get(oid)
            except ObjectMissing:  # evicted meanwhile
                pass
        data = self._fetch(oid)
        return data if data is not None else self.cache.get(oid)

    def get_many(self, oids: list[ObjectId]) -> list[tuple[ObjectId, bytes]]:
        """Cached objects from the cache; the rest from the origin at once, checked
        against their ids and kept."""
        held: dict[ObjectId, bytes] = {}
        for oid in dict.fromkeys(oids):
            try:
                held[oid] = self.cache.get(oid)
            except ObjectMissing:
                pass
        got = self.origin.get_many([o for o in oids if o not in held])
        fetched = [Hashed(checked(item), item[1]) for item in got]
        try:
            self.cache.put_many(fetched)
        except (NTError, OSError) as exc:
            log.warning("could not keep %d objects in the cache: %s", len(fetched), exc)
        held.update(got)
        return [(oid, held[oid]) for oid in oids]

    def get_range(self, oid: ObjectId, start: int, end: int) -> bytes:
        if not self.cache.has(oid):
            data = self._fetch(oid)
            if data is not None:
                return data[start:end]
        return self.cache.get_range(oid, start, end)

    def get_part(self, oid: ObjectId, start: int, end: int, size: int, tree: str,
                 record: ObjectId | None = None) -> bytes:
        """A verified part from the origin when the cache lacks the object: the rest of it
        is not fetched (nor cached)."""
        if self.cache.has(oid):
            try:
                return self.cache.get_range(oid, start, end)
            except ObjectMissing:  # evicted meanwhile
                pass
        return self.origin.get_part(oid, start, end, size, tree, record)

    def put(self, data: bytes, oid: ObjectId | None = None) -> ObjectId:
        """Store ``data`` in the origin (verified there, once)."""
        return self.origin.put(data, oid)

    def _write(self, oid: ObjectId, data: bytes) -> None:
        self.origin.put_many([Hashed(oid, data)])

    def put_many(self, items: Iterable[Item]) -> list[ObjectId]:
        return self.origin.put_many(items)

    def has(self, oid: ObjectId) -> bool:
        return self.cache.has(oid) or self.origin.has(oid)

    def missing(self, oids: Iterable[ObjectId]) -> list[ObjectId]:
        return self.origin.missing(oid for oid in oids if not self.cache.has(oid))

    def size(self, oid: ObjectId) -> int:
        return self.cache.size(oid) if self.cache.has(oid) else self.origin.size(oid)

    def delete(self, oid: ObjectId) -> None:
        """Drop the cached copy (the origin is not touched)."""
        self.cache.delete(oid)

    def ids(self) -> Iterator[ObjectId]:
        return self.cache.ids()

    def sizes(self) -> Iterator[tuple[ObjectId, int]]:
        return self.cache.sizes()

    def local_path(self, oid: ObjectId) -> str | None:
        return self.cache.local_path(oid)
