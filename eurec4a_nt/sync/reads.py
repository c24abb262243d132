"""Lazy reads over links: the :class:`~eurec4a_nt.node.Fetcher` a site server uses
when a reader needs objects this site does not hold.

Concurrent reads of one object share one transfer. A read waits as long as the peer
keeps sending; when the site holding the data is out of reach, the link drops, or
the peer stalls, the want is recorded (served on the next contact) and the reader
gets :class:`~eurec4a_nt.errors.Pending` at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from ..errors import ObjectMissing, Pending
from ..ids import ObjectId
from ..manifests import Span, children
from ..node import Node
from ..stores import offloop
from ..tasks import consume
from . import plan
from .outbox import Priority
from .session import Session

#: A read gives up (pending) when the peer sent nothing for this long.
STALL_TIMEOUT = 30.0
#: Retry after this many seconds when data is pending at an unreachable site.
RETRY_AFTER = 30


class Reads:
    """Objects asked for on behalf of readers, and who is expected to send them."""

    def __init__(self, node: Node, route: Callable[[str | None], Session | None]) -> None:
        self.node = node
        self.route = route
        self._waiters: dict[ObjectId, asyncio.Future[None]] = {}
        self._asked: dict[ObjectId, Session] = {}
        self._spans: dict[ObjectId, Span] = {}

    async def fetch(self, oids: list[ObjectId], site: str | None, hops: int,
                    spans: Mapping[ObjectId, Span] | None = None, priority: Priority | None = None,
                    via: Session | None = None) -> None:
        """Bring ``oids`` of ``site`` here over the link that reaches it (or over ``via``),
        once however many ask; asked at ``priority`` (default: a reader's). Raises
        Pending or ObjectMissing."""
        loop = asyncio.get_running_loop()
        futures, ask = [], []
        for oid in oids:
            if oid not in self._waiters:
                self._waiters[oid] = loop.create_future()
                ask.append(oid)
            futures.append(self._waiters[oid])
        if ask:
            lacking = set(await offloop.call(self.node.store.objects.missing, ask))
            for oid in [o for o in ask if o not in lacking]:  # arrived meanwhile
                ask.remove(oid)
                self._waiters.pop(oid).set_result(None)
        if ask:
            session = via or self.route(site)
            if session is None and (site is None or site not in self.node.store.sites()):
                for oid in ask:
                    self._waiters.pop(oid).set_exception(ObjectMissing(f"object {oid} is not held here"))
            elif session is None:
                self._give_up(ask, site, "not reachable now")
            else:
                self._asked.update((oid, session) for oid in ask)
                self._spans.update((oid, span) for oid, span in (spans or {}).items() if oid in ask)
                wants = plan.Wants(shallow=ask, spans=dict(spans or {}))
                await session.perform(session.core.want(wants, priority or Priority.READ, site, hops))
        while True:  # as long as the peer keeps sending
            done, pending = await asyncio.wait(futures, timeout=STALL_TIMEOUT)
            if not pending:
                for future in done:
                    future.result()
                return
            stalled = [oid for oid, waiter in self._waiters.items() if waiter in pending
                       and (oid not in self._asked or
                            time.time() - self._asked[oid].last_contact > STALL_TIMEOUT)]
            if stalled:
                self._give_up(stalled, site, "not sending now")

    def _give_up(self, oids: list[ObjectId], site: str | None, why: str) -> None:
        """Fail the readers of objects a link cannot bring now with Pending (the node
        records what they earned as wants)."""
        held = site or "another site"
        error = Pending(f"pending: held at {held}, {why}, queued", held, RETRY_AFTER)
        for oid in oids:
            self._asked.pop(oid, None)
            self._spans.pop(oid, None)
            waiter = self._waiters.pop(oid, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)

    async def arrived(self, session: Session, oid: ObjectId, data: bytes) -> None:
        """After ``oid`` (its bytes ``data``) arrived from ``session``: if it is a record
        asked for with a byte span, its peer sends that span's blocks along; readers
        wait for them rather than ask again."""
        span = self._spans.pop(oid, None)
        if span is None:
            return
        blocks = [block for block, _ in children(data, span)]
        lacking = set(await offloop.call(self.node.store.objects.missing, blocks))
        loop = asyncio.get_running_loop()
        for block in blocks:
            if block not in self._waiters and block in lacking:
                self._waiters[block] = loop.create_future()
                self._waiters[block].add_done_callback(consume)
                self._asked[block] = session

    def awaited(self, oid: ObjectId) -> bool:
        """Whether a read waits for ``oid`` (so a peer sending it was asked to)."""
        return oid in self._waiters

    def stored(self, oid: ObjectId) -> None:
        """``oid`` is held now: its readers go on."""
        self._asked.pop(oid, None)
        waiter = self._waiters.pop(oid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def failed(self, oid: ObjectId, exc: Exception) -> None:
        """``oid`` arrived damaged; its readers get an error (a later read asks again)."""
        self._asked.pop(oid, None)
        waiter = self._waiters.pop(oid, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(ObjectMissing(f"object {oid.short} arrived damaged: {exc}"))

    def lacking(self, session: Session, oids: list[ObjectId], held_at: str, pending: bool) -> None:
        """The peer does not hold ``oids``; with ``pending``, it is waiting for them itself."""
        for oid in oids:
            self._asked.pop(oid, None)
            waiter = self._waiters.pop(oid, None)
            if waiter is None or waiter.done():
                continue
            if pending:
                waiter.set_exception(Pending(f"pending: held at {held_at or 'another site'}, not reachable "
                                             "now, queued", held_at, RETRY_AFTER))
            else:
                waiter.set_exception(ObjectMissing(f"{session.peer} does not hold object {oid}"))

    def session_ended(self, session: Session) -> None:
        """Fail reads waiting on a dropped session at once (their wants are recorded)."""
        lost = [oid for oid, asked in self._asked.items() if asked is session]
        if lost:
            self._give_up(lost, session.peer, "the link dropped")

    def stop(self) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(Pending("the site server is stopping"))
