"""The object store interface.

A store maps ids to immutable bytes. Backends implement a small core (``_read``,
``_write``, ``has``, ``size``, ``delete``, ``ids``); everything else is built on it
here. Every write goes through :func:`verified` (or :func:`checked` for many), which
hashes the bytes and refuses them if they do not match the id they claim, so no
backend ever holds a wrong object under a valid id. Bytes hashed once while in hand
(:class:`~eurec4a_nt.ids.Hashed`) count as verified and are not hashed again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

from ..errors import BadInput, Corrupt, ObjectMissing
from ..ids import Hashed, Item, ObjectId
from . import offloop


def verified(data: bytes | memoryview, oid: ObjectId | None = None) -> ObjectId:
    """The id of ``data``; with ``oid``, raise :class:`Corrupt` unless they match.

    This is the check every write of an object goes through.
    """
    actual = ObjectId.of(data)
    if oid is not None and actual != oid:
        raise Corrupt(
            f"received bytes hash to {actual.short}, not {oid.short}: "
            "the transfer was damaged or truncated; send it again"
        )
    return actual


def checked(item: Item) -> ObjectId:
    """The id of an ``(id, bytes)`` item to store; raise :class:`Corrupt` unless the
    bytes hash to it. A :class:`Hashed` item was hashed when made and is taken as is."""
    if isinstance(item, Hashed):
        return item.id
    return verified(item[1], item[0])


class Sink(Protocol):
    """Where publishing writes objects: a store, or a group commit in front of one."""

    def put(self, data: bytes, oid: ObjectId | None = None) -> ObjectId: ...

    def put_many(self, items: Iterable[Item]) -> object: ...


_Items = TypeVar("_Items", bound=Item)


def batches(items: Iterable[_Items], max_bytes: int,
            max_count: int | None = None) -> Iterator[list[_Items]]:
    """``items`` in lists of about ``max_bytes`` (and at most ``max_count`` items) each,
    for stores that send many objects per request."""
    batch: list[_Items] = []
    size = 0
    for item in items:
        batch.append(item)
        size += len(item[1])
        if size >= max_bytes or (max_count and len(batch) >= max_count):
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class ObjectStore(ABC):
    """Immutable objects named by the SHA-256 of their bytes."""

    #: True when objects live as plain files that can be served with sendfile.
    supports_local_paths = False
    #: True when :meth:`delete` removes the object, so :meth:`has` is False afterwards.
    supports_delete = True
    #: True when :meth:`ids` lists every object written through this store.
    supports_listing = True

    # -- the core a backend implements ------------------------------------------------

    @abstractmethod
    def _read(self, oid: ObjectId) -> bytes:
        """The bytes of ``oid``; raise :class:`ObjectMissing` if absent."""

    @abstractmethod
    def _write(self, oid: ObjectId, data: bytes) -> None:
        """Store bytes already verified to hash to ``oid``, atomically and durably.

        Writing an object that exists is a no-op; concurrent writers are safe.
        """

    @abstractmethod
    def has(self, oid: ObjectId) -> bool:
        """Whether the object is here (complete and under its final name)."""

    @abstractmethod
    def size(self, oid: ObjectId) -> int:
        """Size in bytes; raise :class:`ObjectMissing` if absent."""

    @abstractmethod
    def delete(self, oid: ObjectId) -> None:
        """Remove the object; no error if it is absent."""

    @abstractmethod
    def ids(self) -> Iterator[ObjectId]:
        """Every id held, in no particular order."""

    # -- built on the core --------------------------------------------------------------

    def sizes(self) -> Iterator[tuple[ObjectId, int]]:
        """Every id held with its size. Backends that list sizes with names (a folder,
        S3) override this so no object is asked for its size one by one."""
        for oid in self.ids():
            try:
                yield oid, self.size(oid)
            except ObjectMissing:  # deleted meanwhile
                continue

    def get(self, oid: ObjectId, verify: bool = False) -> bytes:
        """The object's bytes. With ``verify``, re-hash and raise :class:`Corrupt` on mismatch."""
        data = self._read(oid)
        return self.intact(oid, data) if verify else data

    def intact(self, oid: ObjectId, data: bytes) -> bytes:
        """``data`` read as ``oid`` from this store; raise :class:`Corrupt` unless it
        hashes to ``oid``."""
        if ObjectId.of(data) != oid:
            raise Corrupt(f"object {oid.short} in {self!r} does not match its id (damaged where it is stored?)")
        return data

    async def fetch(self, oid: ObjectId) -> bytes:
        """The object's bytes, checked against its id, for async code: the event loop is
        never blocked, and many fetches may run at once. Raises :class:`ObjectMissing`
        if absent and :class:`Corrupt` if damaged. Here the read runs on a store thread
        (:mod:`.offloop`); a backend with an async client of its own overrides this so
        a fetch holds no thread and cancelling it cancels the transfer."""
        return await offloop.call(self.get, oid, True)

    def get_many(self, oids: list[ObjectId]) -> list[tuple[ObjectId, bytes]]:
        """Each of ``oids`` with its bytes, as :meth:`get`. A backend reading from
        elsewhere fetches them at once, each checked (:class:`Hashed` items)."""
        return [(oid, self.get(oid)) for oid in oids]

    def get_range(self, oid: ObjectId, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object."""
        return self._read(oid)[start:end]

    def get_part(self, oid: ObjectId, start: int, end: int, size: int, tree: str,
                 record: ObjectId | None = None) -> bytes:
        """Bytes ``[start, end)`` of an object of ``size`` whose hash tree root is ``tree``
        (see :mod:`eurec4a_nt.hashtree`), a block of file ``record``. A store that holds
        objects whole (verified when written) reads the range; one that fetches parts
        from elsewhere checks them against ``tree`` and raises :class:`Corrupt` on a
        mismatch (naming ``record`` lets a server that lacks the block bring only its
        leaves holding the range)."""
        return self.get_range(oid, start, end)

    def put(self, data: bytes, oid: ObjectId | None = None) -> ObjectId:
        """Store ``data`` and return its id.

        If ``oid`` is given and the bytes do not hash to it, nothing is stored and
        :class:`Corrupt` is raised.
        """
        oid = verified(data, oid)
        if not self.has(oid):
            self._write(oid, bytes(data))
            self._flush([oid])
        return oid

    def put_many(self, items: Iterable[Item]) -> list[ObjectId]:
        """Store many objects, each verified, made durable together; returns the ids new here."""
        new = [item[0] for item in items if self._put_new(item)]
        self._flush(new)
        return new

    def _put_new(self, item: Item) -> bool:
        """Verify and write one object unless it is here; return whether it was written."""
        if self.has(item[0]):
            return False
        self._write(checked(item), bytes(item[1]))
        return True

    def _flush(self, oids: list[ObjectId]) -> None:
        """Make the names of freshly written objects durable (a no-op where writes are)."""

    def missing(self, oids: Iterable[ObjectId]) -> list[ObjectId]:
        """The ids of ``oids`` this store lacks, in order, without duplicates."""
        seen: set[ObjectId] = set()
        out = []
        for oid in oids:
            if oid not in seen:
                seen.add(oid)
                if not self.has(oid):
                    out.append(oid)
        return out

    def local_path(self, oid: ObjectId) -> str | None:
        """A plain file holding the object, where the backend has one."""
        return None

    def urls(self, oids: list[ObjectId], expires: int) -> dict[ObjectId, str]:
        """URLs anyone holding them can GET each of ``oids`` at, straight from where the
        store keeps it, good for ``expires`` seconds; none where the backend has no such
        URLs (a local folder). Whether an object is there is not asked."""
        return {}

    def quarantine(self, oid: ObjectId) -> str:
        """Move a damaged object out of the way and say where; backends without a
        place for it delete it."""
        self.delete(oid)
        return "deleted"

    def close(self) -> None:
        """Release connections or handles."""

    def require(self, oid: ObjectId) -> None:
        """Raise :class:`ObjectMissing` unless the object is here."""
        if not self.has(oid):
            raise ObjectMissing(f"object {oid} is not in this store")

    def __contains__(self, oid: object) -> bool:
        """``oid in store``; False for anything that is not a well-formed id."""
        try:
            return self.has(ObjectId.parse(oid))
        except BadInput:
            return False
