"""Dials on clock: what lets a dialler holding no resume ticket prove its site in its
first dial, so that a first connection costs one round trip (:mod:`.handshake`).

The dialler signs its clock (milliseconds since the epoch, UTC) with its fresh nonce.
A listener takes such a dial only if the clock is within :data:`WINDOW` of its own, not
before this server started, and the (site, nonce) pair is not one it took already: it
remembers those until their clock leaves the window, at most :data:`CAPACITY` at once
(when full it takes no more until some expire, and diallers prove themselves on a
challenge meanwhile). A recorded dial replayed is thus refused by this memory within the
window and by the clock outside it; the memory is in memory only, and a restart cannot
bypass it since dials signed before the start are refused.
"""

from __future__ import annotations

#: Seconds a dial's clock may be ahead of or behind the listener's.
WINDOW = 60.0
#: Dials on clock a listener remembers at most (taken within the last two windows).
CAPACITY = 4096


def stamp(now: float) -> str:
    """The clock a dial signs (``X-NT-Clock``) at ``now`` (seconds since the epoch)."""
    return str(int(now * 1000))


class Clocks:
    """The dials on clock a listening site took, by site and nonce, while their clock is
    within the window. Not thread-safe (one event loop); times are seconds since the
    epoch, passed in; ``started`` is when this server started."""

    def __init__(self, started: float) -> None:
        self.started = started
        self._seen: dict[tuple[str, str], float] = {}
        #: Dials on clock taken, and refused (clock off, replayed, memory full).
        self.taken = self.refused = 0

    def check(self, site: str, nonce: str, clock: str, now: float) -> str:
        """``""`` if ``site`` may open a link on a dial with ``nonce`` signed at
        ``clock`` (:func:`stamp`), else why not. Once its signature checks out, the dial
        must be :meth:`remember`-ed before anything else runs on the event loop."""
        signed = int(clock) / 1000
        if len(self._seen) >= CAPACITY:
            self._seen = {k: until for k, until in self._seen.items() if until > now}
        why = (f"its clock is {signed - now:+.1f} s off this site's (more than {WINDOW:.0f} s)"
               if abs(signed - now) > WINDOW else
               "it was signed before this server started" if signed < self.started else
               "replayed (this nonce was used already)" if (site, nonce) in self._seen else
               f"{CAPACITY} dials on clock taken within {2 * WINDOW:.0f} s" if len(self._seen) >= CAPACITY else "")
        if why:
            self.refused += 1
        return why

    def remember(self, site: str, nonce: str, clock: str) -> None:
        """Take a dial that passed :meth:`check` and whose signature checked out: its
        nonce cannot be used again while its clock is within the window."""
        self._seen[(site, nonce)] = int(clock) / 1000 + WINDOW
        self.taken += 1

    def status(self) -> dict[str, int]:
        """Dials on clock remembered now (some may have expired), taken and refused."""
        return {"remembered": len(self._seen), "taken": self.taken, "refused": self.refused}
