"""What the catalog browser shows, read from a site server or a local site store.

A :class:`Snapshot` is one look: the sites, one page of rows (entries matching the
filters, newest first per site, with how much of each is held here), how many match
in all, the prefetch rules with their progress, and the links. Pages are read through
the catalog API (``/api/sites/<site>/entries``), so a page costs the same at any
number of entries. The views also tell when something changed, so the browser
refreshes only then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client import SiteClient
from ..entries import Entry, selects
from ..sitestore import SiteStore
from ..sizes import human_size
from ..tree import walk
from .reprs import open_code

#: Formats the browser previews as an image.
IMAGE_FORMATS = ("png", "jpeg", "gif")


#: Where a page starts: the index of a site (in name order) and the entry after which
#: it goes on (``""``: its newest).
Start = tuple[int, str]


@dataclass
class Snapshot:
    """The sites, one page of rows, prefetch rules and links; ``end`` is where the next
    page starts (None on the last)."""

    site: str
    sites: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    total: int = 0
    matched: int = 0
    end: Start | None = None


#: One page of a site's entries, as the catalog API answers: ``entries`` (with ``held``
#: and ``objects``), ``next``, ``matched``, ``total`` and ``topics``.
Fetch = Callable[[str, dict[str, str]], dict[str, Any]]


def page_of(sites: list[str], fetch: Fetch, rules: list[dict[str, Any]], topic: str, query: str,
            start: Start, limit: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of the page from ``start`` (at most ``limit``, site by site) and the counts:
    ``matched``, ``total``, ``topics`` and ``end`` (the next page's start, or None)."""
    rows: list[dict[str, Any]] = []
    counts: dict[str, Any] = {"matched": 0, "total": 0, "topics": set(), "end": None}
    for i, site in enumerate(sites):
        params = {"order": "newest", "topic": topic, "q": query, "limit": "1"}
        want = limit - len(rows) if i >= start[0] and counts["end"] is None else 0
        if want:
            params |= {"limit": str(want), "held": "1", "after": start[1] if i == start[0] else ""}
        body = fetch(site, params)
        for raw in body["entries"][:want]:
            entry = Entry.from_json(raw, site)
            rows.append(make_row(entry, int(raw["held"]), int(raw["objects"]), rules))
        if want and len(rows) >= limit:
            counts["end"] = (i, body["next"]) if body["next"] else (i + 1, "")
        counts["matched"] += body["matched"]
        counts["total"] += body["total"]
        counts["topics"].update(body["topics"])
    if counts["end"] is not None and counts["end"][0] >= len(sites):
        counts["end"] = None
    counts["topics"] = sorted(counts["topics"])
    return rows, counts


def state_of(held: int, objects: int, wanted: bool) -> str:
    """``here`` (every object held), ``arriving`` (a prefetch rule wants it and part of
    it is here), ``pending`` (a rule wants it and none of it is here yet), ``partly``
    (some objects held) or ``remote`` (none)."""
    if objects and held >= objects:
        return "here"
    if wanted:
        return "arriving" if held else "pending"
    return "partly" if held else "remote"


def make_row(entry: Entry, held: int, objects: int, rules: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One entry as the browser shows it (JSON-ready)."""
    wanted = any(entry.matches(r.get("topics", ()), r.get("sites", ()), r.get("names", ())) for r in rules)
    return {
        "site": entry.site, "name": entry.name, "kind": entry.kind, "format": entry.format,
        "size": entry.size, "size_text": human_size(entry.size), "published": entry.published,
        "description": entry.description, "topics": list(entry.topics),
        "state": state_of(held, objects, wanted), "held": held, "objects": objects,
        "code": open_code(entry.site, entry.name, entry.format, entry.kind),
        "preview": entry.format in IMAGE_FORMATS or entry.format == "markdown" or entry.kind == "directory",
    }


def matches(row: Mapping[str, Any], topic: str = "", query: str = "") -> bool:
    """Whether a row has ``topic`` (any if empty) and contains ``query`` (any case) in its
    name, description or format, as the catalog API searches."""
    if topic and topic not in row["topics"]:
        return False
    return query.strip().lower() in f"{row['name']} {row['description']} {row['format']}".lower()


def to_come(rows: Iterable[Mapping[str, Any]], topics: Sequence[str], sites: Sequence[str],
            names: Sequence[str]) -> tuple[int, int]:
    """What a prefetch rule would bring here: entries not all here, and about how many
    bytes (each entry's size in proportion to its objects not held)."""
    entries = size = 0
    for row in rows:
        if row["held"] < row["objects"] and selects(topics, sites, names, row["site"], row["name"], row["topics"]):
            entries += 1
            size += row["size"] * (row["objects"] - row["held"]) // row["objects"]
    return entries, size


class ServerView:
    """A site server, read live over its JSON API (``/api/sites``, ``/api/sites/<site>/
    entries?held=1``, ``/api/prefetch``, ``/api/status``, ``/logs``) through its client
    (so a read token is sent)."""

    def __init__(self, client: SiteClient) -> None:
        self.client = client

    def snapshot(self, topic: str = "", query: str = "", start: Start = (0, ""),
                 limit: int = 300) -> Snapshot:
        """The page of rows from ``start`` matching ``topic`` and ``query``."""
        sites = self.client.live("/api/sites").json()
        rules = self.client.prefetch_rules()
        status = self.client.status()
        names = sorted(sites["sites"])
        rows, counts = page_of(names, self._page, rules, topic, query, start, limit)
        return Snapshot(
            site=sites["site"],
            sites=[{"site": s, **sites["sites"][s]} for s in names],
            rows=rows, rules=[_rule(r) for r in rules],
            links=[{"peer": link.get("peer") or link.get("link") or "?",
                    "connected": bool(link.get("connected")),
                    "offline_since": time.strftime("%H:%M UTC", time.gmtime(link["offline_since"]))
                    if link.get("offline_since") else ""} for link in status["links"]], **counts)

    def _page(self, site: str, params: dict[str, str]) -> dict[str, Any]:
        return dict(self.client.live(f"/api/sites/{site}/entries", params).json())

    def wait_change(self, version: int | None, timeout: float) -> int:
        """The server's change counter; with a ``version``, wait (at most ``timeout`` s)
        until it differs (the server's long poll ``/logs?since=``)."""
        if version is None:
            return int(self.client.live("/logs").json()["version"])
        wait = {"since": str(version), "wait": str(timeout)}
        return int(self.client.live("/logs", wait, timeout=timeout + 15).json()["version"])


def _rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    what = [*(f"topic {t}" for t in rule.get("topics", ())), *(f"site {s}" for s in rule.get("sites", ())),
            *rule.get("names", ())]
    return {"id": rule["id"], "what": ", ".join(what), "entries": rule["entries"],
            "complete": rule["complete"], "held": rule["objects_held"], "needed": rule["objects_needed"],
            "to_come": human_size(int(rule.get("bytes_missing", 0))), "refused": "; ".join(rule.get("refused", ()))}


class StoreView:
    """A local site store: every object is read from the store itself; it has no
    prefetch rules and no links."""

    def __init__(self, store: SiteStore) -> None:
        self.store = store

    def snapshot(self, topic: str = "", query: str = "", start: Start = (0, ""),
                 limit: int = 300) -> Snapshot:
        """The page of rows from ``start`` matching ``topic`` and ``query``."""
        summary = self.store.summary()
        rows, counts = page_of(sorted(summary), self._fetch, [], topic, query, start, limit)
        return Snapshot(site=self.store.site or "", sites=[{"site": s, **summary[s]} for s in sorted(summary)],
                        rows=rows, **counts)

    def _fetch(self, site: str, params: dict[str, str]) -> dict[str, Any]:
        """A page of entries as the catalog API gives it, from the store."""
        index = self.store.listings.get(site)
        page = index.search(topic=params["topic"], q=params["q"], after=params.get("after", ""),
                            limit=int(params["limit"]), newest=True)
        entries = []
        for entry in page.entries:
            present = [n.held for n in walk(entry, self.store.objects)] if "held" in params else []
            entries.append({**entry.to_json(), "held": sum(present), "objects": len(present)})
        return {"entries": entries, "next": page.next, "matched": page.matched, "total": index.count(),
                "topics": index.topics()}

    def wait_change(self, version: int | None, timeout: float) -> int:
        """A counter of the store's log heads; with a ``version``, wait (at most
        ``timeout`` s, checking twice a second) until it differs."""
        deadline = time.monotonic() + timeout
        while True:
            now = hash(tuple(sorted(self.store.heads().items())))
            if version is None or now != version or time.monotonic() >= deadline:
                return now
            time.sleep(0.5)
