"""``/data/<site>/<name>[/<key>]``: entries as plain files, so stock tools work.

A file entry is served as one file assembled from its blocks (with Range, so
``xr.open_dataset`` through fsspec's HTTP filesystem reads lazily). Inside a zarr or
directory entry, ``/data/<site>/<name>/<key>`` serves that key, so
``xr.open_zarr("http://host/data/<site>/<name>")`` opens the dataset.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..entries import check_site, find_entry
from ..formats import guess_format, media_type
from ..manifests import load_manifest, resolve
from .context import node
from .respond import serve_ref

routes = web.RouteTableDef()


@routes.get("/data/{site}/{path:.+}")
async def get_data(request: web.Request) -> web.StreamResponse:
    site = check_site(request.match_info["site"])
    n = node(request)
    entry, inner = find_entry(site, n.store.entries(site), request.match_info["path"])
    if entry.kind != "file":
        await n.ensure([entry.root], site)
        if not inner or inner.endswith("/"):
            manifest = await asyncio.to_thread(load_manifest, entry, n.store.objects.get)
            files, dirs = manifest.listdir(inner)
            return web.json_response({"entry": entry.name, "kind": entry.kind, "path": inner,
                                      "files": files, "dirs": dirs})
    ref = await asyncio.to_thread(resolve, entry, inner, n.store.objects.get)
    fmt = entry.format if entry.kind == "file" else guess_format(inner)
    content_type = "application/json" if inner.endswith(("zarr.json", ".zarray", ".zgroup",
                                                         ".zattrs", ".zmetadata")) else media_type(fmt)
    return await serve_ref(request, n, ref, site=site, content_type=content_type)
