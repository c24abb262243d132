"""``/``: the page people look at; ``/health`` and ``/api/status`` for monitoring."""

from __future__ import annotations

import time
from typing import Any

import jinja2
from aiohttp import web

from .. import __version__
from ..sync.links import LINKS
from .context import CONFIG, node

routes = web.RouteTableDef()

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("eurec4a_nt.server", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


_templates.filters["human"] = human
_templates.filters["ago"] = lambda t: f"{max(time.time() - t, 0):.0f} s ago" if t else "never"


def status(request: web.Request) -> dict[str, Any]:
    """Everything the page and ``/api/status`` show."""
    n = node(request)
    sites = {}
    for site in n.store.sites():
        state = n.store.state(site)
        sites[site] = {"seq": state.seq, "entries": len(state.entries), "time": state.time,
                       "own": site == n.site}
    return {
        "site": n.site, "version": __version__, "uptime": time.time() - n.traffic.started,
        "objects": {"count": n.index.count(), "bytes": n.index.total_size(),
                    "cache_cap": request.app[CONFIG].cache_cap},
        "traffic": {"served": n.traffic.served, "uploaded": n.traffic.uploaded},
        "sites": sites, "links": request.app[LINKS].status(),
        "wants": len(n.index.wants()), "prefetch": [r.to_json() for r in n.rules()],
    }


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "site": node(request).site, "version": __version__})


@routes.get("/api/status")
async def api_status(request: web.Request) -> web.Response:
    return web.json_response(status(request))


@routes.get("/")
async def page(request: web.Request) -> web.Response:
    """Sites, entries (filter with ``?topic=`` and ``?q=``), what is held here, links."""
    n = node(request)
    topic = request.query.get("topic", "")
    text = request.query.get("q", "").lower()
    rows, topics = [], set()
    for entry in sorted(n.entries(), key=lambda e: e.published, reverse=True):
        topics.update(entry.topics)
        if topic and topic not in entry.topics:
            continue
        if text and text not in f"{entry.path} {entry.description}".lower():
            continue
        held, needed = n.presence(entry)
        rows.append({"entry": entry, "held": "here" if held == needed else
                     "partly" if held else "remote", "held_count": held, "needed": needed})
    html = _templates.get_template("index.html").render(
        status=status(request), rows=rows[:1000], shown=len(rows), topics=sorted(topics),
        topic=topic, q=request.query.get("q", ""))
    return web.Response(text=html, content_type="text/html")
