"""Sending the blocks of one read into a response: with sendfile where the store holds
them as plain local files, else fetched a few at once ahead of the one being sent (an
object store such as S3), each checked against its id before a byte of it goes out.

Both fetch blocks this site lacks from other sites (:class:`LinkFetches`): whole, or,
where the read needs little of a block with a tree root and the link to its site takes
ranges, only the verified leaves holding what it needs. A sender is used as:
:meth:`first` before the response is prepared (so a missing or damaged first block is
a JSON error), :meth:`send` into the prepared response, :meth:`close` always.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, BinaryIO, Protocol, cast

from aiohttp import web

from ..errors import ObjectMissing
from ..hashtree import in_part
from ..ids import ObjectId
from ..manifests import Span, clip
from ..node import Node, Reader
from ..stores.base import ObjectStore
from ..tasks import consume

#: ``(id, offset in the file, length)`` of one block.
Block = tuple[ObjectId, int, int]
#: ``(start, end, block size, tree root)``: the bytes of a block a read needs, read in parts.
Part = tuple[int, int, int, str]

#: Block files opened per trip to a worker thread: a trip per block of about 1 MiB cost
#: as much CPU as sending the block and cut the throughput to 4 readers by a third.
OPEN_AHEAD = 8
#: Bytes of blocks fetched at once, ahead of the one being sent, from a store without
#: local files (about 16 blocks): what one read holds in memory at most, beyond one block.
#: The default of the server's ``read-ahead`` setting.
READ_AHEAD = 16 << 20


class BlockSender(Protocol):
    async def first(self) -> None: ...

    async def send(self, response: web.StreamResponse, request: web.Request) -> None: ...

    def close(self) -> None: ...


def sender(node: Node, site: str | None, reader: Reader, blocks: list[Block], span: Span,
           read_ahead: int, trees: dict[str, str], record: ObjectId | None = None) -> BlockSender:
    """The sender of bytes ``span`` of the file made of ``blocks`` (with tree roots
    ``trees``, by block id, in file ``record``) for this node's store; from a store
    without local files, ``read_ahead`` bytes of blocks are fetched ahead."""
    parts = in_parts(blocks, span, trees)
    if node.store.objects.supports_local_paths:
        return LocalBlocks(node, site, reader, blocks, span, parts, record)
    return FetchedBlocks(node, site, reader, blocks, span, read_ahead, parts, record)


def in_parts(blocks: list[Block], span: Span, trees: dict[str, str]) -> dict[int, Part]:
    """Of ``blocks``, by index, those with a tree root of which ``span`` needs little
    enough to read it in parts (see :func:`~eurec4a_nt.hashtree.in_part`)."""
    out = {}
    for i, (oid, offset, length) in enumerate(blocks):
        lo, hi = clip(offset, length, span)
        if oid in trees and in_part(length, lo, hi):
            out[i] = (lo, hi, length, trees[oid])
    return out


class LinkFetches:
    """Fetches the blocks of one read that this site lacks from other sites,
    :data:`AHEAD` blocks ahead of the one being sent, one fetch per block: the first
    bytes go out as soon as the first block is here, and no fetch waits for the whole
    of a long read.

    A block counts as ready as soon as it is held, however it came: a fetch can miss an
    object that landed (pushed with its record, or for another reader) just before the
    fetch began, so the store is checked again every :data:`RECHECK` seconds. Blocks in
    ``parts`` that this site lacks are read in verified parts instead (:meth:`part`).
    """

    #: Blocks asked for ahead of the one being sent (about 4 MiB on average).
    AHEAD = 4
    #: Seconds between checks whether a block being fetched is held by now.
    RECHECK = 1.0

    def __init__(self, node: Node, site: str | None, ids: list[ObjectId], reader: Reader,
                 spans: dict[ObjectId, Span] | None = None, parts: dict[int, Part] | None = None,
                 record: ObjectId | None = None) -> None:
        self.node = node
        self.parts = parts or {}
        self.record = record  #: the file record naming the blocks read in parts (a hub may relay them)
        self.got: dict[int, bytes] = {}  #: the first block's part, brought before sending
        self.reader = reader
        self.site = site
        self.ids = ids
        self.spans = spans
        self.missing: set[ObjectId] | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.part_tasks: dict[int, asyncio.Task[bytes | None]] = {}

    async def _lacks(self, i: int, lacking: bool) -> None:
        """Learn which blocks this site lacks (``lacking``: only that block ``i`` is)."""
        if lacking:
            self.missing = (self.missing or set()) | {self.ids[i]}
        elif self.missing is None:
            self.missing = set(await asyncio.to_thread(self.node.store.objects.missing, self.ids))

    def _ahead(self, i: int) -> None:
        """Start fetching the blocks lacking here from ``i`` on, :data:`AHEAD` of them,
        all at once: in parts those in :attr:`parts`, the others whole."""
        for j in range(i, min(i + self.AHEAD, len(self.ids))):
            if j in self.tasks or j in self.part_tasks or self.ids[j] not in (self.missing or ()):
                continue
            task: asyncio.Task[Any]
            if j in self.parts:
                start, end, size, tree = self.parts[j]
                task = self.part_tasks[j] = asyncio.create_task(
                    self.node.part(self.ids[j], start, end, size, tree, self.site, self.reader, self.record))
            else:
                task = self.tasks[j] = asyncio.create_task(
                    self.node.ensure([self.ids[j]], self.site, spans=self.spans, reader=self.reader))
            task.add_done_callback(consume)  # a read given up leaves fetches to finish

    async def ready(self, i: int, lacking: bool = False) -> None:
        """Return once block ``i`` is held here (raise as :meth:`Node.ensure` does);
        ``lacking``: the store just said it lacks block ``i`` (it is not asked which of
        the others it lacks: on S3 a request each)."""
        store = self.node.store.objects
        await self._lacks(i, lacking)
        if not self.missing:
            return
        self._ahead(i)
        pending = self.tasks.get(i)
        while pending is not None and not pending.done():  # never cancelled: others share fetches
            await asyncio.wait([pending], timeout=self.RECHECK)
            if not pending.done() and await asyncio.to_thread(store.has, self.ids[i]):
                return
        if pending is not None:
            pending.result()

    async def part(self, i: int, lacking: bool = False) -> bytes | None:
        """The bytes the read needs of block ``i`` if it is read in parts and this site
        lacks it (``lacking``: the store just said so), from its verified leaves; None
        if it is held, not read in parts, or no link brings parts (then :meth:`ready`
        brings it whole)."""
        if i in self.got:
            return self.got.pop(i)
        if i not in self.parts:
            return None
        await self._lacks(i, lacking)
        if self.ids[i] not in (self.missing or ()):
            return None
        self._ahead(i)
        got = await self.part_tasks.pop(i)
        if got is None:
            del self.parts[i]
        return got

    async def start(self) -> None:
        """Bring the first block (or the part of it the read needs), the next ones being
        fetched meanwhile: a missing one is an error before any byte goes out."""
        first = await self.part(0)
        if first is None:
            await self.ready(0)
        else:
            self.got[0] = first


class FetchedBlocks:
    """Blocks read from the store at once, ``read_ahead`` bytes of them ahead of the
    one being sent (on S3, concurrent GETs on s3fs's own event loop), in a window that
    slides as blocks are sent: memory holds at most the window and one block. Each block
    is checked against its id (:meth:`ObjectStore.fetch`), so a damaged object ends the
    read (a JSON error before the first byte, a response short of its
    ``Content-Length`` after) and is never sent. A block the store lacks is fetched from
    other sites first. A reader that hangs up while a block is awaited is noticed within
    :data:`HANGUP_CHECK` seconds; :meth:`close` cancels the fetches still running."""

    #: Seconds between checks, while a block is awaited, whether the reader hung up.
    HANGUP_CHECK = 0.5

    def __init__(self, node: Node, site: str | None, reader: Reader, blocks: list[Block], span: Span,
                 read_ahead: int, parts: dict[int, Part], record: ObjectId | None) -> None:
        self.store = node.store.objects
        self.blocks = blocks
        self.span = span
        self.read_ahead = read_ahead
        self.links = LinkFetches(node, site, [b[0] for b in blocks], reader, parts=parts, record=record)
        self.window: deque[asyncio.Task[bytes | memoryview]] = deque()
        self.window_bytes = 0
        self.queued = 0

    def _fill(self) -> None:
        """Start fetches until the window holds ``read_ahead`` bytes (one block at least)."""
        while self.queued < len(self.blocks):
            oid, _, length = self.blocks[self.queued]
            if self.window and self.window_bytes + length > self.read_ahead:
                return
            task = asyncio.create_task(self._block(self.queued), name=f"read-ahead {oid}")
            task.add_done_callback(consume)
            self.window.append(task)
            self.window_bytes += length
            self.queued += 1

    async def _block(self, i: int) -> bytes | memoryview:
        """The bytes of block ``i`` the read needs."""
        oid, offset, length = self.blocks[i]
        lo, hi = clip(offset, length, self.span)
        try:
            data = await self.store.fetch(oid)
        except ObjectMissing:
            part = await self.links.part(i, lacking=True)
            if part is not None:
                return part
            await self.links.ready(i, lacking=True)
            data = await self.store.fetch(oid)
        return memoryview(data)[lo:hi]

    async def first(self) -> None:
        self._fill()
        if self.window:
            await self.window[0]

    async def send(self, response: web.StreamResponse, request: web.Request) -> None:
        for _, _, length in self.blocks:
            self._fill()
            head = self.window[0]
            while not head.done():
                await asyncio.wait([head], timeout=self.HANGUP_CHECK)
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError("the reader hung up")
            data = self.window.popleft().result()
            self.window_bytes -= length
            await response.write(data)

    def close(self) -> None:
        for task in self.window:
            task.cancel()
        self.window.clear()


class LocalBlocks:
    """Blocks held as local files, sent with sendfile, opened :data:`OPEN_AHEAD` per
    trip to a worker thread; blocks this site lacks are fetched from other sites ahead
    of the one being sent. A block with no local file (evicted and fetched again
    meanwhile) is read from the store."""

    def __init__(self, node: Node, site: str | None, reader: Reader, blocks: list[Block], span: Span,
                 parts: dict[int, Part], record: ObjectId | None) -> None:
        self.node, self.site, self.reader = node, site, reader
        self.blocks = blocks
        self.span = span
        self.links = LinkFetches(node, site, [b[0] for b in blocks], reader, parts=parts, record=record)
        self.opened: dict[int, BinaryIO | None] = {}

    async def first(self) -> None:
        await self.links.start()

    async def send(self, response: web.StreamResponse, request: web.Request) -> None:
        store, loop = self.node.store.objects, asyncio.get_running_loop()
        for i, (oid, offset, length) in enumerate(self.blocks):
            part = await self.links.part(i)
            if part is not None:
                await response.write(part)
                continue
            await self.links.ready(i)
            lo, hi = clip(offset, length, self.span)
            transport = request.transport
            file = None
            if transport is not None and not transport.is_closing():
                if i not in self.opened:
                    ids = [b[0] for b in self.blocks[i:i + OPEN_AHEAD]]
                    self.opened.update(enumerate(await asyncio.to_thread(_open_all, store, ids), i))
                file = self.opened.pop(i)
                if file is None:  # not held when opened ahead; it may be by now
                    file = await asyncio.to_thread(_open_local, store, oid)
            if file is None:
                if not await asyncio.to_thread(store.has, oid):  # evicted since: fetch it again
                    await self.node.ensure([oid], self.site, reader=self.reader)
                await response.write(await asyncio.to_thread(store.get_range, oid, lo, hi))
                continue
            with file:
                await _send_file(loop, cast(asyncio.WriteTransport, transport), file, lo, hi - lo)

    def close(self) -> None:
        for file in self.opened.values():
            if file is not None:
                file.close()
        self.opened.clear()


async def _send_file(loop: asyncio.AbstractEventLoop, transport: asyncio.WriteTransport, file: BinaryIO,
                     offset: int, count: int) -> None:
    """``count`` bytes of ``file`` from ``offset`` to the reader; ConnectionResetError, with
    the transport closed, if the reader hung up meanwhile (sendfile says "Transport is
    closing", or the socket's own error comes first: a broken pipe, a reset)."""
    try:
        await loop.sendfile(transport, file, offset, count)
    except RuntimeError:
        if not transport.is_closing():
            raise
        raise ConnectionResetError("the reader hung up") from None
    except ConnectionError:
        transport.abort()  # the socket is gone: asyncio's sendfile leaves the transport open
        raise ConnectionResetError("the reader hung up") from None


def _open_all(store: ObjectStore, oids: list[ObjectId]) -> list[BinaryIO | None]:
    """:func:`_open_local` of each of ``oids`` (all closed again if one fails)."""
    files: list[BinaryIO | None] = []
    try:
        for oid in oids:
            files.append(_open_local(store, oid))
    except BaseException:
        for file in files:
            if file is not None:
                file.close()
        raise
    return files


def _open_local(store: ObjectStore, oid: ObjectId) -> BinaryIO | None:
    """The object's local file opened for sendfile, or None (no file, or just evicted)."""
    path = store.local_path(oid)
    try:
        return open(path, "rb") if path else None
    except FileNotFoundError:
        return None
