"""Resume tickets: what lets a dialler that proved its site once reconnect in one round
trip (:mod:`.handshake`).

A listener hands each dialler that takes them a fresh random ticket in its ``hello``;
the dialler's next dial signs that ticket in place of a challenge. A ticket is good
once, only for the site it was given to, and for :data:`TTL` seconds; a listener
keeps at most :data:`PER_SITE` per site (the oldest goes first), so what it holds is
bounded by its keyring. Nothing is written to disk: after a restart every ticket is
unknown and diallers prove themselves on a challenge, as on a first dial.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass

#: Seconds a ticket is good for after it was issued.
TTL = 600.0
#: Tickets a listener keeps per site (a dialler holds one per link; a few spare for
#: connections that got a ticket but dropped before it was used).
PER_SITE = 4


@dataclass(frozen=True)
class Held:
    """A ticket a dialler holds for its next dial of one link."""

    peer: str
    ticket: str
    expires: float

    def good(self, now: float) -> bool:
        return now < self.expires


class Tickets:
    """The tickets a listening site issued and not yet took back. Not thread-safe
    (one event loop); ``now`` is seconds since the epoch, passed in."""

    def __init__(self) -> None:
        self._issued: dict[str, tuple[str, float]] = {}
        self._per_site: dict[str, deque[str]] = {}
        #: Tickets redeemed, and refused (unknown, used, another site's, expired).
        self.redeemed = self.refused = 0

    def issue(self, site: str, now: float) -> str:
        """A fresh ticket for ``site``'s next dial; the site's oldest is dropped when it
        already holds :data:`PER_SITE`."""
        queue = self._per_site.setdefault(site, deque())
        for old in [t for t in queue if t not in self._issued or self._issued[t][1] <= now]:
            queue.remove(old)
            self._issued.pop(old, None)
        while len(queue) >= PER_SITE:
            self._issued.pop(queue.popleft(), None)
        ticket = secrets.token_hex(16)
        self._issued[ticket] = (site, now + TTL)
        queue.append(ticket)
        return ticket

    def redeem(self, site: str, ticket: str, now: float) -> str:
        """Take ``ticket`` back for good: ``""`` if ``site`` may open a link on it,
        else why not (the ticket cannot be used again either way)."""
        owner, expires = self._issued.pop(ticket, ("", 0.0))
        queue = self._per_site.get(owner)
        if queue is not None and ticket in queue:
            queue.remove(ticket)
        why = ("unknown or used already" if not owner else
               "issued to another site" if owner != site else
               "expired" if expires <= now else "")
        if why:
            self.refused += 1
        else:
            self.redeemed += 1
        return why

    def status(self) -> dict[str, int]:
        """Tickets held (issued, not yet redeemed; some may have expired), redeemed and refused."""
        return {"held": len(self._issued), "redeemed": self.redeemed, "refused": self.refused}
