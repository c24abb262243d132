"""Verified ranges of a block: a SHA-256 hash tree over its 16 KiB leaves.

A block's id is the SHA-256 of all its bytes, so a part of a block can only be checked
against it once the whole block is there. A block that readers read in parts (the
blocks of a netCDF4/HDF5 file, whose chunks are read one by one) also has a tree root,
kept in its file record: the root of a binary tree whose leaves are the SHA-256 of each
:data:`LEAF` bytes (``0x00`` + bytes) and whose nodes hash their two children (``0x01``
+ left + right; an odd node is carried up unchanged). Any run of whole leaves comes
with the sibling hashes needed to rebuild the root (:func:`prove`), and is checked
against the root without the rest of the block (:func:`verify`): 32 bytes per tree
level, about 0.3% of a 128 KiB range of a 1 MiB block.
"""

from __future__ import annotations

import hashlib

from .errors import Corrupt

LEAF = 16 << 10


def _leaf(data: bytes | memoryview) -> bytes:
    h = hashlib.sha256(b"\x00")
    h.update(data)
    return h.digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaves(data: bytes | memoryview) -> list[bytes]:
    """The leaf hashes of a block (one for an empty block)."""
    view = memoryview(data)
    return [_leaf(view[i:i + LEAF]) for i in range(0, len(data), LEAF)] or [_leaf(b"")]


def _up(level: list[bytes]) -> list[bytes]:
    return [_node(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]


def root(data: bytes | memoryview) -> str:
    """The tree root of a block, as 64 hex digits."""
    level = leaves(data)
    while len(level) > 1:
        level = _up(level)
    return level[0].hex()


def span(size: int, start: int, end: int) -> tuple[int, int]:
    """The leaf-aligned byte range ``[a, b)`` holding bytes ``[start, end)`` of a block of ``size``."""
    return start - start % LEAF, min(-(-end // LEAF) * LEAF, size)


def in_part(size: int, start: int, end: int) -> bool:
    """Whether bytes ``[start, end)`` of a block of ``size`` (one with a tree root) are
    better fetched as verified leaves than as the whole block: their leaves are at most
    half of it (beyond that, the whole block costs little more and is then held whole)."""
    first, last = span(size, start, end)
    return 2 * (last - first) <= size


def prove(data: bytes, start: int, end: int) -> list[bytes]:
    """The sibling hashes that, with the leaves of ``span(len(data), start, end)``, rebuild
    the root: per level, the left neighbour if the run starts at a right child and the
    right neighbour if it ends at a left child, bottom up."""
    level = leaves(data)
    lo, hi = start // LEAF, max(-(-end // LEAF), start // LEAF + 1)
    proof = []
    while len(level) > 1:
        if lo % 2:
            proof.append(level[lo - 1])
        if hi % 2 and hi < len(level):
            proof.append(level[hi])
        level, lo, hi = _up(level), lo // 2, (hi + 1) // 2
    return proof


def verify(part: bytes, size: int, start: int, proof: list[bytes], expected: str) -> None:
    """Check ``part``, the leaf-aligned bytes of a block of ``size`` starting at ``start``,
    against the block's tree root; raise :class:`Corrupt` unless they match."""
    if start % LEAF or start + len(part) > size or (start + len(part) != size and len(part) % LEAF):
        raise Corrupt("a verified range must start and end on leaf boundaries")
    count = -(-size // LEAF) or 1
    run = leaves(part) if part else []
    lo, hi = start // LEAF, start // LEAF + len(run)
    hashes = iter(proof)
    try:
        while count > 1:
            if lo % 2:
                run.insert(0, next(hashes))
                lo -= 1
            if hi % 2 and hi < count:
                run.append(next(hashes))
                hi += 1
            run, lo, hi, count = _up(run), lo // 2, (hi + 1) // 2, (count + 1) // 2
    except StopIteration:
        raise Corrupt("the proof of a range is too short") from None
    if next(hashes, None) is not None or len(run) != 1 or run[0].hex() != expected:
        raise Corrupt("a range of a block does not match the block's tree root: damaged in transit")
