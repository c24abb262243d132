"""``/catalog.yaml`` and ``/sites/<site>/catalog.yaml``: intake catalogs of this
server's view of every site; entries read through ``nt://`` from this server.

Like every small GET answer they carry an ETag of their body and ``Cache-Control:
no-cache`` (see :func:`~eurec4a_nt.server.app.revalidatable`)."""

from __future__ import annotations

from aiohttp import web

from .. import catalog as catalogs
from ..entries import check_site
from .context import base_url, node

routes = web.RouteTableDef()

YAML = "application/yaml"


@routes.get("/catalog.yaml")
async def top(request: web.Request) -> web.Response:
    n = node(request)
    body = catalogs.top_catalog(n.store.summary(), base_url(request) + "/sites/{site}/catalog.yaml")
    return web.Response(text=catalogs.dump(body), content_type=YAML)


@routes.get("/sites/{site}/catalog.yaml")
async def site_catalog(request: web.Request) -> web.Response:
    n = node(request)
    site = check_site(request.match_info["site"])
    entries = n.store.entries(site)
    body = catalogs.site_catalog(site, entries, {"server": base_url(request)})
    return web.Response(text=catalogs.dump(body), content_type=YAML)
