"""``/objects``: content-addressed objects, one at a time or many per request."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..errors import BadInput, ObjectMissing, Pending
from ..frames import header, read_frames
from ..ids import ObjectId
from ..manifests import Ref
from .context import node, require_write
from .respond import serve_ref

routes = web.RouteTableDef()

#: Objects buffered from an upload before they are verified and written together.
_UPLOAD_BATCH = 32 << 20


async def json_ids(request: web.Request) -> tuple[list[ObjectId], dict[str, Any]]:
    """The ``ids`` list of a JSON body, each validated."""
    try:
        body = await request.json()
    except ValueError:
        raise BadInput("request body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
        raise BadInput('expected a JSON object {"ids": [...]}')
    return [ObjectId.parse(i) for i in body["ids"]], body


@routes.get("/objects/{id}")
async def get_object(request: web.Request) -> web.StreamResponse:
    """One object (Range and HEAD supported); fetched from another site if needed."""
    oid = ObjectId.parse(request.match_info["id"])
    n = node(request)
    site = request.query.get("site")
    await n.ensure([oid], site)
    size = await asyncio.to_thread(n.store.objects.size, oid)
    return await serve_ref(request, n, Ref(oid, size), site=site, immutable=True)


@routes.post("/objects/missing")
async def missing(request: web.Request) -> web.Response:
    """Which of ``ids`` this server lacks."""
    ids, _ = await json_ids(request)
    lacking = await asyncio.to_thread(node(request).store.objects.missing, ids)
    return web.json_response({"missing": lacking})


@routes.post("/objects/batch")
async def batch(request: web.Request) -> web.StreamResponse:
    """Many objects in one framed response; objects not obtainable now get length -1."""
    ids, body = await json_ids(request)
    n = node(request)
    try:
        await n.ensure(ids, body.get("site"))
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
    """Store framed objects; each is verified against its id before it is kept."""
    require_write(request)
    n = node(request)
    pending: list[tuple[ObjectId, bytes]] = []
    size = received = stored = total = 0
    async for oid, data in read_frames(request.content):
        if data is None:
            continue
        pending.append((oid, data))
        size += len(data)
        total += len(data)
        received += 1
        if size >= _UPLOAD_BATCH:
            stored += len(await n.put_objects(pending))
            pending, size = [], 0
    stored += len(await n.put_objects(pending))
    n.traffic.uploaded += total
    return web.json_response({"received": received, "stored": stored})


@routes.put("/objects/{id}")
async def put_object(request: web.Request) -> web.Response:
    """Store one object; 422 if the body does not hash to the id."""
    require_write(request)
    oid = ObjectId.parse(request.match_info["id"])
    data = await request.read()
    new = await node(request).put_objects([(oid, data)])
    return web.json_response({"id": oid, "stored": bool(new)}, status=201 if new else 200)
