"""The one walk over what an entry is made of: root -> record or manifest -> values,
records -> blocks.

Every view of an entry's objects (what it needs, what is held, what a receiver still
lacks, what a sender following a root may skip, what a commit must find present) is
built on :func:`walk` or :func:`below`. Each object read to find its children is read
once; bytes already in hand (an object just received) are passed in, not read again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from .chunking import FileRecord
from .entries import Entry
from .errors import Corrupt
from .ids import ObjectId
from .manifests import Manifest, Ref, kind_of, record_of
from .stores.base import ObjectStore


class Kind(Enum):
    MANIFEST = "manifest"  #: the root of a zarr or directory entry
    RECORD = "record"  #: a file record (the root of a file entry, or a large value)
    VALUE = "value"  #: a value of a manifest held as one object
    BLOCK = "block"  #: a block of a file record


@dataclass(frozen=True)
class Node:
    """One object of an entry, as the walk met it."""

    id: ObjectId
    kind: Kind
    held: bool
    #: The manifest key it belongs to ("" for an entry's root and a file entry's blocks).
    path: str = ""
    #: Bytes it stands for: an entry's or value's size, a block's length.
    size: int = 0
    #: Where a block starts in its file.
    offset: int = 0
    parent: ObjectId | None = None


def walk(entry: Entry, store: ObjectStore, root: bytes | None = None) -> Iterator[Node]:
    """Every object ``entry`` needs, parents before their children (``root``: the root's
    bytes if in hand). Below an absent manifest or record nothing is reported.

    Raises :class:`Corrupt` if a held manifest or record is damaged or disagrees with
    the sizes the entry or manifest gives.
    """
    if entry.kind == "file":
        yield from _ref(Ref(entry.root, entry.size, record=True), "", None, store, root)
        return
    held = root is not None or store.has(entry.root)
    yield Node(entry.root, Kind.MANIFEST, held, size=entry.size)
    if held:
        manifest = Manifest.from_bytes(root if root is not None else store.get(entry.root))
        if manifest.size != entry.size:
            raise Corrupt(f"{entry.path}: size {entry.size} differs from its manifest's {manifest.size}")
        for path, ref in manifest.items.items():
            yield from _ref(ref, path, entry.root, store)


def _ref(ref: Ref, path: str, parent: ObjectId | None, store: ObjectStore,
         data: bytes | None = None) -> Iterator[Node]:
    held = data is not None or store.has(ref.id)
    yield Node(ref.id, Kind.RECORD if ref.record else Kind.VALUE, held, path, ref.size, parent=parent)
    if ref.record and held:
        record = record_of(ref, data if data is not None else store.get(ref.id))
        yield from _blocks(record, path, ref.id, store)


def _blocks(record: FileRecord, path: str, parent: ObjectId, store: ObjectStore) -> Iterator[Node]:
    for block in record.blocks:
        yield Node(block.id, Kind.BLOCK, store.has(block.id), path, block.length, block.offset, parent)


def below(oid: ObjectId, data: bytes, store: ObjectStore) -> Iterator[Node]:
    """The objects below the manifest or record ``oid`` (its bytes ``data``); none below
    any other object."""
    kind = kind_of(data)
    if kind == "file":
        yield from _blocks(FileRecord.from_bytes(data), "", oid, store)
    elif kind in ("zarr", "directory"):
        for path, ref in Manifest.from_bytes(data).items.items():
            yield from _ref(ref, path, oid, store)


def held_below(oid: ObjectId, data: bytes, store: ObjectStore) -> list[ObjectId]:
    """Objects below ``oid`` (its bytes ``data``) that ``store`` holds, leaving out
    records held only in part (a sender following ``oid`` may skip what is listed)."""
    incomplete: set[ObjectId | None] = set()
    held = []
    for node in reversed(list(below(oid, data, store))):  # children before their parents
        if not node.held or node.id in incomplete:
            incomplete.add(node.parent)
        else:
            held.append(node.id)
    return held
