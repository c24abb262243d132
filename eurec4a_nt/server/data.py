"""``/data/<site>/<name>[/<key>]``: entries as plain files, so stock tools work.

A file entry is served as one file assembled from its blocks (with Range, so
``xr.open_dataset`` through fsspec's HTTP filesystem reads lazily). Inside a zarr or
directory entry, ``/data/<site>/<name>/<key>`` serves that key, and a folder (the
entry itself, or a prefix of its keys) is served as a listing: HTML links by default,
which fsspec's HTTP filesystem understands, so ``xr.open_zarr("http://host/data/
<site>/<name>")`` finds the arrays; JSON with ``Accept: application/json``.
"""

from __future__ import annotations

import asyncio
import html
from urllib.parse import quote

from aiohttp import web

from ..entries import check_site, find_entry
from ..errors import BadInput, NotFound
from ..formats import guess_format, media_type
from ..manifests import load_manifest, resolve
from ..zarrmeta import METADATA
from .context import node, query_at, reader
from .respond import serve_ref, user_content_headers

routes = web.RouteTableDef()

_JSON_KEYS = METADATA


def check_path(path: str) -> str:
    """``path`` without a trailing ``/``; 400 for empty, ``.`` or ``..`` segments."""
    trimmed = path.removesuffix("/")
    if any(part in ("", ".", "..") for part in trimmed.split("/")):
        raise BadInput(f"bad path {path!r}: no empty, '.' or '..' parts allowed")
    return trimmed


@routes.get("/data/{site}/")
@routes.get("/data/{site}/{path:.+}")
@routes.get("/at/{at}/data/{site}/")
@routes.get("/at/{at}/data/{site}/{path:.+}")
async def get_data(request: web.Request) -> web.StreamResponse:
    """An entry's bytes, a key inside a zarr or directory entry, or a folder listing
    (of a folder of entries, or inside a zarr or directory entry); under
    ``/at/<point>`` or with ``?at=<point>``, as it was at that point of the site's log."""
    site = check_site(request.match_info["site"])
    path = check_path(request.match_info.get("path", "")) if request.match_info.get("path") else ""
    n = node(request)
    at = query_at(request)
    try:
        entries = n.store.entries(site) if at is None else await asyncio.to_thread(n.store.entries, site, at)
        entry, inner = find_entry(site, entries, path)
    except NotFound:
        index = await asyncio.to_thread(n.store.index, site, at)
        files, dirs = await asyncio.to_thread(index.children, f"{path}/" if path else "")
        if not (files or dirs or not path):
            raise
        return _listing(request, f"{site}/{path}".rstrip("/"), files, dirs,
                        {"site": site, "path": path, "files": files, "dirs": dirs})
    if entry.kind == "file":
        ref = resolve(entry, inner, n.store.objects.get)
        content_type = media_type(entry.format)
    else:
        await n.ensure([entry.root], site, reader=reader(request))
        manifest = await asyncio.to_thread(load_manifest, entry, n.store.objects.get)
        found = manifest.ref(inner)
        if found is None:
            files, dirs = manifest.listdir(inner)
            if inner and not (files or dirs):
                raise NotFound(f"{entry.path} has no {inner!r}")
            return _listing(request, f"{entry.path}/{inner}".rstrip("/"), files, dirs,
                            {"entry": entry.name, "kind": entry.kind, "path": inner,
                             "files": files, "dirs": dirs})
        ref = found
        content_type = "application/json" if inner.endswith(_JSON_KEYS) else media_type(guess_format(inner))
    return await serve_ref(request, n, ref, site=site, content_type=content_type)


def _listing(request: web.Request, path: str, files: list[str], dirs: list[str],
             body: dict[str, object]) -> web.Response:
    """The folder ``SITE/PATH``: ``body`` as JSON if asked for, else HTML links."""
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response(body)
    pin = ("at", request.match_info["at"]) if "at" in request.match_info else ()
    base = "/".join(quote(p, safe="") for p in (*pin, "data", *path.split("/")))
    title = html.escape(path)
    links = [f'<li><a href="{quote(d)}/">{html.escape(d)}/</a></li>' for d in dirs]
    links += [f'<li><a href="{quote(f)}">{html.escape(f)}</a></li>' for f in files]
    page = (f'<!doctype html>\n<html><head><meta charset="utf-8"><base href="/{base}/">'
            f"<title>{title}</title></head>\n<body><h1>{title}</h1>\n<ul>\n"
            + "\n".join(links) + "\n</ul></body></html>\n")
    return web.Response(text=page, content_type="text/html", headers=user_content_headers("text/html"))

