"""Manifests of zarr datasets and directories, and finding bytes inside an entry.

A manifest maps relative paths (zarr keys, or file paths in a directory) to
:class:`Ref` s. A value of at most one block is stored as one object; a larger one is
cut into blocks with a file record (``record=True``), exactly like a file entry. The
few small values a reader opening a zarr store needs first are held in the manifest
itself (``inline``, see :mod:`eurec4a_nt.zarrmeta`) and are no objects of their own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from .blockindex import BlockIndex, block_index
from .chunking import MAX_BLOCK, Block, FileRecord
from .entries import Entry
from .errors import BadInput, Corrupt, NotFound
from .hashtree import in_part
from .hashtree import span as leaf_span
from .ids import ObjectId
from .schema import ManifestBody, decode
from .stores.base import ObjectStore
from .zarrmeta import is_metadata, opening_keys

GetObject = Callable[[ObjectId], bytes]


@dataclass(frozen=True)
class Ref:
    """Where a value's bytes are: one object, a file record of blocks, or (``data``)
    the manifest itself."""

    id: ObjectId
    size: int
    record: bool = False
    data: bytes | None = None

    def to_json(self) -> list[object]:
        return [self.id, self.size, 1] if self.record else [self.id, self.size]


@dataclass(frozen=True)
class Manifest:
    """Relative path -> :class:`Ref`, for a zarr store (``zarr``) or a directory.

    ``items`` are values held as objects; ``inline`` values are held here (a key is in
    one or the other)."""

    type: str
    items: dict[str, Ref]
    inline: dict[str, bytes] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        body: dict[str, object] = {"type": self.type,
                                   "items": {k: r.to_json() for k, r in sorted(self.items.items())}}
        if self.inline:
            body["inline"] = {k: base64.b64encode(v).decode() for k, v in sorted(self.inline.items())}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse a stored manifest; raise :class:`Corrupt` if it is not one."""
        body = decode(data, ManifestBody, "damaged manifest", error=Corrupt)
        if not body.inline.keys().isdisjoint(body.items):
            raise Corrupt("damaged manifest: a key is both inline and an object")
        items = {k: Ref(ObjectId.parse(r.id), r.size, r.record == 1) for k, r in body.items.items()}
        return cls(body.type, items, dict(body.inline))

    @property
    def size(self) -> int:
        return sum(r.size for r in self.items.values()) + sum(map(len, self.inline.values()))

    def keys(self) -> list[str]:
        """Every key, object or inline, sorted."""
        return sorted([*self.items, *self.inline])

    def ref(self, key: str) -> Ref | None:
        """The ref of ``key`` (with its bytes if inline); None if there is no such key."""
        if key in self.inline:
            data = self.inline[key]
            return Ref(ObjectId.of(data), len(data), data=data)
        return self.items.get(key)

    def listdir(self, prefix: str) -> tuple[list[str], list[str]]:
        """Files and sub-directories directly under ``prefix`` ("" for the top)."""
        prefix = prefix.strip("/")
        start = f"{prefix}/" if prefix else ""
        files, dirs = [], set()
        for key in self.keys():
            if key.startswith(start):
                rest = key[len(start):]
                head, sep, _ = rest.partition("/")
                (dirs.add(head) if sep else files.append(head))
        return sorted(files), sorted(dirs)


def entry_ref(entry: Entry) -> Ref:
    """The ref of a whole entry's root."""
    return Ref(entry.root, entry.size, record=entry.kind == "file")


def load_manifest(entry: Entry, get: GetObject) -> Manifest:
    if entry.kind == "file":
        raise BadInput(f"{entry.path} is a file, not a {entry.kind} entry")
    return Manifest.from_bytes(get(entry.root))


def resolve(entry: Entry, subpath: str, get: GetObject) -> Ref:
    """The ref of ``subpath`` inside an entry ("" for a file entry itself)."""
    subpath = subpath.strip("/")
    if entry.kind == "file":
        if subpath:
            raise NotFound(f"{entry.path} is a file; it has no {subpath!r} inside")
        return entry_ref(entry)
    found = load_manifest(entry, get).ref(subpath)
    if found is None:
        raise NotFound(f"{entry.path} has no {subpath!r}")
    return found


def blocks_of(ref: Ref, get: GetObject) -> list[tuple[ObjectId, int, int]]:
    """``(id, offset, length)`` of every object holding the ref's bytes, in order (none
    for an inline value)."""
    if ref.data is not None:
        return []
    if not ref.record:
        return [(ref.id, 0, ref.size)]
    record = record_of(ref, get(ref.id))
    return [(b.id, b.offset, b.length) for b in record.blocks]


def record_of(ref: Ref, data: bytes) -> FileRecord:
    """The file record ``data`` of ``ref``; raise :class:`Corrupt` if it is not one or if
    its size differs from the size the entry or manifest gives (a wrong length served)."""
    record = FileRecord.from_bytes(data)
    if record.size != ref.size:
        raise Corrupt(f"file record {ref.id.short} holds {record.size} bytes, but its entry "
                      f"says {ref.size}")
    return record


class RefReader:
    """Random access to a ref's bytes, reading only the objects that hold a range.

    The block list is read once. A read of several whole blocks asks the store for
    them at once (:meth:`~.stores.base.ObjectStore.get_many`: from a site server, many
    at a time, straight from its object store where offered); a block read in part is
    asked for just the byte span needed, verified against the block's hash tree where
    it has one.
    """

    def __init__(self, ref: Ref, store: ObjectStore) -> None:
        self.ref = ref
        self.store = store
        self._blocks: list[tuple[ObjectId, int, int]] | None = None

    @property
    def blocks(self) -> list[tuple[ObjectId, int, int]]:
        """``(id, offset, length)`` of the objects holding the bytes, in order."""
        if self._blocks is None:
            self._blocks = blocks_of(self.ref, self.store.get)
        return self._blocks

    def _index(self) -> BlockIndex:
        index = block_index(self.ref.id, lambda: record_of(self.ref, self.store.get(self.ref.id)))
        if index.offsets[-1] != self.ref.size:
            raise Corrupt(f"file record {self.ref.id.short} holds {index.offsets[-1]} bytes, "
                          f"but its entry says {self.ref.size}")
        return index

    def trees(self) -> dict[str, str]:
        """The hash tree roots of the ref's blocks that have one, by id."""
        return self._index().trees if self.ref.record and self.ref.data is None else {}

    def blocks_for(self, start: int, end: int) -> list[tuple[ObjectId, int, int]]:
        """The blocks overlapping bytes ``[start, end)``: of a record, found by bisection
        in its cached :class:`~eurec4a_nt.blockindex.BlockIndex` (the record is parsed
        once per process, not per read)."""
        if self.ref.record and self.ref.data is None:
            return self._index().span(start, end)
        return [b for b in self.blocks if b[1] < end and b[1] + b[2] > start]

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, clipped to the ref's size."""
        end = min(end, self.ref.size)
        if start >= end:
            return b""
        if self.ref.data is not None:
            return self.ref.data[start:end]
        trees = self.trees()
        spans = [(oid, *clip(offset, length, (start, end)), length)
                 for oid, offset, length in self.blocks_for(start, end)]
        whole = [oid for oid, lo, hi, length in spans if (lo, hi) == (0, length)]
        held = dict(self.store.get_many(whole)) if len(whole) > 1 else {}
        parts = []
        for oid, lo, hi, length in spans:
            tree = trees.get(oid)
            if oid in held:
                parts.append(held[oid])
            elif tree:
                parts.append(self.store.get_part(oid, lo, hi, length, tree, self.ref.id))
            else:
                parts.append(self.store.get_range(oid, lo, hi))
        return b"".join(parts)


Span = tuple[int, int]


def clip(offset: int, length: int, span: Span) -> Span:
    """Of a block at ``offset`` of ``length`` in a file, the bytes (counted from the
    block's start) that bytes ``span`` of the file cover."""
    return max(span[0] - offset, 0), min(span[1] - offset, length)


def kind_of(data: bytes | memoryview) -> str | None:
    """``file``, ``zarr`` or ``directory`` for a record or manifest (from its first
    bytes), else None."""
    if data[:8] != b'{"type":':
        return None
    try:
        return json.loads(bytes(data[:40]).decode().split(",", 1)[0] + "}").get("type")
    except (ValueError, UnicodeDecodeError):
        return None


def children(data: bytes | memoryview, span: Span | None = None, parts: bool = False) -> list[tuple[ObjectId, bool]]:
    """The objects a record or manifest points to, as ``(id, has children)``; with
    ``span``, only the blocks of a record holding bytes ``[start, end)``, and with
    ``parts`` of those only the ones not read in verified parts (a block with a tree
    root of which the span needs little, see :func:`~eurec4a_nt.hashtree.in_part`).
    Any other object (a block, which may be a view of a file being published) has none."""
    kind = kind_of(data)
    if kind is None:
        return []
    data = bytes(data)
    if kind == "file":
        blocks = FileRecord.from_bytes(data).blocks
        if span is not None:
            blocks = tuple(b for b in blocks if b.offset < span[1] and b.end > span[0]
                           and not (parts and _in_parts(b, span)))
        return [(b.id, False) for b in blocks]
    if kind in ("zarr", "directory"):
        return [(ref.id, ref.record) for ref in Manifest.from_bytes(data).items.values()]
    return []


def _in_parts(block: Block, span: Span) -> bool:
    """Whether a reader of bytes ``span`` of a file reads ``block`` of it in verified parts."""
    return block.tree is not None and in_part(block.length, *clip(block.offset, block.length, span))


def leaf_runs(data: bytes | memoryview, span: Span) -> list[tuple[ObjectId, int, int, int, str]]:
    """Of the blocks of a file record holding bytes ``span``, those read in verified parts
    (the others :func:`children` names with ``parts``), as ``(id, block size, first,
    last, tree root)``: ``[first, last)`` the run of its leaves holding its share of the
    span, as a reader asks for it; [] for any other object."""
    if kind_of(data) != "file":
        return []
    return [(b.id, b.length, *leaf_span(b.length, *clip(b.offset, b.length, span)), b.tree)
            for b in FileRecord.from_bytes(bytes(data)).blocks
            if b.tree is not None and b.offset < span[1] and b.end > span[0] and _in_parts(b, span)]


def zarr_metadata(data: bytes) -> list[ObjectId]:
    """The objects a reader opening a zarr store reads right after its manifest ([] for
    any other object): metadata documents and coordinate chunks not inline in it."""
    if kind_of(data) != "zarr":
        return []
    manifest = Manifest.from_bytes(data)
    meta = {k: v for k, v in manifest.inline.items() if is_metadata(k)}
    sizes = {k: r.size for k, r in manifest.items.items()}
    first = opening_keys(meta, sizes)
    return [manifest.items[k].id for k in first if not manifest.items[k].record]


def small_enough(size: int) -> bool:
    """Whether a value of ``size`` bytes is stored as one object (no record)."""
    return size <= MAX_BLOCK
