"""``/catalog.yaml`` and ``/sites/<site>/catalog.yaml``: intake catalogs of this
server's view of every site; entries read through ``nt://`` from this server, falling
back to the other places the keyring names (see :func:`read_options`).

Like every small GET answer they carry an ETag of their body and ``Cache-Control:
no-cache`` (see :func:`~eurec4a_nt.server.app.revalidatable`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import catalog as catalogs
from ..entries import check_site
from ..node import Node
from .context import base_url, node

routes = web.RouteTableDef()


def read_options(n: Node, site: str, own_url: str) -> dict[str, Any]:
    """Where a reader of ``site``'s entries gets them, nearest first: this server, then
    the URLs the keyring gives for ``site`` (which published them), then those of the
    other sites (the hub, mirrors)."""
    known = n.store.keyring.sites
    urls = list(known[site].urls) if site in known else []
    urls += [u for name, s in sorted(known.items()) if name not in (site, n.site) for u in s.urls]
    mirrors = [u for u in dict.fromkeys(u.rstrip("/") for u in urls) if u != own_url]
    return {"server": own_url, "mirrors": mirrors} if mirrors else {"server": own_url}

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
    body = catalogs.site_catalog(site, entries, read_options(n, site, base_url(request)))
    return web.Response(text=catalogs.dump(body), content_type=YAML)
