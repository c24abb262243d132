"""Content-defined blocks and file records.

A file is cut into blocks with FastCDC (about 1 MiB on average, 4 MiB at most), so
inserting bytes changes only the blocks around the insertion and appending changes
only the tail. A :class:`FileRecord` lists the blocks and is itself stored as an
object; its id is the root of a file entry.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pyfastcdc import FastCDC

from . import hashtree
from .errors import Corrupt
from .ids import Hashed, ObjectId
from .schema import FileRecordBody, decode

AVG_BLOCK = 1 << 20
MIN_BLOCK = 128 << 10
MAX_BLOCK = 4 << 20
#: Bytes read at once for cutting (at least a few blocks of the largest size).
_SEGMENT = 8 << 20
#: Bytes of blocks cut and hashed ahead of the one being stored or uploaded.
_READ_AHEAD = 16 << 20

_cdc = threading.local()


def _chunker() -> FastCDC:
    """One FastCDC instance per thread (instances are not thread-safe)."""
    if not hasattr(_cdc, "instance"):
        _cdc.instance = FastCDC(AVG_BLOCK, min_size=MIN_BLOCK, max_size=MAX_BLOCK)
    return _cdc.instance


@dataclass(frozen=True)
class Block:
    """One block of a file: its id, where it starts and how long it is."""

    id: ObjectId
    offset: int
    length: int
    tree: str | None = None  # hash tree root (see hashtree.py), where parts are read verified

    @property
    def end(self) -> int:
        return self.offset + self.length


#: A key of a file's zarr view: its bytes (text, or ``base64:`` and base64), or the
#: ``(offset, length)`` of its bytes in the file.
Reference = str | tuple[int, int]


@dataclass(frozen=True)
class FileRecord:
    """The blocks of one file and its size.

    Records written before blocks were the only hash of a file carry its whole-file
    SHA-256 too (``sha256``); it is kept when such a record is read and written back.
    A netCDF4/HDF5 file's record carries ``refs``: its variables as zarr v2 keys (see
    :mod:`eurec4a_nt.references`), so a reader asks for exactly the bytes of a chunk.
    """

    size: int
    blocks: tuple[Block, ...]
    sha256: str | None = None
    refs: dict[str, Reference] | None = None

    def to_bytes(self) -> bytes:
        body: dict[str, object] = {"type": "file", "size": self.size}
        if self.sha256 is not None:
            body["sha256"] = self.sha256
        body["blocks"] = [[b.id, b.offset, b.length, *([b.tree] if b.tree else [])] for b in self.blocks]
        if self.refs is not None:
            body["refs"] = {k: v if isinstance(v, str) else list(v) for k, v in sorted(self.refs.items())}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> FileRecord:
        """Parse a stored record; raise :class:`Corrupt` if it is not one, or if its
        blocks do not tile exactly its size."""
        body = decode(data, FileRecordBody, "damaged file record", error=Corrupt)
        blocks = tuple(Block(ObjectId.parse(b.id), b.offset, b.length, b.tree) for b in body.blocks)
        expected = 0
        for block in blocks:
            if block.offset != expected:
                raise Corrupt("damaged file record: blocks do not tile the file")
            expected = block.end
        if expected != body.size:
            raise Corrupt("damaged file record: blocks do not add up to its size")
        refs: dict[str, Reference] | None = None
        if body.refs is not None:
            refs = {}
            for key, value in body.refs.items():
                if isinstance(value, list):
                    if value[0] + value[1] > body.size:
                        raise Corrupt(f"damaged file record: reference {key!r} points past the end")
                    refs[key] = (value[0], value[1])
                else:
                    refs[key] = value
        return cls(body.size, blocks, body.sha256, refs)


def _hashes(data: bytes | memoryview, trees: bool) -> tuple[ObjectId, str | None]:
    """A block's id and, with ``trees``, its hash tree root."""
    return ObjectId.of(data), hashtree.root(data) if trees else None


def cut_bytes(data: bytes, trees: bool = False) -> Iterator[tuple[Block, bytes]]:
    """Cut bytes held in memory into content-defined blocks (with ``trees``, each with
    its hash tree root)."""
    view = memoryview(data)
    for chunk in _chunker().cut_buf(view):
        piece = data if chunk.length == len(data) else bytes(chunk.data)  # one block: no copy
        oid, tree = _hashes(piece, trees)
        yield Block(oid, chunk.offset, chunk.length, tree), piece


def _cut_segments(path: str | os.PathLike[str]) -> Iterator[tuple[int, memoryview]]:
    """The offset and bytes of each block of the file, the blocks :func:`cut_bytes` cuts
    from all of it, read :data:`_SEGMENT` bytes at a time.

    Each block is a read-only view of the segment read, which stays immutable: no block
    is copied, and the bytes hashed are the bytes stored. FastCDC cuts a block from its
    start alone, so every block that ends before its segment does is final; the one that
    reaches the segment's end is cut again from the start of the next segment, which is
    read from that block's offset (a few percent of the file read twice from the page
    cache, instead of every byte moved once more in memory)."""
    with open(path, "rb") as f:  # buffered: read(n) returns n bytes unless the file ends
        offset = 0
        while segment := f.read(_SEGMENT):
            view = memoryview(segment)
            last = len(segment) < _SEGMENT
            for chunk in _chunker().cut_buf(view):
                if not last and chunk.offset + chunk.length == len(segment):
                    break  # may go on in the next segment
                yield offset + chunk.offset, chunk.data
            else:
                return
            offset += chunk.offset
            f.seek(offset)


@functools.cache
def _hashers() -> ThreadPoolExecutor:
    """Threads that hash blocks while the cutting thread (which holds the GIL) cuts on."""
    return ThreadPoolExecutor(2, thread_name_prefix="eurec4a-nt-hash")


_Cut = tuple["Future[tuple[ObjectId, str | None]]", int, int, memoryview]


class _CutAhead:
    """``cut`` of the file at ``path``, run in a thread up to ``limit`` bytes ahead of the
    consumer, so that reading, cutting, hashing (in :func:`_hashers`) and storing or
    uploading overlap.

    Iterate over it once. Memory stays bounded by ``limit`` plus the segments (see
    :func:`_cut_segments`) that blocks still held by the consumer lie in; an error of
    the reader is raised to the consumer; a consumer that stops early (``close()``)
    stops the thread.
    """

    def __init__(self, path: str | os.PathLike[str], trees: bool = False, limit: int = _READ_AHEAD) -> None:
        self.path, self.limit, self.trees = path, limit, trees
        self.ready: deque[_Cut] = deque()
        self.held = 0
        self.done = self.stop = False
        self.error: BaseException | None = None
        self.changed = threading.Condition()

    def _read(self) -> None:
        try:
            for offset, data in _cut_segments(self.path):
                item = (_hashers().submit(_hashes, data, self.trees), offset, len(data), data)
                with self.changed:  # when full, wait until half is taken (fewer wake-ups)
                    if self.held >= self.limit:
                        self.changed.wait_for(lambda: self.held <= self.limit // 2 or self.stop)
                    if self.stop:
                        return
                    self.ready.append(item)
                    self.held += len(data)
                    self.changed.notify_all()
        except BaseException as exc:  # noqa: BLE001 - raised in the consumer's thread
            self.error = exc
        finally:
            with self.changed:
                self.done = True
                self.changed.notify_all()

    def __iter__(self) -> Iterator[tuple[Block, memoryview]]:
        reader = threading.Thread(target=self._read, name="eurec4a-nt-cut", daemon=True)
        reader.start()
        try:
            while True:
                with self.changed:
                    self.changed.wait_for(lambda: self.ready or self.done)
                    if not self.ready:
                        break
                    hashing, offset, length, data = self.ready.popleft()
                    self.held -= length
                    if self.held <= self.limit // 2:
                        self.changed.notify_all()
                oid, tree = hashing.result()
                yield Block(oid, offset, length, tree), data
            if self.error is not None:
                raise self.error
        finally:
            with self.changed:
                self.stop = True
                self.changed.notify_all()
            reader.join()


PutBlocks = Callable[[Iterator[Hashed]], object]


def record_file(
    path: str | os.PathLike[str],
    put_blocks: PutBlocks,
    progress: Callable[[int], None] | None = None,
    trees: bool = False,
) -> FileRecord:
    """Cut the file at ``path`` into blocks, hand them to ``put_blocks`` and return its record.

    Every byte is hashed once, for its block's id, and that hash is the store's check
    of the write; with ``trees`` (for files read in verified parts) once more, for the
    block's hash tree root (see :mod:`.hashtree`), in the same hashing thread. A file
    larger than one block is cut and hashed in a thread a little ahead of
    ``put_blocks`` (see :class:`_CutAhead`), so that reading and hashing overlap with
    storing or uploading. ``progress`` is called with byte counts. Raise
    :class:`Corrupt` if the file changes size while it is read.
    """
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(size + 1) if size <= MAX_BLOCK else None  # one more: a file that grew
    if data is not None:
        record = record_bytes(data, put_blocks, trees)
        if progress and data:
            progress(len(data))
    else:
        blocks: list[Block] = []

        def produce() -> Generator[Hashed, None, None]:
            for block, data in _CutAhead(path, trees):
                blocks.append(block)
                yield Hashed(block.id, data)
                if progress:
                    progress(block.length)

        items = produce()
        try:
            put_blocks(items)
        finally:
            items.close()  # stops the cutting thread if put_blocks stopped early
        record = FileRecord(blocks[-1].end if blocks else 0, tuple(blocks))
    if record.size != os.path.getsize(path):
        raise Corrupt(f"{os.fspath(path)} changed while it was being published; publish it again")
    return record


def record_bytes(data: bytes, put_blocks: PutBlocks, trees: bool = False) -> FileRecord:
    """Like :func:`record_file` for bytes held in memory."""
    blocks: list[Block] = []

    def produce() -> Iterator[Hashed]:
        for block, piece in cut_bytes(data, trees):
            blocks.append(block)
            yield Hashed(block.id, piece)

    put_blocks(produce())
    return FileRecord(len(data), tuple(blocks))
