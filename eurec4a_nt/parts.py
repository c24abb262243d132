"""Verified parts of blocks held in memory: the leaves of blocks this site does not hold
whole, fetched for readers over a link (see :mod:`eurec4a_nt.sync.ranges`) and checked
against their block's tree root before they were kept. A later read of the same leaves
costs nothing; the least recently used leaves go beyond :data:`MAX_HELD` bytes, and a
block's leaves go once the block is held whole. Each run is kept with the proof it
came with (:data:`MAX_PROOFS` of them), so a hub passes on again, to the next reader
elsewhere, what it relayed once."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .hashtree import LEAF
from .ids import ObjectId

#: Bytes of leaves held at most.
MAX_HELD = 64 << 20
#: Proofs of runs held at most (at most 1 KiB each).
MAX_PROOFS = 4096


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
    """Leaves of blocks, by block id, tree root and leaf number.

    Leaves are kept under the tree root they were checked against, and only a read
    naming that root gets them: a block's id says nothing of its tree root, so leaves a
    site checked against a root some record made up (and the peer that sent them made
    to fit) are never served to a reader of that block by its true root."""

    def __init__(self, limit: int = MAX_HELD) -> None:
        self.limit = limit
        self._leaves: OrderedDict[tuple[ObjectId, str, int], bytes] = OrderedDict()
        #: The leaves held of each block, by tree root.
        self._numbers: dict[ObjectId, dict[str, set[int]]] = {}
        self._size = 0
        #: The block size and proof of each run kept, by ``(block, tree root, first, last)``.
        self._proofs: OrderedDict[tuple[ObjectId, str, int, int], tuple[int, list[bytes]]] = OrderedDict()

    def keep(self, part: Part, tree: str) -> None:
        """Keep a run of leaves checked against tree root ``tree``, and its proof."""
        self.put(part.oid, tree, part.first, part.data)
        key = (part.oid, tree, part.first, part.last)
        self._proofs.pop(key, None)
        self._proofs[key] = (part.size, part.proof)
        while len(self._proofs) > MAX_PROOFS:
            self._proofs.popitem(last=False)

    def proven(self, oid: ObjectId, tree: str, first: int, last: int) -> Part | None:
        """The run ``[first, last)`` of block ``oid`` (tree root ``tree``) with its proof,
        if it was kept as such (:meth:`keep`) and its leaves are all still here."""
        key = (oid, tree, first, last)
        held = self._proofs.get(key)
        data = self.get(oid, tree, first, last) if held is not None else None
        if held is None or data is None:
            return None
        self._proofs.move_to_end(key)
        return Part(oid, held[0], first, held[1], data)

    def put(self, oid: ObjectId, tree: str, first: int, data: bytes) -> None:
        """Keep the leaves ``data`` of block ``oid`` starting at byte ``first`` (a leaf
        boundary), checked against tree root ``tree``."""
        for at in range(0, len(data), LEAF):
            key = (oid, tree, (first + at) // LEAF)
            if self._leaves.pop(key, None) is None:
                self._size += LEAF
                self._numbers.setdefault(oid, {}).setdefault(tree, set()).add(key[2])
            self._leaves[key] = data[at:at + LEAF]
        while self._size > self.limit:
            (block, root, number), _ = self._leaves.popitem(last=False)
            self._forget(block, root, number)

    def _forget(self, oid: ObjectId, tree: str, number: int) -> None:
        self._size -= LEAF
        trees = self._numbers[oid]
        trees[tree].discard(number)
        if not trees[tree]:
            del trees[tree]
        if not trees:
            del self._numbers[oid]

    def lacking(self, oid: ObjectId, tree: str, first: int, last: int) -> tuple[int, int] | None:
        """The leaf-aligned run of ``[first, last)`` (leaf-aligned bytes of block ``oid``,
        tree root ``tree``) from its first leaf not held here to its last; None if all
        are held."""
        missing = [i for i in range(first // LEAF, -(-last // LEAF)) if (oid, tree, i) not in self._leaves]
        if not missing:
            return None
        return missing[0] * LEAF, min((missing[-1] + 1) * LEAF, last)

    def get(self, oid: ObjectId, tree: str, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` of block ``oid`` (tree root ``tree``), if every leaf
        holding them is here."""
        numbers = range(start // LEAF, -(-end // LEAF))
        if any((oid, tree, i) not in self._leaves for i in numbers):
            return None
        for i in numbers:
            self._leaves.move_to_end((oid, tree, i))
        run = b"".join(self._leaves[(oid, tree, i)] for i in numbers)
        skip = start - numbers.start * LEAF
        return run[skip:skip + end - start]

    def drop(self, oid: ObjectId) -> None:
        """Forget the leaves of ``oid`` (held whole now)."""
        for tree, numbers in list(self._numbers.get(oid, {}).items()):
            for number in list(numbers):
                del self._leaves[(oid, tree, number)]
                self._forget(oid, tree, number)
