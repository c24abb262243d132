"""Objects a peer sent before anything here names them.

A site stores an object from a link only if something asked for it: a read waits for
it, it is an entry's root, or a record or manifest held here lists it. Around a
reconnection an object can arrive just before what names it (a block before its
record, a root before its commit), so such objects wait here, verified, until that
arrives, and are dropped (oldest first) beyond :data:`MAX_PENNED` bytes: a peer sending
objects nobody asked for fills neither the disk nor the memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

from ..ids import ObjectId

#: Bytes of objects waiting for something to name them.
MAX_PENNED = 16 << 20

S = TypeVar("S")


class Pen(Generic[S]):
    """Verified objects nothing names yet, with the session (``S``) each came over."""

    def __init__(self, limit: int = MAX_PENNED) -> None:
        self.limit = limit
        self._held: OrderedDict[ObjectId, tuple[S, bytes]] = OrderedDict()
        self._size = 0

    def add(self, oid: ObjectId, source: S, data: bytes) -> int:
        """Hold ``data``; return how many objects were dropped to stay within the limit
        (``data`` itself, if it alone is over it)."""
        if oid in self._held or len(data) > self.limit:
            return 0 if oid in self._held else 1
        self._held[oid] = (source, data)
        self._size += len(data)
        dropped = 0
        while self._size > self.limit:
            _, (_, old) = self._held.popitem(last=False)
            self._size -= len(old)
            dropped += 1
        return dropped

    def release(self, oids: Iterable[ObjectId]) -> list[tuple[ObjectId, S, bytes]]:
        """Take out those of ``oids`` held here (now named by something stored)."""
        out = []
        for oid in oids:
            held = self._held.pop(oid, None)
            if held is not None:
                self._size -= len(held[1])
                out.append((oid, *held))
        return out

    def __len__(self) -> int:
        return len(self._held)
