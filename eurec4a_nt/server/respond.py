"""Serving a ref's bytes over HTTP: Range requests, HEAD, ETag, and sendfile for
blocks that are plain local files."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import BinaryIO

from aiohttp import web

from ..errors import BadInput
from ..ids import ObjectId
from ..manifests import Ref, RefReader
from ..node import Node
from ..stores.base import ObjectStore

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


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
        raise BadInput(f"unsupported Range header {header!r}: use one 'bytes=start-end' range")
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
                    content_type: str = "application/octet-stream", etag: str | None = None,
                    immutable: bool = False,
                    extra_headers: Mapping[str, str] | None = None) -> web.StreamResponse:
    """Answer GET/HEAD for a ref, fetching missing blocks from other sites first.

    ``ETag`` is the ref's id (the bytes' identity), so ``If-None-Match`` gets a 304;
    ``immutable`` marks a response that can be cached forever (an object by its id).
    """
    etag = etag or ref.id
    cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
    headers = {"ETag": f'"{etag}"', "Cache-Control": cache, "Accept-Ranges": "bytes",
               "Content-Type": content_type, **(extra_headers or {})}
    if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    span = parse_range(request.headers.get("Range"), ref.size)
    start, end = span or (0, ref.size)
    headers["Content-Length"] = str(end - start)
    if span:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{ref.size}"
    status = 206 if span else 200
    if request.method == "HEAD":
        return web.Response(status=status, headers=headers)
    if ref.record:  # a holder elsewhere sends the blocks of the span along with the record
        await node.ensure([ref.id], site, spans={ref.id: (start, end)})
    reader = RefReader(ref, node.store.objects)
    blocks = await asyncio.to_thread(reader.blocks_for, start, end) if ref.size else []
    await node.ensure([b[0] for b in blocks], site)
    node.touch([ref.id, *(b[0] for b in blocks)])
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    store, loop = node.store.objects, asyncio.get_running_loop()
    for oid, offset, length in blocks:
        lo, hi = max(start - offset, 0), min(end - offset, length)
        transport = request.transport
        file = None
        if store.supports_local_paths and transport is not None and not transport.is_closing():
            file = await asyncio.to_thread(_open_local, store, oid)
        if file is None:
            if not await asyncio.to_thread(store.has, oid):  # evicted since: fetch it again
                await node.ensure([oid], site)
            await response.write(await asyncio.to_thread(store.get_range, oid, lo, hi))
            continue
        with file:
            await loop.sendfile(transport, file, lo, hi - lo)
    node.traffic.served += end - start
    await response.write_eof()
    return response


def _open_local(store: ObjectStore, oid: ObjectId) -> BinaryIO | None:
    """The object's local file opened for sendfile, or None (no file, or just evicted)."""
    path = store.local_path(oid)
    try:
        return open(path, "rb") if path else None
    except FileNotFoundError:
        return None
