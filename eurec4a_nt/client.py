"""Talking to a site server over HTTP from a laptop or instrument computer.

:class:`HTTPStore` is the server's object API as an :class:`ObjectStore` (uploads ask
first which objects the server lacks, and send many per request). :class:`SiteClient`
adds the catalog (fetched through requests-cache: revalidated when online, served
from the cache with a warning when the server cannot be reached), signed commits
and prefetch, and reads through a local content-addressed block cache.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import requests

from .config import cache_cap as configured_cap
from .entries import Entry, check_name, check_site
from .errors import NotFound
from .folders import Folder
from .log import Change, Commit, parse_commit
from .progress import progress_bar
from .series import Product, members
from .stores.cached import CachingStore
from .stores.capped import CappedStore
from .stores.direct import DirectReads
from .stores.http import BATCH_BYTES, TIMEOUT, HTTPStore, raise_for, unreachable
from .stores.local import LocalStore
from .versions import At, Version, at_text

if TYPE_CHECKING:
    import requests_cache

    from .purge import Retention

log = logging.getLogger(__name__)

_ENTRIES_TTL = 2.0
#: Entries asked for in one page of the catalog API (its most).
_PAGE = 1000


class OfflineWarning(UserWarning):
    """The site server could not be reached; cached data is shown."""


class SiteClient:
    """A site server, as a publishing and reading client sees it."""

    def __init__(self, server: str, token: str | None = None, cache: str | Path | None = None,
                 stale_ok: bool = True, cache_cap: int | None = None) -> None:
        self.server = server.rstrip("/")
        #: Whether metadata cached earlier is shown when the server cannot be reached.
        self.stale_ok = stale_ok
        self.token = token
        self.cache_dir = Path(cache or Path.home() / ".cache" / "eurec4a-nt")
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "eurec4a-nt"
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        key = hashlib.sha256(self.server.encode()).hexdigest()[:16]
        self.meta_dir = self.cache_dir / "servers" / key
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        self.sink = HTTPStore(self.server, self.http)
        #: Many blocks of a read at once, straight from the server's object store where offered.
        self.direct = DirectReads(self.server)
        #: The block cache (shared by every client using ``cache``), at most ``cache_cap``
        #: bytes (default: :func:`eurec4a_nt.config.cache_cap`), least recently used out.
        cap = cache_cap if cache_cap is not None else configured_cap()
        self.blocks = CappedStore(LocalStore(self.cache_dir), cap)
        self._entries: dict[tuple[str, str | None], tuple[float, RemoteEntries]] = {}
        #: Per site, where readers of its entries go (this server, then mirrors), as the
        #: server last said.
        self.read_options: dict[str, dict[str, Any]] = {}
        self._site: str | None = None

    def __repr__(self) -> str:
        return f"SiteClient({self.server!r})"

    def objects_for(self, site: str) -> CachingStore:
        """Objects of ``site``'s entries, through the local block cache."""
        return CachingStore(self.blocks, HTTPStore(self.server, self.http, site=site, direct=self.direct))

    # -- reading metadata, online or from the cache -----------------------------------

    def _get(self, path: str) -> requests.Response:
        """GET through the HTTP cache: revalidated when the server answers; when it
        cannot be reached, the copy cached earlier with an :class:`OfflineWarning`.

        Raises :class:`Unreachable` when the server cannot be reached and nothing is cached.
        """
        url = self.server + path
        try:
            response = self.cached.get(url, timeout=TIMEOUT)
        except requests.RequestException as exc:
            request = self.cached.prepare_request(requests.Request("GET", url))
            stored = self.cached.cache.get_response(self.cached.cache.create_key(request))
            if stored is None or not self.stale_ok:
                raise unreachable(self.server, exc, "; nothing is cached here yet" if self.stale_ok else "") from None
            warnings.warn(f"site server {self.server} unreachable; showing {path} as cached "
                          "earlier", OfflineWarning, stacklevel=3)
            response = stored
        raise_for(response)
        return response

    @property
    def site(self) -> str:
        """The server's own site."""
        if self._site is None:
            self._site = str(self._get("/health").json()["site"])
        return self._site

    def sites(self) -> list[str]:
        return sorted(self._get("/api/sites").json()["sites"])

    def entries(self, site: str, at: At | None = None) -> RemoteEntries:
        """The entries of ``site`` by name (at a past point with ``at``), read when asked
        (see :class:`RemoteEntries`) and kept for ``_ENTRIES_TTL`` s; :class:`NotFound`
        for a site the server does not know."""
        key = (check_site(site), None if at is None else at_text(at))
        cached = self._entries.get(key)
        if cached and time.monotonic() - cached[0] < _ENTRIES_TTL:
            return cached[1]
        if site not in self.sites():
            raise NotFound(f"unknown site {site!r}; known: {', '.join(self.sites())}")
        found = RemoteEntries(lambda path: self.resolve(site, path, at), lambda: self.entries_under(site, "", at))
        self._entries[key] = (time.monotonic(), found)
        return found

    def entries_under(self, site: str, prefix: str = "", at: At | None = None) -> Iterator[Entry]:
        """Every entry of ``site`` whose name starts with ``prefix`` (at a past point with
        ``at``), in name order, a page of 1,000 per request."""
        return self._pages(check_site(site), {"prefix": prefix} if prefix else {}, at)

    def resolve(self, site: str, path: str, at: At | None = None) -> tuple[Entry, str, bool]:
        """The entry of ``site`` that is ``path`` or holds it (the longest such name), the
        path inside it, and whether other entries have names below the entry's (one
        request); :class:`NotFound` if no entry is or holds ``path``."""
        body = self._get(f"/api/sites/{check_site(site)}/entries/{quote(check_name(path))}"
                         f"?within=1{_at(at, '&')}").json()
        self.read_options[site] = dict(body.get("storage_options") or {"server": self.server})
        return Entry.from_json(body["entry"], site), str(body["inner"]), bool(body["nested"])

    def page(self, site: str, limit: int, **query: str) -> tuple[list[Entry], int]:
        """Up to ``limit`` entries of ``site`` in name order that the catalog API lists
        for ``query`` (``prefix``, ``after``, ``topic``; empty ones left out), and how many
        entries the site has: a request per 1,000 entries shown, however many it has."""
        found: list[Entry] = []
        total = 0
        for body in self._bodies(check_site(site), {k: v for k, v in query.items() if v}, size=min(limit, _PAGE)):
            found += (Entry.from_json(e, site) for e in body["entries"])
            total = int(body["total"])
            if len(found) >= limit:
                break
        return found[:limit], total

    def _pages(self, site: str, query: dict[str, str], at: At | None = None) -> Iterator[Entry]:
        """The entries of ``site`` the catalog API lists for ``query``, every page of them."""
        for body in self._bodies(site, query, at):
            yield from (Entry.from_json(e, site) for e in body["entries"])

    def _bodies(self, site: str, query: dict[str, str], at: At | None = None,
                size: int = _PAGE) -> Iterator[dict[str, Any]]:
        """The catalog API's answers for ``query``, page after page of ``size`` entries."""
        query = {**query, "limit": str(size)}
        if at is not None:
            query["at"] = at_text(at)
        while True:
            body = self._get(f"/api/sites/{site}/entries?{urlencode(query)}").json()
            yield body
            if not body["next"]:
                return
            query["after"] = body["next"]

    @functools.cached_property
    def cached(self) -> requests_cache.CachedSession:
        """The HTTP cache of metadata: every answer is revalidated (ETag) while the server
        answers; the stored copy is only used, with a warning, when it does not (see
        :meth:`_get`). Made on first use (a copy to disk does not need it)."""
        import requests_cache

        session = requests_cache.CachedSession(str(self.meta_dir / "http"), backend="sqlite", cache_control=True,
                                               expire_after=requests_cache.EXPIRE_IMMEDIATELY)
        session.headers.update(self.http.headers)
        return session

    def entry(self, site: str, name: str, at: At | None = None, fresh: bool = False) -> Entry:
        """One entry (one request; at a past point with ``at``; with ``fresh``, never
        from the metadata cache); :class:`NotFound` if ``site`` has none of that name."""
        check_site(site)
        path = f"/api/sites/{site}/entries/{quote(check_name(name))}{_at(at, '?')}"
        body = (self.live(path) if fresh else self._get(path)).json()
        self.read_options[site] = dict(body.get("storage_options") or {"server": self.server})
        return Entry.from_json(body["entry"], site)

    def summary(self, at: At | None = None) -> dict[str, dict[str, Any]]:
        """Per known site: seq, head, time of the last commit, number of entries (at a
        past point with ``at``)."""
        return dict(self._get(f"/api/sites{_at(at, '?')}").json()["sites"])

    def folder(self, site: str, prefix: str = "", at: At | None = None) -> Folder:
        """A folder of ``site``'s entries (see :class:`~eurec4a_nt.listing.Folder`)."""
        check_site(site)
        body = self._get(f"/api/sites/{site}/folder?prefix={quote(prefix)}{_at(at, '&')}").json()
        self.read_options[site] = dict(body.get("storage_options") or {"server": self.server})
        return Folder(site, prefix, dict(body["folders"]),
                      [Product.from_json(p, site) for p in body["products"]],
                      [Entry.from_json(e, site) for e in body["entries"]])

    def series_entries(self, product: Product, start: datetime, end: datetime,
                       at: At | None = None) -> list[Entry]:
        """The entries of a series product with a name time in ``[start, end)``, read
        page by page (the server narrows by time, :func:`~eurec4a_nt.series.members`
        keeps the product's own)."""
        query = {"prefix": product.head, "since": start.isoformat(),
                 "until": end.isoformat()}
        return members(product, self._pages(product.site, query, at), start, end)

    def versions(self, site: str, name: str) -> list[Version]:
        """Every version of ``site``'s entry ``name``, oldest first."""
        body = self._get(f"/api/sites/{check_site(site)}/versions/{quote(check_name(name))}").json()
        return [Version.from_json(v) for v in body["versions"]]

    def status(self) -> dict[str, Any]:
        """The server's state now (links, queues, traffic); never a cached copy."""
        return self.live("/api/status").json()

    # -- writing ----------------------------------------------------------------------

    @property
    def tmp_dir(self) -> None:
        return None

    def _request(self, method: str, path: str, hint: str = "", **kwargs: Any) -> requests.Response:
        """One request, never from the cache; raise our error for an error answer,
        :class:`Unreachable` (with ``hint``) without one."""
        kwargs.setdefault("timeout", TIMEOUT)
        try:
            response = self.http.request(method, self.server + path, **kwargs)
        except requests.RequestException as exc:
            raise unreachable(self.server, exc, hint) from None
        raise_for(response)
        return response

    def checkpoint(self, site: str) -> dict[str, Any] | None:
        """The newest checkpoint of ``site``'s log the server holds (``{"seq", "root",
        "size"}``), or None."""
        try:
            return self.live(f"/logs/{check_site(site)}/checkpoint").json()  # type: ignore[no-any-return]
        except NotFound:
            return None

    def commits_after(self, site: str, seq: int, limit: int) -> list[bytes]:
        """Raw commits of ``site`` after ``seq`` the server holds, oldest first."""
        answer = self.live(f"/logs/{check_site(site)}?after={int(seq)}&limit={int(limit)}")
        return [line for line in answer.content.splitlines() if line.strip()]

    def live(self, path: str, params: Mapping[str, str] | None = None,
             timeout: float | tuple[float, float] = TIMEOUT) -> requests.Response:
        """GET what only makes sense fresh (progress, a change counter), never from the
        cache; raise our error for an error answer, :class:`Unreachable` without one."""
        return self._request("GET", path, params=params, timeout=timeout)

    def _post(self, path: str, body: dict[str, Any] | None, hint: str = "",
              data: bytes | None = None) -> requests.Response:
        """POST JSON (or ``data``)."""
        return self._request("POST", path, hint, json=body, data=data)

    def commit(self, changes: list[Change]) -> Commit:
        """Ask the server to sign and append changes (their objects must be uploaded)."""
        response = self._post("/api/commit", {"changes": [c.to_json() for c in changes]},
                              "; the uploaded data is kept there, publish again to finish")
        self._entries.clear()
        return parse_commit(response.json()["commit"].encode())

    def receive(self, raws: list[bytes]) -> tuple[list[Commit], list[str]]:
        """Hand commits signed elsewhere to the server, which verifies each against its
        keyring; return those newly appended and why others were refused."""
        added: set[str] = set()
        rejected: list[str] = []
        start = 0
        while start < len(raws):  # requests well under the server's body limit
            end, size = start, 0
            while end < len(raws) and (end == start or size + len(raws[end]) < BATCH_BYTES // 2):
                size, end = size + len(raws[end]) + 1, end + 1
            answer = self._post("/logs", None, data=b"".join(r + b"\n" for r in raws[start:end])).json()
            added.update(answer["added"])
            rejected += answer["rejected"]
            start = end
        self._entries.clear()
        return [c for c in map(parse_commit, raws) if c.label in added], rejected

    def prefetch_rules(self) -> list[dict[str, Any]]:
        """The server's prefetch rules, each with how much of what it selects is held."""
        return list(self.live("/api/prefetch").json()["rules"])

    def unprefetch(self, rule_id: int) -> None:
        """Remove prefetch rule ``rule_id``: nothing more is fetched for it (what is held
        stays until evicted). :class:`NotFound` for an unknown rule."""
        self._request("DELETE", f"/api/prefetch/{int(rule_id)}")

    def purge(self, rule: Retention, dry_run: bool = False) -> dict[str, int]:
        """Ask the server to delete the data of old versions ``rule`` lets go of."""
        body = {"keep": rule.keep, "keep_days": rule.keep_days, "dry_run": dry_run}
        return self._post("/api/purge", body).json()

    def prefetch(self, topics: tuple[str, ...], sites: list[str], names: list[str], *,
                 wait: bool = True, progress: bool | None = None, timeout: float = 3600) -> dict[str, Any]:
        """Add a prefetch rule; with ``wait``, follow it until what exists now is held."""
        status = self._post("/api/prefetch", {"topics": list(topics), "sites": sites,
                                              "names": names}).json()
        if not wait:
            return status
        deadline = time.monotonic() + timeout
        # in bytes of the entries selected: a total that does not grow as blocks are found
        with progress_bar(status["bytes"], "prefetch", progress) as bar:
            bar.update(status["bytes"] - status["bytes_missing"])
            while status["objects_held"] < status["objects_needed"] and time.monotonic() < deadline:
                time.sleep(0.5)
                rules = self.live("/api/prefetch").json()["rules"]
                status = next((r for r in rules if r["id"] == status["id"]), status)
                bar.total = status["bytes"]  # grows only when new entries match the rule
                bar.n = status["bytes"] - status["bytes_missing"]
                bar.refresh()
        return status



def _at(at: At | None, sep: str) -> str:
    """``?at=...`` (or ``&at=...``) for a point in the logs; "" for now."""
    return "" if at is None else f"{sep}at={quote(at_text(at))}"


class RemoteEntries(Mapping[str, Entry]):
    """A site's entries on a server, read when asked. A lookup costs one request, which
    also answers the lookups :func:`~eurec4a_nt.entries.find_entry` makes next (every
    longer path is no entry; with no entries below the one found, nothing below it is
    one either), so opening any key inside an entry costs one request however many
    entries the site has. Iterating reads every page once.

    ``resolve(path)`` is :meth:`SiteClient.resolve` for one site; ``pages()`` yields
    every entry, page by page.
    """

    def __init__(self, resolve: Callable[[str], tuple[Entry, str, bool]],
                 pages: Callable[[], Iterable[Entry]]) -> None:
        self._resolve, self._pages = resolve, pages
        self._known: dict[str, Entry | None] = {}
        self._leaves: set[str] = set()  # entries with no entry below them
        self._all: dict[str, Entry] | None = None

    def __getitem__(self, name: str) -> Entry:
        if self._all is not None:
            return self._all[name]
        if not isinstance(name, str):
            raise KeyError(name)
        if name not in self._known:
            self._learn(name)
        found = self._known[name]
        if found is None:
            raise KeyError(name)
        return found

    def _learn(self, name: str) -> None:
        parts = name.split("/")
        if any("/".join(parts[:i]) in self._leaves for i in range(1, len(parts))):
            self._known[name] = None
            return
        try:
            entry, _, nested = self._resolve(name)
        except NotFound:
            shortest = 1
        else:
            self._known[entry.name] = entry
            if not nested:
                self._leaves.add(entry.name)
            shortest = entry.name.count("/") + 2
        for i in range(shortest, len(parts) + 1):
            self._known["/".join(parts[:i])] = None

    def _every(self) -> dict[str, Entry]:
        if self._all is None:
            self._all = {e.name: e for e in self._pages()}
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._every())

    def __len__(self) -> int:
        return len(self._every())

