"""Where each byte of a file is: a file record's block offsets as compact arrays,
searched by bisection and cached by record id.

A record is immutable (its id is the hash of its bytes), so its index never goes
stale. A range read of a file of 100,000 blocks costs two bisections and the blocks it
returns, not a parse of the whole record; the record is parsed once per process while
its index stays in the cache (:data:`CACHE_BYTES` in all, least recently used dropped).
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from .chunking import FileRecord
from .ids import ObjectId

#: Bytes of block indexes kept per process (about 40 bytes per block: 10 TiB of 1 MiB blocks).
CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class BlockIndex:
    """The blocks of one file: ``offsets[i]`` is where block ``i`` starts (one more
    offset, the size, closes the last), ``ids`` their ids, 32 raw bytes each."""

    offsets: array
    ids: bytes
    #: Hash tree roots of the blocks that have one (read in verified parts), by id.
    trees: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, record: FileRecord) -> BlockIndex:
        offsets = array("Q", (b.offset for b in record.blocks))
        offsets.append(record.size)
        trees = {str(b.id): b.tree for b in record.blocks if b.tree}
        return cls(offsets, b"".join(bytes.fromhex(b.id) for b in record.blocks), trees)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        return self.offsets.itemsize * len(self.offsets) + len(self.ids) + 200 * len(self.trees)

    def block(self, i: int) -> tuple[ObjectId, int, int]:
        """``(id, offset, length)`` of block ``i``."""
        start = self.offsets[i]
        return ObjectId.parse(self.ids[32 * i:32 * i + 32].hex()), start, self.offsets[i + 1] - start

    def tree_of(self, oid: ObjectId) -> tuple[int, str] | None:
        """The length and hash tree root of block ``oid`` of this file, if it is one of
        its blocks and has a root."""
        tree, raw = self.trees.get(oid), bytes.fromhex(oid)
        at = self.ids.find(raw) if tree else -1
        while at > 0 and at % 32:  # the id must start at a block's place
            at = self.ids.find(raw, at + 1)
        return None if tree is None or at < 0 else (self.block(at // 32)[2], tree)

    def span(self, start: int, end: int) -> list[tuple[ObjectId, int, int]]:
        """The blocks overlapping bytes ``[start, end)``, in order."""
        if end <= start or not len(self):
            return []
        first = max(bisect_right(self.offsets, start) - 1, 0)
        stop = min(bisect_left(self.offsets, end), len(self))
        return [self.block(i) for i in range(first, stop)]


class _Cache:
    """Block indexes by record id, least recently used dropped beyond a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0
        self._items: OrderedDict[ObjectId, BlockIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, oid: ObjectId, make: Callable[[], BlockIndex]) -> BlockIndex:
        with self._lock:
            found = self._items.get(oid)
            if found is not None:
                self._items.move_to_end(oid)
                return found
        index = make()
        with self._lock:
            if oid not in self._items:
                self._items[oid] = index
                self.held += index.nbytes
            while self.held > self.budget and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self.held -= dropped.nbytes
        return index


_cache = _Cache(CACHE_BYTES)


def block_index(oid: ObjectId, load: Callable[[], FileRecord]) -> BlockIndex:
    """The index of record ``oid``; ``load`` parses the record on a miss (and raises
    what it raises: a damaged record is never cached)."""
    return _cache.get(oid, lambda: BlockIndex.of(load()))
