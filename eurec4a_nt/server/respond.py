"""Serving a ref's bytes over HTTP: Range requests, HEAD, ETag; the blocks go out
through :mod:`.blocks` (sendfile for local files, read-ahead from an object store)."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web

from ..errors import BadInput, Corrupt, NTError
from ..manifests import Ref, RefReader, Span
from ..node import Node
from .blocks import LinkFetches, sender
from .context import CONFIG, reader

log = logging.getLogger(__name__)

#: One range of ASCII digits; 18 digits reach past any size stored (a longer number is refused).
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")
#: ``Cache-Control`` of bytes named by their id: they never change.
IMMUTABLE = "public, max-age=31536000, immutable"


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
    streams as they arrive; from an object store, blocks are read several at once
    ahead and each checked against its id before it is sent (see :mod:`.blocks`).
    An error before the first byte is a JSON error; one later ends the response early
    (short of its ``Content-Length``), never with wrong bytes.
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
        await LinkFetches(node, site, [ref.id], who, {ref.id: (start, end)}).ready(0)
    refs = RefReader(ref, node.store.objects)
    blocks = await asyncio.to_thread(refs.blocks_for, start, end) if ref.size else []
    trees = await asyncio.to_thread(refs.trees) if blocks else {}
    blocks_out = sender(node, site, who, blocks, (start, end), request.app[CONFIG].read_ahead, trees,
                        ref.id if ref.record else None)
    try:
        await blocks_out.first()
        if blocks and not ref.record and await asyncio.to_thread(node.store.objects.size, ref.id) != ref.size:
            raise Corrupt(f"object {ref.id.short} does not have the {ref.size} bytes its entry says")
        node.touch([ref.id, *(b[0] for b in blocks)])
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        try:
            await blocks_out.send(response, request)
        except NTError as exc:  # the headers are out: end the response short of its length
            log.warning("%s %s ended after its headers: %s", request.method, request.path, exc)
            if request.transport is not None:
                request.transport.close()
            return response
    finally:
        blocks_out.close()
    node.traffic.served += end - start
    await response.write_eof()
    return response
