"""A local store that keeps at most ``cap`` bytes: the client's block cache.

A wrapper around a :class:`LocalStore`. Every read marks the object used (its file's
mtime); when a write takes the store above its cap, the least recently used objects
are deleted until it is at 90 % of the cap. Several processes may share the folder:
each counts what is there when it starts and when it evicts, so the cap holds to
within what they write between two evictions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ObjectMissing
from ..ids import Item, ObjectId
from .base import ObjectStore
from .local import LocalStore

#: After an eviction the store holds at most this share of its cap (room for writes).
_LOW_WATER = 0.9


class CappedStore(ObjectStore):
    """``inner`` holding at most ``cap`` bytes of objects, least recently used first out."""

    supports_local_paths = True

    def __init__(self, inner: LocalStore, cap: int) -> None:
        self.inner = inner
        self.cap = cap
        self._bytes = self.usage()[1]

    def __repr__(self) -> str:
        return f"CappedStore({self.inner!r}, cap={self.cap})"

    def _files(self) -> list[tuple[float, int, Path]]:
        """Every object file: (last use, size, path)."""
        out = []
        for path in self.inner.objects.glob("*/*"):
            try:
                st = path.stat()
            except FileNotFoundError:  # evicted by another process meanwhile
                continue
            out.append((st.st_mtime, st.st_size, path))
        return out

    def usage(self) -> tuple[int, int]:
        """Objects held and their bytes, counted on disk now."""
        files = self._files()
        return len(files), sum(size for _, size, _ in files)

    def evict(self, target: int | None = None) -> int:
        """Delete least recently used objects until at most ``target`` bytes (default
        90 % of the cap) are held; return the bytes freed."""
        target = int(self.cap * _LOW_WATER) if target is None else target
        files = sorted(self._files())
        held, freed = sum(size for _, size, _ in files), 0
        for _, size, path in files:
            if held - freed <= target:
                break
            path.unlink(missing_ok=True)
            freed += size
        self._bytes = held - freed
        return freed

    def _used(self, oid: ObjectId) -> None:
        path = self.inner.local_path(oid)
        if path is not None:
            try:
                os.utime(path)
            except OSError:  # evicted meanwhile, or a read-only cache: reading still works
                pass

    def _grew(self, added: int) -> None:
        self._bytes += added
        if self._bytes > self.cap:
            self.evict()

    def _read(self, oid: ObjectId) -> bytes:
        data = self.inner.get(oid)
        self._used(oid)
        return data

    def get_range(self, oid: ObjectId, start: int, end: int) -> bytes:
        data = self.inner.get_range(oid, start, end)
        self._used(oid)
        return data

    def _write(self, oid: ObjectId, data: bytes) -> None:
        self.put_many([(oid, data)])

    def put_many(self, items: Iterable[Item]) -> list[ObjectId]:
        sizes: dict[ObjectId, int] = {}

        def counted() -> Iterator[Item]:
            for item in items:  # passed on as they are: a Hashed item is not hashed again
                sizes[item[0]] = len(item[1])
                yield item

        new = self.inner.put_many(counted())
        self._grew(sum(sizes[oid] for oid in new))
        return new

    def has(self, oid: ObjectId) -> bool:
        return self.inner.has(oid)

    def size(self, oid: ObjectId) -> int:
        return self.inner.size(oid)

    def delete(self, oid: ObjectId) -> None:
        try:
            size = self.inner.size(oid)
        except ObjectMissing:
            return
        self.inner.delete(oid)
        self._bytes -= size

    def ids(self) -> Iterator[ObjectId]:
        return self.inner.ids()

    def local_path(self, oid: ObjectId) -> str | None:
        path = self.inner.local_path(oid)
        if path is not None:
            self._used(oid)
        return path

    def clear(self) -> int:
        """Delete every object; return the bytes freed."""
        return self.evict(0)
