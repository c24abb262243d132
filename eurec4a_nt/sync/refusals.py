"""Prefetch through a hub, refused with the reason.

A site that prefetches entries of a third site asks its hub for them naming that site
(a ``want`` with ``site``); the hub fetches them once on behalf of every site asking.
When the hub cannot (the third site is not in its keyring, it has no link to it, or
that link's daily budget holds bulk back) it says so in a ``refused`` message
(``{"type": "refused", "site": ..., "reason": ...}``), and says again, with
``reason: null``, once it can. Only to a side that named ``refusals`` in
``X-NT-Takes`` (see :mod:`.handshake`).

Both sides keep a :class:`Refusals` table (the hub: what it refuses to whom; the
asker: what each hub refuses it) for status, pages and the prefetch rule listing, and
log each refusal once when it begins and once when it ends, not at every retry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from .actions import Say

log = logging.getLogger(__name__)

#: Refusals kept per peer at most (a peer cannot grow the table further).
MAX_PER_PEER = 256


def why_refused(hub: str, site: str, *, known: bool, linked: bool, bulk_held: bool) -> str | None:
    """Why ``hub`` cannot fetch ``site``'s data on behalf of a peer (None: it can).

    ``known``: ``site`` is in the hub's keyring; ``linked``: the hub has a link to it
    (connected now, dialled, or dialled in since the hub started); ``bulk_held``: that
    link holds the asked-for bulk back (its daily budget is spent).
    """
    if not known:
        return f"{site} is not in {hub}'s keyring"
    if not linked:
        return f"{hub} has no link to {site}"
    if bulk_held:
        return f"the daily budget of the link between {hub} and {site} is spent; bulk waits for the next UTC day"
    return None


class Told:
    """What one session's peer was told about fetching through this site, per site."""

    def __init__(self, takes: bool) -> None:
        self.takes = takes
        self._told: dict[str, str | None] = {}

    def say(self, site: str, reason: str | None) -> list[Say]:
        """The message telling the peer that fetching ``site``'s data through this side
        is refused for ``reason`` (or, with None, served): sent the first time in a
        session and whenever it changes, never to a peer that does not take it."""
        if not self.takes or (site in self._told and self._told[site] == reason):
            return []
        if site not in self._told and len(self._told) >= MAX_PER_PEER:
            return []  # a peer asking through this side for that many sites is told no more
        self._told[site] = reason
        return [Say("refused", {"site": site, "reason": reason})]

    def refused(self) -> list[str]:
        """The sites the peer was last told are refused."""
        return [site for site, reason in self._told.items() if reason]


@dataclass(frozen=True)
class Refusal:
    """``peer`` and ``site``: who refuses (or is refused) fetching whose data; why and since when."""

    peer: str
    site: str
    reason: str
    since: float

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "reason": self.reason, "since": self.since}


class Refusals:
    """Refusals kept by one site: ``by_peer`` True for those its peers (hubs) sent it,
    False for those it sent its peers. Each begins and ends with one log line."""

    def __init__(self, by_peer: bool) -> None:
        self.by_peer = by_peer
        self._held: dict[str, dict[str, Refusal]] = {}
        self._full: set[str] = set()

    def note(self, peer: str, site: str, reason: str | None) -> bool:
        """Fetching ``site``'s data through ``peer`` (or for ``peer``) is refused for
        ``reason``, or (None) no longer refused; True if that changed what is held. More
        than :data:`MAX_PER_PEER` refusals of one peer are dropped, with one log line."""
        held = self._held.setdefault(peer, {})
        old = held.get(site)
        if reason is None:
            if old is None:
                return False
            del held[site]
            log.info("prefetch of %s's data %s %s again", site,
                     "served through" if self.by_peer else "fetched here for", peer)
            return True
        if old is not None and old.reason == reason:
            return False
        if old is None and len(held) >= MAX_PER_PEER:
            if peer not in self._full:
                self._full.add(peer)
                log.warning("%s: more than %d refusals; dropping the others", peer, MAX_PER_PEER)
            return False
        held[site] = Refusal(peer, site, reason, old.since if old else time.time())
        if self.by_peer:
            log.warning("prefetch of %s's data through %s refused by %s: %s", site, peer, peer, reason)
        else:
            log.warning("refusing %s's prefetch of %s's data: %s", peer, site, reason)
        return True

    def of(self, peer: str) -> list[Refusal]:
        """The refusals of (or to) ``peer``, by site."""
        return sorted(self._held.get(peer, {}).values(), key=lambda r: r.site)

    def all(self) -> list[Refusal]:
        """Every refusal held, by peer and site."""
        return sorted((r for held in self._held.values() for r in held.values()), key=lambda r: (r.peer, r.site))
