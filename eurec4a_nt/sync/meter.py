"""The traffic meter of a site's links: bytes moved, counted against each link's daily
budget at once and written to the index now and then."""

from __future__ import annotations

from ..index import Index
from .budget import Traffic, bulk_allowed, remaining
from .config import LinkConfig
from .session import Session


class Meter:
    """Traffic of all sessions of one site, and what their budgets leave today."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.traffic = Traffic()

    def bulk_allowed(self, link: LinkConfig) -> bool:
        """Whether the link's daily budget leaves room for bulk transfers today."""
        return bulk_allowed(link.budget, self._used(link))

    def today(self, name: str) -> tuple[int, int]:
        """Bytes sent and received today over the link (or dialled-in peer) ``name``,
        those not yet written to the index included."""
        sent, received = self.index.traffic(name)
        pending = self.traffic.pending(name)
        return sent + pending.sent, received + pending.received

    def _used(self, link: LinkConfig) -> int:
        return sum(self.today(link.name))

    def tell_budget(self, session: Session) -> None:
        """Tell ``session``'s core what its link's budget leaves today (if it has one)."""
        if session.link is not None and session.link.budget:
            session.tell(session.core.budget(remaining(session.link.budget, self._used(session.link))))

    def count(self, session: Session, sent: int, received: int) -> None:
        """Bytes moved: against the link's allowance at once (the peer is told to stop
        bulk while what it has in flight still fits), to the index now and then."""
        told = session.core.moved(sent + received)
        if told:
            session.tell(told)
        if self.traffic.add(session.name, sent, received):
            self.flush(session)

    def flush(self, session: Session) -> None:
        """Write what ``session`` moved to the index, then tell it what is left."""
        counts = self.traffic.take(session.name)
        if counts.total:
            self.index.count_traffic(session.name, counts.sent, counts.received)
        self.tell_budget(session)
