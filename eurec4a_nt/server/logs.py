"""Site logs over HTTP: heads, commits after a seq (optionally waiting for new ones),
and appending commits signed elsewhere; plus the summary of every site as JSON (their
entries are in :mod:`eurec4a_nt.server.catalog`)."""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from ..entries import check_name, check_site
from ..errors import BadCommit, BadInput, NotFound, TooLarge
from .context import node, query_at, read_body, require_write

routes = web.RouteTableDef()

#: Longest a client may hold a long poll open.
MAX_WAIT = 60.0
#: Most commits one answer of ``GET /logs/<site>`` holds (and its default), and one ``POST /logs``.
MAX_COMMITS = 10_000
#: Highest seq a query may name (a log never gets near it; SQLite's integers stop at 2^63).
MAX_SEQ = 1 << 53


def _number(request: web.Request, key: str, default: float) -> float:
    """A finite, non-negative number from the query string; 400 otherwise."""
    try:
        value = float(request.query.get(key, default))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BadInput(f"query parameter {key} must be a non-negative number")
    return value


def _count(request: web.Request, key: str, default: int, least: int, most: int) -> int:
    """A whole number from ``least`` to ``most`` (ASCII digits) from the query string; 400 otherwise."""
    text = request.query.get(key, str(default))
    if not (text.isascii() and text.isdigit() and len(text) <= 18 and least <= int(text) <= most):
        raise BadInput(f"query parameter {key} must be a whole number from {least} to {most}")
    return int(text)


def _known_site(request: web.Request) -> str:
    """The ``{site}`` of the path, if this server knows it (400 if malformed, 404 if unknown)."""
    site = check_site(request.match_info["site"])
    known = node(request).store.sites()
    if site not in known:
        raise NotFound(f"unknown site {site!r}; known: {', '.join(known) or 'none'}")
    return site


@routes.get("/logs")
async def heads(request: web.Request) -> web.Response:
    """``{"site": ..., "heads": {site: seq}}``; with ``?since=<version>&wait=<s>`` the
    answer waits until something changed (a long poll)."""
    n = node(request)
    since = request.query.get("since")
    if since is not None:
        await n.wait_change(int(_number(request, "since", 0)), min(_number(request, "wait", 25), MAX_WAIT))
    return web.json_response({"site": n.site, "version": n.version, "heads": n.store.heads()})


@routes.get("/logs/{site}")
async def commits(request: web.Request) -> web.Response:
    """Commits of a site after ``?after=N`` as JSON lines (oldest first); with
    ``?wait=<s>`` the answer waits for a commit after N (a long poll)."""
    n = node(request)
    site = _known_site(request)
    after = _count(request, "after", 0, 0, MAX_SEQ)
    limit = _count(request, "limit", MAX_COMMITS, 1, MAX_COMMITS)
    wait = min(_number(request, "wait", 0), MAX_WAIT)
    log = n.store.log(site)
    loop = asyncio.get_running_loop()
    deadline, version = loop.time() + wait, n.version
    while log.seq <= after and (remaining := deadline - loop.time()) > 0:
        version = await n.wait_change(version, remaining)
    found = log.raws_after(after, limit=limit)
    body = b"".join(raw + b"\n" for raw in found)
    return web.Response(body=body, content_type="application/jsonl")


@routes.get("/logs/{site}/checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    """The newest checkpoint of a site's log held here: ``{"site", "seq", "root",
    "size"}`` (its bytes are the file record ``root``: ``GET /objects/<id>``); 404 if
    there is none."""
    n = node(request)
    site = _known_site(request)
    found = await asyncio.to_thread(n.store.checkpoint, site)
    if found is None:
        raise NotFound(f"no checkpoint of {site} is held here; read its log from seq 1")
    return web.json_response({"site": site, **found.to_json()})


@routes.post("/logs")
async def append(request: web.Request) -> web.Response:
    """Append commits signed by other sites (JSON lines); each is verified against the
    keyring. Commits that fail are listed; the others are kept."""
    require_write(request)
    lines = (await read_body(request)).split(b"\n", MAX_COMMITS)
    if len(lines) == MAX_COMMITS + 1 and lines[-1].strip():
        raise TooLarge(f"at most {MAX_COMMITS} commits per request; send the rest in another")
    raws = [line for line in lines if line.strip()]
    if not raws:
        raise BadInput("expected signed commits, one JSON object per line")
    added, rejected = await node(request).receive(raws)
    if rejected and not added:
        raise BadCommit("; ".join(rejected[:5]))
    return web.json_response({"added": [c.label for c in added], "rejected": rejected})


@routes.get("/api/sites")
async def sites(request: web.Request) -> web.Response:
    """Every site known here (``?at=SEQ|TIME``: those with commits by then, as they were)."""
    n = node(request)
    summary = await asyncio.to_thread(n.store.summary, query_at(request))
    return web.json_response({"site": n.site, "version": n.version, "sites": summary})


@routes.get("/api/sites/{site}/versions/{name:.+}")
async def versions(request: web.Request) -> web.Response:
    """Every version of an entry, removed ones included, oldest first; each names the
    seqs of the changes it replaced and that replaced it."""
    n = node(request)
    site = _known_site(request)
    name = check_name(request.match_info["name"])
    found = await asyncio.to_thread(n.store.versions, site, name)
    return web.json_response({"site": site, "name": name, "versions": [v.to_json() for v in found]})
