"""Serving a ref's bytes over HTTP: Range requests, HEAD, ETag, and sendfile for
blocks that are plain local files."""

from __future__ import annotations

import asyncio
import re
from typing import BinaryIO, cast

from aiohttp import web

from ..errors import BadInput, Corrupt
from ..ids import ObjectId
from ..manifests import Ref, RefReader, Span
from ..node import Node, Reader
from ..stores.base import ObjectStore
from ..tasks import consume
from .context import reader

#: One range of ASCII digits; 18 digits reach past any size stored (a longer number is refused).
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")
#: ``Cache-Control`` of bytes named by their id: they never change.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Block files opened per trip to a worker thread: a trip per block of about 1 MiB cost
#: as much CPU as sending the block and cut the throughput to 4 readers by a third.
OPEN_AHEAD = 8


def user_content_headers(content_type: str) -> dict[str, str]:
    """Headers of bytes published by users: browsers take the served type as given (no
    sniffing a PNG into HTML), and a page (HTML, SVG ...) runs in a sandbox with an
    origin of its own, so its scripts cannot act on this server with the reader's
    credentials. PDF is left out of the sandbox: browsers' PDF viewers refuse it, and
    they run a PDF's scripts apart from the site's origin anyway."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if content_type != "application/pdf":
        headers["Content-Security-Policy"] = "sandbox"
    return headers


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (quoted; weak tags and ``*`` count)."""
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single-range ``Range`` header, or None for the whole.

    Raises 416 for a range outside the object and 400 for a malformed header.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or match.groups() == ("", ""):
        raise BadInput(f"unsupported Range header {header[:80]!r}: use one 'bytes=start-end' range "
                       "(numbers of at most 18 digits)")
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


async def serve_ref(request: web.Request, node: Node, ref: Ref, *, site: str | None,
                    content_type: str = "application/octet-stream",
                    immutable: bool = False, window: Span | None = None) -> web.StreamResponse:
    """Answer GET/HEAD for a ref, fetching blocks this site lacks from other sites.

    With ``window``, bytes ``[start, end)`` of the ref are served as if they were the
    whole (a chunk inside a file), and only blocks holding them are fetched.
    ``ETag`` is the ref's id (the bytes' identity), so ``If-None-Match`` gets a 304;
    ``immutable`` marks a response that can be cached forever (an object by its id).
    Blocks held elsewhere are fetched a few ahead of the one being sent, so a long read
    streams as they arrive. An error before the first byte is a JSON error; one later
    ends the response early (short of its ``Content-Length``), never with wrong bytes.
    """
    cache = IMMUTABLE if immutable else "no-cache"
    base, size = (window[0], window[1] - window[0]) if window else (0, ref.size)
    etag = f'"{ref.id}-{window[0]}-{window[1]}"' if window else f'"{ref.id}"'
    headers = {"ETag": etag, "Cache-Control": cache, "Accept-Ranges": "bytes",
               "Content-Type": content_type, **user_content_headers(content_type)}
    if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    span = parse_range(request.headers.get("Range"), size)
    start, end = span or (0, size)
    headers["Content-Length"] = str(end - start)
    if span:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    status = 206 if span else 200
    if request.method == "HEAD":
        return web.Response(status=status, headers=headers)
    start, end = base + start, base + end
    if ref.data is not None:  # inline in its manifest
        node.traffic.served += end - start
        return web.Response(status=status, headers=headers, body=ref.data[start:end])
    who = reader(request)
    if ref.record:  # the record, and (where it comes from a link) the blocks of the range
        await _Ahead(node, site, [ref.id], who, {ref.id: (start, end)}).ready(0)
    blocks = await asyncio.to_thread(RefReader(ref, node.store.objects).blocks_for, start, end) if ref.size else []
    fetcher = _Ahead(node, site, [b[0] for b in blocks], who)
    await fetcher.ready(0)
    if blocks and not ref.record and await asyncio.to_thread(node.store.objects.size, ref.id) != ref.size:
        raise Corrupt(f"object {ref.id.short} does not have the {ref.size} bytes its entry says")
    node.touch([ref.id, *(b[0] for b in blocks)])
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    store, loop = node.store.objects, asyncio.get_running_loop()
    opened: dict[int, BinaryIO | None] = {}  # block files opened ahead, a few per thread trip
    try:
        for i, (oid, offset, length) in enumerate(blocks):
            await fetcher.ready(i)
            lo, hi = max(start - offset, 0), min(end - offset, length)
            transport = request.transport
            file = None
            if store.supports_local_paths and transport is not None and not transport.is_closing():
                if i not in opened:
                    ids = [b[0] for b in blocks[i:i + OPEN_AHEAD]]
                    opened.update(enumerate(await asyncio.to_thread(_open_all, store, ids), i))
                file = opened.pop(i)
                if file is None:  # not held when opened ahead; it may be by now
                    file = await asyncio.to_thread(_open_local, store, oid)
            if file is None:
                if not await asyncio.to_thread(store.has, oid):  # evicted since: fetch it again
                    await node.ensure([oid], site, reader=who)
                await response.write(await asyncio.to_thread(store.get_range, oid, lo, hi))
                continue
            with file:
                await _send_file(loop, cast(asyncio.WriteTransport, transport), file, lo, hi - lo)
    finally:
        for file in opened.values():
            if file is not None:
                file.close()
    node.traffic.served += end - start
    await response.write_eof()
    return response


async def _send_file(loop: asyncio.AbstractEventLoop, transport: asyncio.WriteTransport, file: BinaryIO,
                     offset: int, count: int) -> None:
    """``count`` bytes of ``file`` from ``offset`` to the reader; ConnectionResetError if
    the reader hung up meanwhile (sendfile says "Transport is closing")."""
    try:
        await loop.sendfile(transport, file, offset, count)
    except RuntimeError:
        if not transport.is_closing():
            raise
        raise ConnectionResetError("the reader hung up") from None


class _Ahead:
    """Fetches the blocks of one read that this site lacks, :data:`AHEAD` blocks ahead
    of the one being sent, one fetch per block: the first bytes go out as soon as the
    first block is here, and no fetch waits for the whole of a long read.

    A block counts as ready as soon as it is held, however it came: a fetch can miss an
    object that landed (pushed with its record, or for another reader) just before the
    fetch began, so the store is checked again every :data:`RECHECK` seconds.
    """

    #: Blocks asked for ahead of the one being sent (about 4 MiB on average).
    AHEAD = 4
    #: Seconds between checks whether a block being fetched is held by now.
    RECHECK = 1.0

    def __init__(self, node: Node, site: str | None, ids: list[ObjectId], reader: Reader,
                 spans: dict[ObjectId, Span] | None = None) -> None:
        self.node = node
        self.reader = reader
        self.site = site
        self.ids = ids
        self.spans = spans
        self.missing: set[ObjectId] | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}

    async def ready(self, i: int) -> None:
        """Return once block ``i`` is held here (raise as :meth:`Node.ensure` does)."""
        store = self.node.store.objects
        if self.missing is None:
            self.missing = set(await asyncio.to_thread(store.missing, self.ids))
        if not self.missing:
            return
        for j in range(i, min(i + self.AHEAD, len(self.ids))):
            if j not in self.tasks and self.ids[j] in self.missing:
                task = asyncio.create_task(self.node.ensure([self.ids[j]], self.site, spans=self.spans,
                                                             reader=self.reader))
                task.add_done_callback(consume)  # a read given up leaves fetches to finish
                self.tasks[j] = task
        pending = self.tasks.get(i)
        while pending is not None and not pending.done():  # never cancelled: others share fetches
            await asyncio.wait([pending], timeout=self.RECHECK)
            if not pending.done() and await asyncio.to_thread(store.has, self.ids[i]):
                return
        if pending is not None:
            pending.result()


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
