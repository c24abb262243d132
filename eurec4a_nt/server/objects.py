"""``/objects``: content-addressed objects, one at a time or many per request."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .. import hashtree
from ..chunking import MAX_BLOCK
from ..entries import check_site
from ..errors import BadInput, ObjectMissing, Pending
from ..frames import header, read_frames
from ..ids import ObjectId
from ..manifests import Ref
from ..node import Node
from ..parts import Part
from ..schema import IdsBody, decode
from .context import CONFIG, node, read_body, reader, require_write
from .respond import IMMUTABLE, parse_range, serve_ref

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: Objects buffered from an upload before they are verified and written together; one
#: batch is written while the next is received.
_UPLOAD_BATCH = 4 << 20
#: Ids one ``POST /objects/urls`` may ask for (an answer of about 150 KB on S3).
MAX_URLS = 256


async def json_ids(request: web.Request) -> IdsBody:
    """The body ``{"ids": [...], "site": ...}`` of the batch endpoints, strictly parsed (400 otherwise)."""
    return decode(await read_body(request), IdsBody, "expected a JSON object {\"ids\": [...]}")


def site_hint(request: web.Request) -> str | None:
    """The ``?site=`` hint: which site's entry an object belongs to (400 if malformed)."""
    site = request.query.get("site")
    return check_site(site) if site is not None else None


@routes.get("/objects/{id}")
async def get_object(request: web.Request) -> web.StreamResponse:
    """One object (Range and HEAD supported); fetched from another site if needed."""
    oid = ObjectId.parse(request.match_info["id"])
    n = node(request)
    site = site_hint(request)
    if f'"{oid}"' in request.headers.get("If-None-Match", ""):  # the client holds it already
        return web.Response(status=304, headers={"ETag": f'"{oid}"', "Cache-Control": IMMUTABLE})
    if request.query.get("proof") and request.query.get("record"):
        relayed = await _relayed(request, n, oid, site)
        if relayed is not None:
            return relayed
    await n.ensure([oid], site, reader=reader(request))
    size = await asyncio.to_thread(n.store.objects.size, oid)
    if request.query.get("proof"):
        return await _proven(request, n, oid, size)
    return await serve_ref(request, n, Ref(oid, size), site=site, immutable=True)


async def _proven(request: web.Request, n: Node, oid: ObjectId, size: int) -> web.Response:
    """``?proof=1``: the leaves holding the requested range, after the hashes that prove
    them against the block's hash tree root (``X-Proof-Hashes`` of 32 bytes each)."""
    start, end = parse_range(request.headers.get("Range"), size) or (0, size)
    first, last = hashtree.span(size, start, end)
    data = await asyncio.to_thread(n.store.objects.get, oid)
    proof = await asyncio.to_thread(hashtree.prove, data, first, last)
    return _with_proof(n, Part(oid, size, first, proof, data[first:last]))


async def _relayed(request: web.Request, n: Node, oid: ObjectId, site: str | None) -> web.Response | None:
    """``?proof=1&record=<id>`` for a range of a block this site lacks: the leaves holding
    it, fetched from the block's site and verified here against the tree root in file
    ``record`` (see :meth:`Node.proven`), with their proof. None where the block is held
    here, the whole is asked, or no link brings parts (then the block is fetched whole)."""
    record = ObjectId.parse(request.query["record"])
    span = parse_range(request.headers.get("Range"), MAX_BLOCK)
    if span is None or await asyncio.to_thread(n.store.objects.has, oid):
        return None
    part = await n.proven(oid, *span, record, site, reader(request))
    return None if part is None else _with_proof(n, part)


def _with_proof(n: Node, part: Part) -> web.Response:
    """The answer carrying ``part``: its proof hashes, then its leaves."""
    n.traffic.served += len(part.data)
    return web.Response(status=206, body=b"".join(part.proof) + part.data, headers={
        "Content-Type": "application/octet-stream", "X-Proof-Hashes": str(len(part.proof)),
        "Content-Range": f"bytes {part.first}-{part.last - 1}/{part.size}", "Cache-Control": IMMUTABLE})


@routes.post("/objects/missing")
async def missing(request: web.Request) -> web.Response:
    """Which of ``ids`` this server lacks."""
    ids = [ObjectId.parse(i) for i in (await json_ids(request)).ids]
    lacking = await asyncio.to_thread(node(request).store.objects.missing, ids)
    return web.json_response({"missing": lacking})


@routes.post("/objects/urls")
async def urls(request: web.Request) -> web.Response:
    """Where a reader may GET each of ``ids`` straight from the object store, with
    ``--direct-reads``: ``{"urls": {id: url}, "expires_in": seconds}`` (no URLs when not
    offered, or from a store that has none). At most :data:`MAX_URLS` ids."""
    ids = [ObjectId.parse(i) for i in (await json_ids(request)).ids]
    if len(ids) > MAX_URLS:
        raise BadInput(f"{len(ids)} ids asked for URLs: at most {MAX_URLS} per request")
    expires = request.app[CONFIG].direct_reads
    if expires is None or not ids:
        return web.json_response({"urls": {}, "expires_in": 0})
    found = await asyncio.to_thread(node(request).store.objects.urls, ids, expires)
    return web.json_response({"urls": found, "expires_in": expires if found else 0})


@routes.post("/objects/batch")
async def batch(request: web.Request) -> web.StreamResponse:
    """Many objects in one framed response; objects not obtainable now get length -1."""
    body = await json_ids(request)
    ids = [ObjectId.parse(i) for i in body.ids]
    n = node(request)
    try:
        await n.ensure(ids, body.site, reader=reader(request))
    except (Pending, ObjectMissing):
        pass  # send what is here; the rest are marked absent
    response = web.StreamResponse(headers={"Content-Type": "application/x-eurec4a-nt-frames"})
    await response.prepare(request)
    store = n.store.objects
    for oid in ids:
        try:
            data = await asyncio.to_thread(store.get, oid)
        except ObjectMissing:
            await response.write(header(oid, -1))
            continue
        await response.write(header(oid, len(data)) + data)
        n.traffic.served += len(data)
    n.touch(ids)
    await response.write_eof()
    return response


@routes.post("/objects")
async def upload(request: web.Request) -> web.Response:
    """Store framed objects; each is verified against its id before it is kept.

    One batch is verified and written while the next is received. If the body is cut
    short, the objects received whole before the cut are kept (so a retry sends only
    the rest) and the answer is 400.
    """
    require_write(request)
    n = node(request)
    pending: list[tuple[ObjectId, bytes]] = []
    size = received = stored = 0
    writing: asyncio.Future[list[ObjectId]] | None = None

    async def write(batch: list[tuple[ObjectId, bytes]]) -> None:
        """Wait for the batch being written (raising its error), then start ``batch``."""
        nonlocal writing, stored
        if writing is not None:
            done, writing = writing, None
            stored += len(await done)
        if batch:
            writing = asyncio.ensure_future(n.put_objects(batch))

    try:
        async for oid, data in read_frames(request.content):
            if data is None:
                continue
            pending.append((oid, data))
            size += len(data)
            received += 1
            n.traffic.uploaded += len(data)
            if size >= _UPLOAD_BATCH:
                await write(pending)
                pending, size = [], 0
    except BadInput:  # cut short: keep what arrived whole, then say so
        await write(pending)
        await write([])
        raise
    except BaseException:  # a batch still being written finishes on its own
        if writing is not None:
            writing.add_done_callback(_log_failure)
        raise
    await write(pending)
    await write([])
    return web.json_response({"received": received, "stored": stored})


def _log_failure(done: asyncio.Future[list[ObjectId]]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("writing part of an abandoned upload failed: %s", done.exception())


@routes.put("/objects/{id}")
async def put_object(request: web.Request) -> web.Response:
    """Store one object; 422 if the body does not hash to the id."""
    require_write(request)
    oid = ObjectId.parse(request.match_info["id"])
    data = await read_body(request)
    new = await node(request).put_objects([(oid, data)])
    return web.json_response({"id": oid, "stored": bool(new)}, status=201 if new else 200)
