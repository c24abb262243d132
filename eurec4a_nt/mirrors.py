"""Several site servers that hold the same sites, nearest first: the site server a
user works with, the site that published an entry, the hub, a home institute's mirror.

:class:`Mirrors` is a :class:`~eurec4a_nt.types.Backend`: entries come from the first
server that answers live (a copy cached earlier is used only when none does), objects
from the first that has them (:class:`~eurec4a_nt.stores.fallback.FallbackStore`),
through one local block cache. Whenever a server other than the first one answered, a
:class:`FallbackWarning` says which one and why the others were passed over (once per
server and reason); :attr:`Mirrors.last` holds the latest such account.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from .client import RemoteEntries, SiteClient
from .entries import Entry
from .errors import NotFound, Unreachable
from .stores.cached import CachingStore
from .stores.fallback import PASSED_OVER, FallbackStore
from .stores.http import HTTPStore
from .versions import At, Version

log = logging.getLogger(__name__)
T = TypeVar("T")


class FallbackWarning(UserWarning):
    """Data came from another place than the nearest one (which is named, with why)."""


class Mirrors:
    """Site servers tried in the order given (nearest first)."""

    def __init__(self, servers: Sequence[str], token: str | None = None, cache: str | Path | None = None,
                 cache_cap: int | None = None) -> None:
        urls = list(dict.fromkeys(s.rstrip("/") for s in servers))
        if not urls:
            raise NotFound("no site server to read from")
        self.clients = [SiteClient(url, token=token, cache=cache, stale_ok=False, cache_cap=cache_cap) for url in urls]
        self._cache = self.clients[0].blocks
        self._said: set[tuple[str, str]] = set()
        #: The latest fallback: the server used, and ``(server, reason)`` of those passed over.
        self.last: tuple[str, list[tuple[str, str]]] | None = None

    def __repr__(self) -> str:
        return f"Mirrors({[c.server for c in self.clients]})"

    def _fell_back(self, used: str, failed: list[tuple[str, str]]) -> None:
        self.last = (used, failed)
        why = "; ".join(f"{server}: {reason}" for server, reason in failed)
        log.info("read from %s (%s)", used, why)
        key = (used, "; ".join(server + reason.split(":")[0] for server, reason in failed))
        if key not in self._said:
            self._said.add(key)
            warnings.warn(f"read from {used}, not the nearer {why}", FallbackWarning, stacklevel=4)

    def _first(self, call: Callable[[SiteClient], T]) -> T:
        failed: list[tuple[str, str]] = []
        for client in self.clients:
            try:
                value = call(client)
            except PASSED_OVER as exc:
                failed.append((client.server, f"{type(exc).__name__}: {exc}"))
                continue
            if failed:
                self._fell_back(client.server, failed)
            return value
        try:  # nobody answers: what the nearest one cached earlier, with its OfflineWarning
            self.clients[0].stale_ok = True
            return call(self.clients[0])
        except Unreachable:
            raise Unreachable("no site server answers: " + "; ".join(f"{s}: {r}" for s, r in failed)) from None
        finally:
            self.clients[0].stale_ok = False

    def sites(self) -> list[str]:
        return self._first(lambda c: c.sites())

    def entries(self, site: str, at: At | None = None) -> RemoteEntries:
        self._first(lambda c: c.entries(site, at))  # NotFound for an unknown site
        return RemoteEntries(lambda path: self._first(lambda c: c.resolve(site, path, at)),
                             lambda: self.entries_under(site, "", at))

    def entries_under(self, site: str, prefix: str = "", at: At | None = None) -> Iterator[Entry]:
        return iter(self._first(lambda c: list(c.entries_under(site, prefix, at))))

    def versions(self, site: str, name: str) -> list[Version]:
        return self._first(lambda c: c.versions(site, name))

    def objects_for(self, site: str) -> CachingStore:
        """``site``'s objects from the local block cache, else the first server with them."""
        sources = [(c.server, HTTPStore(c.server, c.http, site=site)) for c in self.clients]
        return CachingStore(self._cache, FallbackStore(sources, self._fell_back))
