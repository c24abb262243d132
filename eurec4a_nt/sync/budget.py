"""Bandwidth caps and daily traffic budgets of links: pure arithmetic over byte counts
and a clock reading passed in."""

from __future__ import annotations

from dataclasses import dataclass

#: Counted traffic is written to the index once this many bytes gathered.
FLUSH_BYTES = 256 << 10


class TokenBucket:
    """A bandwidth cap of ``rate`` bytes per second, one second deep."""

    def __init__(self, rate: int, now: float) -> None:
        self.rate = rate
        self.level = 0.0
        self.stamp = now

    def delay(self, size: int, now: float) -> float:
        """Take ``size`` bytes at time ``now``; return the seconds to wait before sending
        them (0 while the bucket holds enough)."""
        self.level = min(self.level + (now - self.stamp) * self.rate, float(self.rate))
        self.stamp = now
        self.level -= size
        return max(-self.level / self.rate, 0.0)


@dataclass
class Counts:
    sent: int = 0
    received: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.received


class Traffic:
    """Bytes moved per link name, not yet written to the index."""

    def __init__(self) -> None:
        self._pending: dict[str, Counts] = {}

    def add(self, link: str, sent: int = 0, received: int = 0) -> bool:
        """Count bytes; True when enough gathered to be written out (see :meth:`take`)."""
        counts = self._pending.setdefault(link, Counts())
        counts.sent += sent
        counts.received += received
        return counts.total >= FLUSH_BYTES

    def take(self, link: str) -> Counts:
        """The bytes counted for ``link`` since the last take (then forgotten here)."""
        return self._pending.pop(link, Counts())

    def pending(self, link: str) -> Counts:
        """Bytes counted for ``link`` and not yet taken."""
        return self._pending.get(link) or Counts()


#: Room one more piece takes on the wire (payload and header), checked before sending it.
PIECE_ROOM = (64 << 10) + 128
#: When what is left of a budget falls below this, the peer is told to stop bulk: about
#: what it has in flight on a satellite link (1 MB/s, 0.7 s round trip) plus a piece.
STOP_MARGIN = 1 << 20


def remaining(budget: int | None, used_today: int) -> int | None:
    """Bytes a link with a daily ``budget`` may still move today (None: no budget)."""
    return None if budget is None or budget <= 0 else budget - used_today


def bulk_allowed(budget: int | None, used_today: int) -> bool:
    """Whether a link with a daily ``budget`` (bytes, both directions; None for none)
    that moved ``used_today`` bytes today may still move bulk data."""
    return budget is None or budget <= 0 or used_today < budget
