"""``/``: the page people look at; ``/health`` and ``/api/status`` for monitoring."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any

import jinja2
from aiohttp import web

from .. import __version__
from ..node import Node
from ..sizes import human_size
from ..sync.links import LINKS
from .context import CONFIG, TOKEN_COOKIE, TOKENS, node, read_body

routes = web.RouteTableDef()

#: Entries shown on the page at most (the count says how many matched).
MAX_ROWS = 1000

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("eurec4a_nt.server", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


_templates.filters["human"] = human_size
_templates.filters["ago"] = lambda t: f"{max(time.time() - t, 0):.0f} s ago" if t else "never"
_templates.filters["clock"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


async def status(request: web.Request) -> dict[str, Any]:
    """Everything the page and ``/api/status`` show (the sites' logs and forks read in a
    thread: on object storage that is a request per log)."""
    n = node(request)
    sites, forks = await asyncio.to_thread(lambda: (n.store.summary(), n.store.forks()))
    return {
        "site": n.site, "version": __version__, "uptime": time.time() - n.traffic.started,
        "objects": {"count": n.index.count(), "bytes": n.index.total_size(),
                    "cache_cap": request.app[CONFIG].cache_cap},
        "traffic": {"served": n.traffic.served, "uploaded": n.traffic.uploaded},
        "sites": sites, "links": request.app[LINKS].status(), "tickets": request.app[LINKS].tickets.status(),
        "clocks": request.app[LINKS].clocks.status(),
        "wants": len(n.index.wants()), "prefetch": [r.to_json() for r in n.rules()],
        "forks": [f.to_json() for f in forks],
    }


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "site": node(request).site, "version": __version__})


@routes.get("/api/status")
async def api_status(request: web.Request) -> web.Response:
    return web.json_response(await status(request))


@routes.get("/")
async def page(request: web.Request) -> web.Response:
    """Sites, entries (filter with ``?topic=`` and ``?q=``), what is held here, links.

    With reads closed (``--read-token``), a browser without the token's cookie gets
    :func:`login_page` instead.
    """
    n = node(request)
    topic = request.query.get("topic", "")
    text = request.query.get("q", "")
    rows, topics, matched = await asyncio.to_thread(_rows, n, topic, text)
    html = _templates.get_template("index.html").render(
        status=await status(request), rows=rows, shown=matched, topics=topics, topic=topic, q=text)
    return web.Response(text=html, content_type="text/html")


def login_page(request: web.Request, message: str = "", status: int = 401) -> web.Response:
    """A form asking a browser for a token (posted to ``/login``, never put in a URL)."""
    html = _templates.get_template("login.html").render(site=node(request).site, message=message)
    return web.Response(text=html, content_type="text/html", status=status)


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    """Keep a valid token in an HTTP-only, same-site cookie and go to the page; the
    cookie grants reads only (writes need the ``Authorization`` header)."""
    await read_body(request)  # within the time a body may take; post() parses what arrived
    token = str((await request.post()).get("token", "")).strip()
    if not token or request.app[TOKENS].scope(token) is None:
        return login_page(request, "That token is not known here.", status=403)
    response = web.Response(status=303, headers={"Location": "/"})
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", secure=request.secure,
                        path="/", max_age=30 * 86400)
    return response


def _rows(n: Node, topic: str, text: str) -> tuple[list[dict[str, Any]], list[str], int]:
    """The newest :data:`MAX_ROWS` entries matching the filters (from every site's
    catalog index, see :mod:`eurec4a_nt.listing`) with what is held here; every topic;
    how many match in all.

    Runs in a thread: it reads the manifests of the entries it shows.
    """
    pages, topics, matched = [], set(), 0
    for site in n.store.sites():
        index = n.store.listings.get(site)
        page = index.search(topic=topic, q=text, limit=MAX_ROWS, newest=True)
        pages.append(page.entries)
        topics.update(index.topics())
        matched += page.matched
    newest = heapq.merge(*pages, key=lambda e: (e.published, e.name), reverse=True)
    rows = []
    for entry in itertools.islice(newest, MAX_ROWS):
        held, needed = n.presence(entry)
        rows.append({"entry": entry, "held": "here" if held == needed else "partly" if held else "remote",
                     "held_count": held, "needed": needed})
    return rows, sorted(topics), matched
