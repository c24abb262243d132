"""Writing through the site server: signed commits of entries whose objects were
uploaded, and prefetch rules."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ..catalog import RESERVED_METADATA
from ..entries import Entry, check_name, check_name_glob, check_topics
from ..errors import BadInput, Corrupt, NotFound, ObjectMissing
from ..ids import ObjectId
from ..index import Rule
from ..log import Change
from ..node import Node
from ..purge import Retention, purge
from ..schema import CommitRequest, PrefetchBody, PurgeBody, decode
from ..stores.base import ObjectStore
from ..sync.links import LINKS
from ..sync.refusals import Refusal
from ..tree import Kind, walk
from .context import node, read_body, require_write

routes = web.RouteTableDef()
_COMMIT_SHAPE = 'expected {"changes": [{"op": "put", "name": ..., "entry": {...}}, ...]}'


def _changes(body: CommitRequest, site: str) -> list[Change]:
    changes = []
    for item in body.changes:
        name = check_name(item.name)
        if item.op == "remove":
            changes.append(Change("remove", name))
            continue
        if item.entry is None:
            raise BadInput(f"change for {name!r}: a put needs an 'entry'")
        entry = Entry.from_body(item.entry, site, BadInput)
        if entry.name != name:
            raise BadInput(f"change for {name!r} carries an entry named {entry.name!r}")
        for key in entry.metadata:
            if key in RESERVED_METADATA:
                raise BadInput(f"metadata key {key!r} is reserved")
        changes.append(Change("put", name, entry))
    return changes


def _absent(entry: Entry, store: ObjectStore) -> list[ObjectId]:
    """The objects of ``entry`` this store lacks.

    Raises :class:`BadInput` if a held record, manifest or block does not match the
    sizes the entry claims: the server never signs an entry it could not serve.
    """
    absent: list[ObjectId] = []
    try:
        for node in walk(entry, store):
            if not node.held:
                absent.append(node.id)
            elif node.kind in (Kind.VALUE, Kind.BLOCK) and store.size(node.id) != node.size:
                raise BadInput(f"{entry.name}: object {node.id.short} has {store.size(node.id)} bytes, "
                               f"not the {node.size} its entry says")
    except Corrupt as exc:
        raise BadInput(f"{entry.name}: its objects do not match the entry's size ({exc})") from None
    return absent


@routes.post("/api/commit")
async def commit(request: web.Request) -> web.Response:
    """Sign and append changes to this site's log, once every object of every put entry
    is held here and matches the entry's sizes (404 names a missing object otherwise)."""
    require_write(request)
    n = node(request)
    if not n.site:
        raise NotFound("this server has no site of its own to publish to")
    body = decode(await read_body(request), CommitRequest, _COMMIT_SHAPE)
    changes = _changes(body, n.site)
    for change in changes:
        if change.entry is not None:
            absent = await asyncio.to_thread(_absent, change.entry, n.store.objects)
            if absent:
                raise ObjectMissing(f"{change.name}: {len(absent)} object(s) were not uploaded "
                                    f"(first: {absent[0]}); upload them and commit again")
        elif change.name not in n.store.entries(n.site):
            raise NotFound(f"{n.site} has no entry {change.name!r} to remove")
    result = await n.commit(changes)
    return web.json_response({"commit": result.raw.decode(), "site": result.site, "seq": result.seq})


def rule_statuses(n: Node, rules: list[Rule], refused: Sequence[Refusal] = ()) -> list[dict[str, Any]]:
    """How much of what each prefetch rule selects is held here (``bytes_missing``: about
    what is still to come, the entries' sizes in proportion to their objects absent), and
    which of the ``refused`` fetches through a peer hold it up (``refused``: "refused by
    PEER: reason", for a site whose entries the rule selects and lacks).
    The entries are read once, and each entry's objects looked at once, however many
    rules select it."""
    entries = n.entries()
    presence: dict[tuple[str, str], tuple[int, int]] = {}
    statuses = []
    for rule in rules:
        chosen = [e for e in entries if e.matches(rule.topics, rule.sites, rule.names)]
        held = needed = complete = missing = 0
        lacking: set[str] = set()
        for entry in chosen:
            key = (entry.site, entry.name)
            if key not in presence:
                presence[key] = n.presence(entry)
            h, k = presence[key]
            held, needed, complete = held + h, needed + k, complete + (h == k)
            missing += entry.size * (k - h) // k if k else 0
            if h < k:
                lacking.add(entry.site)
        statuses.append({**rule.to_json(), "entries": len(chosen), "complete": complete,
                         "objects_held": held, "objects_needed": needed, "bytes": sum(e.size for e in chosen),
                         "bytes_missing": missing,
                         "refused": [f"refused by {r.peer}: {r.reason}" for r in refused if r.site in lacking]})
    return statuses


@routes.post("/api/prefetch")
async def add_prefetch(request: web.Request) -> web.Response:
    """Hold every entry matching ``topics``/``sites``/``names``, now and as they appear."""
    require_write(request)
    body = decode(await read_body(request), PrefetchBody, 'expected {"topics": [...], "sites": [...], "names": [...]}')
    topics, sites, names = check_topics(body.topics), body.sites, [check_name_glob(g) for g in body.names]
    if not (topics or sites or names):
        raise BadInput("give topics, sites or names to prefetch")
    n = node(request)
    rule = n.index.add_rule(topics, sites, names)
    await n.rules_changed()
    refused = request.app[LINKS].exchange.arrivals.refused.all()
    return web.json_response((await asyncio.to_thread(rule_statuses, n, [rule], refused))[0], status=201)


@routes.get("/api/prefetch")
async def list_prefetch(request: web.Request) -> web.Response:
    n, refused = node(request), request.app[LINKS].exchange.arrivals.refused.all()
    return web.json_response({"rules": await asyncio.to_thread(rule_statuses, n, n.rules(), refused)})


@routes.delete("/api/prefetch/{id}")
async def remove_prefetch(request: web.Request) -> web.Response:
    require_write(request)
    n = node(request)
    text = request.match_info["id"]
    if not text.isdigit() or int(text) not in {r.id for r in n.rules()}:
        raise NotFound(f"no prefetch rule {text!r}; GET /api/prefetch lists them")
    n.index.remove_rule(int(text))
    await n.rules_changed()
    return web.json_response({"removed": int(text)})


@routes.post("/api/purge")
async def purge_old_versions(request: web.Request) -> web.Response:
    """Delete the data of old versions a retention rule lets go of (see
    :mod:`eurec4a_nt.purge`); the index forgets them too."""
    require_write(request)
    body = decode(await read_body(request), PurgeBody, "purge request")
    n = node(request)
    report = await asyncio.to_thread(purge, n.store, Retention(body.keep, body.keep_days), body.dry_run)
    return web.json_response({"versions": report.versions, "objects": len(report.objects),
                              "bytes": report.bytes})
