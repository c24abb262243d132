"""What the catalog browser shows, read from a site server or a local site store.

A :class:`Snapshot` is one consistent look: the sites, one row per entry (with how
much of it is held here), the prefetch rules with their progress, and the links. The
views also tell when something changed, so the browser refreshes only then.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from ..client import unreachable
from ..entries import Entry, selects
from ..errors import from_json
from ..manifests import walk
from ..sitestore import SiteStore
from .reprs import human_size, open_code

#: Formats the browser previews as an image.
IMAGE_FORMATS = ("png", "jpeg", "gif")


@dataclass
class Snapshot:
    """The sites, their entries as rows (newest first per site), prefetch rules and links."""

    site: str
    sites: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)

    @property
    def topics(self) -> list[str]:
        return sorted({t for row in self.rows for t in row["topics"]})


def state_of(held: int, objects: int, wanted: bool) -> str:
    """``here`` (every object held), ``pending`` (a prefetch rule wants it and it is
    not all here yet), ``partly`` (some objects held) or ``remote`` (none)."""
    if objects and held >= objects:
        return "here"
    if wanted:
        return "pending"
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
    """Whether a row has ``topic`` (any if empty) and contains ``query`` (case-insensitive)
    in its site, name, description or format."""
    if topic and topic not in row["topics"]:
        return False
    text = f"{row['site']}/{row['name']} {row['description']} {row['format']}".lower()
    return query.strip().lower() in text


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


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = sorted(rows, key=lambda r: r["published"], reverse=True)
    return sorted(rows, key=lambda r: r["site"])


class ServerView:
    """A site server, read over its JSON API (``/api/sites``, ``/api/sites/<site>/entries
    ?held=1``, ``/api/prefetch``, ``/api/status``, ``/logs``) with the client's headers
    (so a read token is sent)."""

    def __init__(self, server: str, headers: Mapping[str, str]) -> None:
        self.server = server.rstrip("/")
        self.http = requests.Session()
        self.http.headers.update(headers)

    def _get(self, path: str, timeout: float = 30, **params: Any) -> Any:
        try:
            response = self.http.get(self.server + path, params=params, timeout=timeout)
        except requests.RequestException as exc:
            raise unreachable(self.server, exc) from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": "error", "message": f"HTTP {response.status_code}: {response.text[:200]}"}
        if response.status_code >= 400:
            raise from_json(body)
        return body

    def snapshot(self) -> Snapshot:
        sites = self._get("/api/sites")
        rules = self._get("/api/prefetch")["rules"]
        status = self._get("/api/status")
        rows = []
        for site in sites["sites"]:
            for body in self._get(f"/api/sites/{site}/entries", held="1")["entries"]:
                entry = Entry.from_json(body, site)
                rows.append(make_row(entry, int(body["held"]), int(body["objects"]), rules))
        return Snapshot(
            site=sites["site"],
            sites=[{"site": s, **info} for s, info in sorted(sites["sites"].items())],
            rows=_ordered(rows), rules=[_rule(r) for r in rules],
            links=[{"peer": link.get("peer") or link.get("link") or "?",
                    "connected": bool(link.get("connected"))} for link in status["links"]])

    def wait_change(self, version: int | None, timeout: float) -> int:
        """The server's change counter; with a ``version``, wait (at most ``timeout`` s)
        until it differs (the server's long poll ``/logs?since=``)."""
        if version is None:
            return int(self._get("/logs")["version"])
        return int(self._get("/logs", timeout=timeout + 15, since=str(version), wait=str(timeout))["version"])


def _rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    what = [*(f"topic {t}" for t in rule.get("topics", ())), *(f"site {s}" for s in rule.get("sites", ())),
            *rule.get("names", ())]
    return {"id": rule["id"], "what": ", ".join(what), "entries": rule["entries"],
            "complete": rule["complete"], "held": rule["objects_held"], "needed": rule["objects_needed"],
            "to_come": human_size(int(rule.get("bytes_missing", 0)))}


class StoreView:
    """A local site store: every object is read from the store itself; it has no
    prefetch rules and no links."""

    def __init__(self, store: SiteStore) -> None:
        self.store = store

    def snapshot(self) -> Snapshot:
        sites, rows = [], []
        for site, summary in self.store.summary().items():
            sites.append({"site": site, **summary})
            for entry in self.store.state(site).entries.values():
                present = [held for _, held in walk(entry.with_site(site), self.store.objects)]
                rows.append(make_row(entry.with_site(site), sum(present), len(present), ()))
        return Snapshot(site=self.store.site or "", sites=sites, rows=_ordered(rows))

    def wait_change(self, version: int | None, timeout: float) -> int:
        """A counter of the store's log heads; with a ``version``, wait (at most
        ``timeout`` s, checking twice a second) until it differs."""
        deadline = time.monotonic() + timeout
        while True:
            now = hash(tuple(sorted(self.store.heads().items())))
            if version is None or now != version or time.monotonic() >= deadline:
                return now
            time.sleep(0.5)
