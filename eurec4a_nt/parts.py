"""Verified parts of blocks held in memory: the leaves of blocks this site does not hold
whole, fetched for readers over a link (see :mod:`eurec4a_nt.sync.ranges`) and checked
against their block's tree root before they were kept. A later read of the same leaves
costs nothing; the least recently used leaves go beyond :data:`MAX_HELD` bytes, and a
block's leaves go once the block is held whole."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .hashtree import LEAF
from .ids import ObjectId

#: Bytes of leaves held at most.
MAX_HELD = 64 << 20


@dataclass(frozen=True)
class Part:
    """A run of leaves of a block as received, with the hashes proving it."""

    oid: ObjectId
    size: int  #: of the whole block
    first: int
    proof: list[bytes]
    data: bytes

    @property
    def last(self) -> int:
        return self.first + len(self.data)


class Parts:
    """Leaves of blocks, by block id and leaf number."""

    def __init__(self, limit: int = MAX_HELD) -> None:
        self.limit = limit
        self._leaves: OrderedDict[tuple[ObjectId, int], bytes] = OrderedDict()
        self._numbers: dict[ObjectId, set[int]] = {}  #: the leaves held of each block
        self._size = 0

    def put(self, oid: ObjectId, first: int, data: bytes) -> None:
        """Keep the verified leaves ``data`` of block ``oid`` starting at byte ``first``
        (a leaf boundary)."""
        for at in range(0, len(data), LEAF):
            key = (oid, (first + at) // LEAF)
            if self._leaves.pop(key, None) is None:
                self._size += LEAF
                self._numbers.setdefault(oid, set()).add(key[1])
            self._leaves[key] = data[at:at + LEAF]
        while self._size > self.limit:
            (block, number), _ = self._leaves.popitem(last=False)
            self._forget(block, number)

    def _forget(self, oid: ObjectId, number: int) -> None:
        self._size -= LEAF
        numbers = self._numbers[oid]
        numbers.discard(number)
        if not numbers:
            del self._numbers[oid]

    def lacking(self, oid: ObjectId, first: int, last: int) -> tuple[int, int] | None:
        """The leaf-aligned run of ``[first, last)`` (leaf-aligned bytes of block ``oid``)
        from its first leaf not held here to its last; None if all are held."""
        missing = [i for i in range(first // LEAF, -(-last // LEAF)) if (oid, i) not in self._leaves]
        if not missing:
            return None
        return missing[0] * LEAF, min((missing[-1] + 1) * LEAF, last)

    def get(self, oid: ObjectId, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` of block ``oid``, if every leaf holding them is here."""
        numbers = range(start // LEAF, -(-end // LEAF))
        if any((oid, i) not in self._leaves for i in numbers):
            return None
        for i in numbers:
            self._leaves.move_to_end((oid, i))
        run = b"".join(self._leaves[(oid, i)] for i in numbers)
        skip = start - numbers.start * LEAF
        return run[skip:skip + end - start]

    def drop(self, oid: ObjectId) -> None:
        """Forget the leaves of ``oid`` (held whole now)."""
        for number in list(self._numbers.get(oid, ())):
            del self._leaves[(oid, number)]
            self._forget(oid, number)
