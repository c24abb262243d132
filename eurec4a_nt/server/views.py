"""``/zarr/<site>/<name>/<key>``: a netCDF4/HDF5 file entry as a zarr v2 store.

The keys come from the references kept in the entry's file record (see
:mod:`eurec4a_nt.references`): metadata documents are answered from the record, a
chunk with exactly its bytes of the file (fetched from the site holding them where
this site lacks them). The view is consolidated (``.zmetadata``), so
``xr.open_zarr("http://host/zarr/<site>/<name>")`` opens it with one request and then
asks for the chunks it reads.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..chunking import FileRecord
from ..entries import check_site, find_entry
from ..errors import NotFound
from ..manifests import entry_ref
from ..references import value_of, view_of
from ..zarrmeta import is_metadata
from .context import node
from .data import check_path
from .respond import serve_ref

routes = web.RouteTableDef()


@routes.get("/zarr/{site}/{path:.+}")
async def get_view(request: web.Request) -> web.StreamResponse:
    """A key of a file entry's zarr view; 404 for an entry without one."""
    site = check_site(request.match_info["site"])
    n = node(request)
    entry, key = find_entry(site, n.store.entries(site), check_path(request.match_info["path"]))
    if entry.kind != "file" or not key:
        raise NotFound(f"{entry.path}: a zarr view has keys inside a netCDF4/HDF5 file entry")
    await n.ensure([entry.root], site)
    data = await asyncio.to_thread(n.store.objects.get, entry.root)
    value = value_of(view_of(FileRecord.from_bytes(data), entry.path), key)
    if isinstance(value, tuple):
        offset, length = value
        return await serve_ref(request, n, entry_ref(entry), site=site, window=(offset, offset + length))
    content_type = "application/json" if is_metadata(key) else "application/octet-stream"
    n.traffic.served += len(value)
    return web.Response(body=value, content_type=content_type,
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
