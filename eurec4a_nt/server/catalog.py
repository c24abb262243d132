"""Catalogs: stock intake YAML (``/catalog.yaml``, ``/sites/<site>/catalog.yaml``,
``/sites/<site>/<folder>/catalog.yaml``) and the JSON catalog API
(``/api/sites/<site>/entries``, ``.../entries/<name>``, ``.../folder``).

Every answer is built from the site's :class:`~eurec4a_nt.listing.SiteIndex` in a
worker thread, so a large catalog never stalls the event loop. Its ETag is made from
the log head(s) and the request, before anything is built: a client holding the
current answer gets a 304 for the cost of reading the heads, and an answer built
before (by this process or, kept in :mod:`~eurec4a_nt.server.answers`, before a
restart) is served without building the site's index.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .. import catalog as catalogs
from ..entries import Entry, check_name, check_site, check_topics, find_entry
from ..errors import BadInput, NotFound, NTError
from ..listing import SiteIndex
from ..manifests import RefReader, load_manifest
from ..node import Node
from ..summaries import SiteFolders
from ..times import is_date, naive_utc
from ..version import __version__
from ..versions import at_text, position
from .answers import ANSWERS, Built
from .context import base_url, node, query_at
from .respond import etag_matches

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
#: Entries in one page of the JSON API at most.
MAX_LIMIT = 1000


async def _answer(request: web.Request, parts: tuple[Any, ...], build: Callable[[], Built]) -> web.Response:
    """The answer to ``request``, whose content depends only on ``parts`` (log heads and
    what the request asks): a 304 if the client holds it, else the one kept (see
    :class:`~eurec4a_nt.server.answers.Answers`), else built once in a thread.

    ``parts`` are read before the answer is built, so it is at least as new as its
    ETag says (a commit arriving meanwhile may be in it)."""
    key = repr((request.path, base_url(request), _pin(request), parts, __version__))
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    answers = request.app[ANSWERS]
    kept = await asyncio.to_thread(answers.get, etag)
    if kept is None:
        kept = await asyncio.to_thread(build)
        if not kept.final:
            return web.Response(body=kept.body, content_type=kept.content_type, charset="utf-8",
                                headers={"Cache-Control": "no-store"})
        await asyncio.to_thread(answers.put, etag, kept)
    return web.Response(body=kept.body, content_type=kept.content_type, charset="utf-8", headers=headers)


async def site_index(request: web.Request) -> SiteIndex:
    """The index of the ``{site}`` of the path (400 if malformed, 404 if unknown), at
    the point the request asks for (see :func:`~eurec4a_nt.server.context.query_at`)."""
    return await asyncio.to_thread(_index, request, check_site(request.match_info["site"]))


async def site_head(request: web.Request) -> tuple[str, tuple[Any, ...]]:
    """The ``{site}`` of the path (400 if malformed, 404 if unknown) and what its
    catalogs at the point the request asks for depend on: the head of its log (the seq
    of a past point) and its product map. Without building the site's index (a query,
    or a binary search of commit times), so a kept answer is found before anything is
    built."""
    site = check_site(request.match_info["site"])
    store, at = node(request).store, query_at(request)

    def head() -> str | int | None:
        store.entries(site)  # NotFound for an unknown site
        now = store.state(site)
        seq = now.seq if at is None else position(store.log(site), at)
        return now.head if seq >= now.seq else seq

    return site, (await asyncio.to_thread(head), sorted(store.product_map(site).items()))


def _index(request: web.Request, site: str) -> SiteIndex:
    """The index of ``site`` at the point ``request`` asks for (blocking: call it in a thread)."""
    return node(request).store.index(site, query_at(request))


def _folders(request: web.Request, site: str) -> SiteFolders | SiteIndex:
    """The folders and series of ``site`` at the point ``request`` asks for (blocking)."""
    return node(request).store.folders(site, query_at(request))


def _pin(request: web.Request) -> str:
    """``/at/<point>`` for URLs of a catalog at a past point, "" for now."""
    at = query_at(request)
    return "" if at is None else "/at/" + quote(at_text(at), safe="")


def _options(request: web.Request, site: str) -> dict[str, Any]:
    """How readers of ``site``'s entries listed in this answer open them."""
    options = read_options(node(request), site, base_url(request))
    at = query_at(request)
    return options if at is None else {**options, "at": at_text(at)}


def _yaml(body: dict[str, Any], final: bool = True) -> Built:
    return Built(catalogs.dump(body).encode(), YAML, final)


@routes.get("/catalog.yaml")
@routes.get("/at/{at}/catalog.yaml")
async def top(request: web.Request) -> web.Response:
    """One nested catalog per site (as they were at a past point, under ``/at/<point>``)."""
    n = node(request)
    summary = await asyncio.to_thread(n.store.summary, query_at(request))
    heads = tuple((site, info["head"]) for site, info in sorted(summary.items()))
    site_path = base_url(request) + _pin(request) + "/sites/{site}/catalog.yaml"
    return await _answer(request, heads, lambda: _yaml(catalogs.top_catalog(summary, site_path)))


@routes.get("/sites/{site}/catalog.yaml")
@routes.get("/sites/{site}/{folder:.+}/catalog.yaml")
@routes.get("/at/{at}/sites/{site}/catalog.yaml")
@routes.get("/at/{at}/sites/{site}/{folder:.+}/catalog.yaml")
async def folder_catalog(request: web.Request) -> web.Response:
    """The stock catalog of a folder of a site (the top folder without ``{folder}``);
    of a folder with more than :data:`~eurec4a_nt.catalog.PART_SIZE` entries, its
    parts, each at ``?part=<key>`` (404 for a key it has not)."""
    n = node(request)
    site, head = await site_head(request)
    folder = request.match_info.get("folder", "")
    prefix = check_name(folder) + "/" if folder else ""
    part = request.query.get("part")
    base = base_url(request) + _pin(request)

    def build() -> Built:
        found = _folders(request, site).folder(prefix)
        parts = catalogs.parts_of(found)
        if part is not None and part not in parts:
            raise NotFound(f"{site}/{prefix.rstrip('/')} has no part {part!r} of its entries"
                           + (f"; its parts: {', '.join(parts)}" if parts else ": it lists them all"))
        shown = parts[part] if part is not None else [] if parts else found.entries
        consolidated = {e.name: _consolidated(n, e) for e in shown if e.format == "zarr"}
        data_url = f"{base}/data/{site}/"
        final = None not in consolidated.values()
        if part is not None:
            return _yaml(catalogs.part_catalog(found, part, shown, data_url, consolidated), final)
        return _yaml(catalogs.folder_catalog(found, data_url, f"{base}/sites/{site}/{prefix}", consolidated, parts),
                     final)

    return await _answer(request, (head, prefix, part), build)


@routes.get("/sites/{site}/{product:.+}/days.yaml")
@routes.get("/at/{at}/sites/{site}/{product:.+}/days.yaml")
async def days_catalog(request: web.Request) -> web.Response:
    """The catalog of a series: one source per day."""
    site, head = await site_head(request)
    path = check_name(request.match_info["product"])
    base = base_url(request) + _pin(request)

    def build() -> Built:
        folders = _folders(request, site)
        product = folders.product(path)
        return _yaml(catalogs.days_catalog(product, folders.days(product), f"{base}/data/{site}/"))

    return await _answer(request, (head, path), build)


def _consolidated(n: Node, entry: Entry) -> bool | None:
    """Whether a zarr entry has consolidated metadata (v2 ``.zmetadata``, or v3
    ``consolidated_metadata`` in the root ``zarr.json``); None when its manifest or root
    document is not held here."""
    try:
        manifest = load_manifest(entry, n.store.objects.get)
        if manifest.ref(".zmetadata") is not None:
            return True
        root = manifest.ref("zarr.json")
        if root is None:
            return False
        doc = json.loads(RefReader(root, n.store.objects).read(0, root.size))
    except (NTError, ValueError):
        return None
    return isinstance(doc, dict) and bool(doc.get("consolidated_metadata"))


# -- JSON ----------------------------------------------------------------------------


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {**entry.to_json(), "site": entry.site}


def _json(body: dict[str, Any]) -> Built:
    return Built(json.dumps(body).encode(), "application/json")


@routes.get("/api/sites/{site}/entries")
async def entries(request: web.Request) -> web.Response:
    """A page of a site's entries in name order: ``?prefix=`` (a name prefix),
    ``topic=``, ``q=`` (text in name, description or format), ``since=``/``until=``
    (ISO times, on the time in the name or else the publication time), ``after=`` (the
    ``next`` of the previous page), ``limit=`` (at most 1000, default 100),
    ``order=newest`` (newest first, by publication time), ``held=1``
    (how many of each entry's objects are held here). The answer says how many match
    (``matched``), the site's ``total`` and ``topics``."""
    n = node(request)
    site, head = await site_head(request)
    query = request.query
    topic = query.get("topic", "")
    if topic:
        check_topics(topic)
    since, until = (_time_text(query.get(key, ""), key) for key in ("since", "until"))
    prefix, q, after, order = (query.get(key, "") for key in ("prefix", "q", "after", "order"))
    if order not in ("", "name", "newest"):
        raise BadInput("order must be name or newest")
    try:
        limit = int(query.get("limit", 100))
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    with_held = query.get("held") == "1"
    asked = (prefix, topic, q, since, until, after, limit, order == "newest")
    parts = (head, asked, n.version if with_held else 0)

    def build() -> Built:
        index = _index(request, site)
        page = index.search(*asked)
        out = []
        for entry in page.entries:
            body = _entry_json(entry)
            if with_held:
                body["held"], body["objects"] = n.presence(entry)
            out.append(body)
        return _json({"site": index.site, "seq": index.seq, "head": index.head, "entries": out,
                      "next": page.next, "matched": page.matched, "total": index.count(),
                      "topics": index.topics()})

    return await _answer(request, parts, build)


def _time_text(text: str, what: str) -> str:
    """A ``since``/``until`` as entry times are compared (UTC, ISO 8601 text): a date
    stays a date (a whole day), a time becomes ``YYYY-MM-DDTHH:MM:SS[.ffffff]``."""
    if not text:
        return ""
    when = naive_utc(text, what)
    return when.date().isoformat() if is_date(text) else when.isoformat()


@routes.get("/api/sites/{site}/entries/{name:.+}")
async def one_entry(request: web.Request) -> web.Response:
    """One entry of a site (404 if it has none of that name). With ``?within=1`` the
    entry that is the name or holds it (the longest such), with ``inner``, the path
    inside it, and ``nested``, whether entries have names below it (404 if none is)."""
    index = await site_index(request)
    name = check_name(request.match_info["name"])
    options = _options(request, index.site)
    if request.query.get("within") != "1":
        return web.json_response({"site": index.site, "seq": index.seq, "entry": _entry_json(index.entry(name)),
                                  "storage_options": options})
    entry, inner = find_entry(index.site, index.entries, name)
    return web.json_response({"site": index.site, "seq": index.seq, "entry": _entry_json(entry), "inner": inner,
                              "nested": index.count(entry.name + "/") > 0, "storage_options": options})


@routes.get("/api/sites/{site}/folder")
async def folder(request: web.Request) -> web.Response:
    """A folder of a site (``?prefix=``, ending in ``/``; the top without): its
    sub-folders with their number of entries, its series products and the entries
    directly in it that belong to no series."""
    site, head = await site_head(request)
    options = _options(request, site)
    prefix = request.query.get("prefix", "")
    if prefix:
        check_name(prefix.removesuffix("/"))
        prefix = prefix.removesuffix("/") + "/"

    def build() -> Built:
        folders = _folders(request, site)
        found = folders.folder(prefix)
        return _json({"site": site, "seq": folders.seq, "prefix": prefix, "folders": found.folders,
                      "products": [p.to_json() for p in found.products],
                      "entries": [_entry_json(e) for e in found.entries], "storage_options": options})

    return await _answer(request, (head, prefix, options), build)
