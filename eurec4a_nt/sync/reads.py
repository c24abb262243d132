"""Lazy reads over links: the :class:`~eurec4a_nt.node.Fetcher` a site server uses
when a reader needs objects this site does not hold.

Concurrent reads of one object share one transfer. A read waits as long as the peer
keeps sending; when the site holding the data is out of reach, the link drops, or
the peer stalls, the want is recorded (served on the next contact) and the reader
gets :class:`~eurec4a_nt.errors.Pending` at once.

A reader needing little of a block with a tree root, from a site whose link takes
ranges, is brought only the leaves holding it (:meth:`Reads.fetch_part`, see
:mod:`.ranges`): asked once however many read them, kept only if asked for, from that
link, and once they check against the tree root.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .. import hashtree
from ..errors import Corrupt, ObjectMissing, Pending
from ..ids import ObjectId
from ..manifests import Span, children, leaf_runs
from ..node import Node
from ..parts import Part
from ..stores import offloop
from ..tasks import consume
from . import plan
from .outbox import Priority
from .session import Session

#: A read gives up (pending) when the peer sent nothing for this long.
STALL_TIMEOUT = 30.0
#: Retry after this many seconds when data is pending at an unreachable site.
RETRY_AFTER = 30

log = logging.getLogger(__name__)


#: A run of leaves asked for: ``(block, tree root, first, last)``.
Run = tuple[ObjectId, str, int, int]


def _checked(part: Part, trees: set[str]) -> tuple[set[str], Corrupt | None]:
    """Of ``trees``, the tree roots ``part`` checks against, and why it failed the last
    it did not (blocking: call it in a thread)."""
    checked, error = set(), None
    for tree in trees:
        try:
            hashtree.verify(part.data, part.size, part.first, part.proof, tree)
            checked.add(tree)
        except Corrupt as exc:
            error = exc
    return checked, error


@dataclass
class _Asked:
    """Leaves of a block asked for (by a tree root, see :data:`Run`): from whom, the
    block's size, and who waits."""

    session: Session
    size: int
    done: asyncio.Future[Part]


class Reads:
    """Objects asked for on behalf of readers, and who is expected to send them."""

    def __init__(self, node: Node, route: Callable[[str | None], Session | None]) -> None:
        self.node = node
        self.route = route
        self._waiters: dict[ObjectId, asyncio.Future[None]] = {}
        self._asked: dict[ObjectId, Session] = {}
        self._spans: dict[ObjectId, Span] = {}
        #: Of those records, the ones whose peer sends the leaves read in parts along.
        self._along: set[ObjectId] = set()
        #: Runs of leaves asked for, by ``(block, tree root, first, last)``: asks for one
        #: run by different roots (one a forged record gave) are answered each on its own.
        self._parts: dict[Run, _Asked] = {}

    async def fetch(self, oids: list[ObjectId], site: str | None, hops: int,
                    spans: Mapping[ObjectId, Span] | None = None, priority: Priority | None = None,
                    via: Session | None = None, *, leaves: bool = False) -> None:
        """Bring ``oids`` of ``site`` here over the link that reaches it (or over ``via``),
        once however many ask; asked at ``priority`` (default: a reader's); with
        ``leaves`` (a reader here reads the ``spans``), a peer that takes them sends the
        leaves read in parts right after each record (see :meth:`expect`). Raises
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
                asked_spans = {oid: span for oid, span in (spans or {}).items() if oid in ask}
                self._spans.update(asked_spans)
                along = leaves and session.core.leaves
                (self._along.update if along else self._along.difference_update)(asked_spans)
                wants = plan.Wants(shallow=ask, spans=dict(spans or {}))
                await session.perform(session.core.want(wants, priority or Priority.READ, site, hops, along))
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

    async def fetch_part(self, oid: ObjectId, site: str | None, size: int, tree: str, first: int,
                         last: int, record: ObjectId | None = None) -> Part | None:
        """Bring the leaves ``[first, last)`` of block ``oid`` of ``site`` into the node's
        parts and return them with their proof, verified: from the link to ``site`` if it
        takes ranges, or, given the file ``record`` naming the block (held at the peer),
        relayed by the peer that reaches ``site`` if it takes ranges (else None: nothing
        asked). Raises Pending (the link dropped or stalls, or the peer cannot reach
        ``site`` now) or ObjectMissing (the peer lacks the block, or sent leaves that do
        not check)."""
        session = self.route(site)
        if session is None or not session.core.ranges or (session.peer != site and record is None):
            return None
        key = (oid, tree, first, last)
        asked = self._parts.get(key)
        if asked is None:
            asked = self._parts[key] = _Asked(session, size, asyncio.get_running_loop().create_future())
            asked.done.add_done_callback(consume)
            relayed = session.peer != site
            await session.perform(session.core.ask_ranges([(oid, first, last)], site if relayed else None,
                                                          record if relayed else None))
        while not asked.done.done():
            await asyncio.wait([asked.done], timeout=STALL_TIMEOUT)
            if not asked.done.done() and time.time() - asked.session.last_contact > STALL_TIMEOUT:
                self._settle(key, Pending(f"pending: held at {site}, not sending now, queued", site or "", RETRY_AFTER))
        return asked.done.result()

    def expect(self, session: Session, oid: ObjectId, data: bytes) -> None:
        """Before record ``oid`` (its bytes ``data``), asked for with its span's leaves,
        is stored: wait for those leaves from ``session`` as if asked for, so the
        readers it wakes find them on their way rather than ask (the peer sends them
        right after the record)."""
        span = self._spans.get(oid)
        if span is None or oid not in self._along:
            return
        self._along.discard(oid)
        loop = asyncio.get_running_loop()
        for block, size, first, last, tree in leaf_runs(data, span):
            if (block, tree, first, last) not in self._parts:
                asked = self._parts[block, tree, first, last] = _Asked(session, size, loop.create_future())
                asked.done.add_done_callback(consume)

    async def part_arrived(self, session: Session, part: Part) -> None:
        """Leaves of a block arrived from ``session``: kept if asked for from it, exactly
        that run of a block of that size, once they check against a tree root it was
        asked by (each ask they check against is answered; if they check against none,
        every one of them fails)."""
        run = (part.oid, part.first, part.last)
        keys = [key for key, asked in self._parts.items()
                if (key[0], *key[2:]) == run and asked.session is session and asked.size == part.size]
        if not keys:
            session.unsolicited += 1
            log.warning("%s: dropped bytes %d-%d of block %s: not asked for", session.name, part.first,
                        part.last, part.oid.short)
            return
        checked, error = await asyncio.to_thread(_checked, part, {key[1] for key in keys})
        if not checked:
            log.warning("%s: dropped bytes %d-%d of block %s: %s", session.name, part.first, part.last,
                        part.oid.short, error)
            for key in keys:
                self._settle(key, ObjectMissing(f"bytes {part.first}-{part.last} of block {part.oid.short} "
                                                f"arrived damaged: {error}"))
            return
        for key in keys:
            if key[1] in checked:
                self.node.parts.keep(part, key[1])
                self._settle(key, part)

    def _settle(self, key: Run, outcome: Part | Exception) -> None:
        """The leaves asked for as ``key`` are here (``outcome`` the part) or will not
        come (the error)."""
        asked = self._parts.pop(key, None)
        if asked is None or asked.done.done():
            return
        if isinstance(outcome, Exception):
            asked.done.set_exception(outcome)
        else:
            asked.done.set_result(outcome)

    def _give_up(self, oids: list[ObjectId], site: str | None, why: str) -> None:
        """Fail the readers of objects a link cannot bring now with Pending (the node
        records what they earned as wants)."""
        held = site or "another site"
        error = Pending(f"pending: held at {held}, {why}, queued", held, RETRY_AFTER)
        for key in [k for k in self._parts if k[0] in oids]:
            self._settle(key, error)
        for oid in oids:
            self._asked.pop(oid, None)
            self._spans.pop(oid, None)
            self._along.discard(oid)
            waiter = self._waiters.pop(oid, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)

    async def arrived(self, session: Session, oid: ObjectId, data: bytes) -> None:
        """After ``oid`` (its bytes ``data``) arrived from ``session``: if it is a record
        asked for with a byte span, its peer sends that span's blocks along (those not
        read in parts, to a peer that takes ranges); readers wait for them rather than
        ask again."""
        span = self._spans.pop(oid, None)
        if span is None:
            return
        blocks = [block for block, _ in children(data, span, session.core.ranges)]
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
        """``oid`` is held now: its readers go on (its parts held are no longer needed)."""
        self.node.parts.drop(oid)
        self._asked.pop(oid, None)
        waiter = self._waiters.pop(oid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def failed(self, oid: ObjectId, exc: Exception) -> None:
        """``oid`` arrived damaged; its readers get an error (a later read asks again)."""
        self._asked.pop(oid, None)
        self._along.discard(oid)
        waiter = self._waiters.pop(oid, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(ObjectMissing(f"object {oid.short} arrived damaged: {exc}"))

    def lacking(self, session: Session, oids: list[ObjectId], held_at: str, pending: bool) -> None:
        """The peer does not hold ``oids``; with ``pending``, it is waiting for them itself."""
        def error(oid: ObjectId) -> Exception:
            if pending:
                return Pending(f"pending: held at {held_at or 'another site'}, not reachable now, queued", held_at,
                               RETRY_AFTER)
            return ObjectMissing(f"{session.peer} does not hold object {oid}")

        lacked = set(oids)
        self._along -= lacked
        for key in [k for k, asked in self._parts.items() if k[0] in lacked and asked.session is session]:
            self._settle(key, error(key[0]))
        for oid in oids:
            self._asked.pop(oid, None)
            waiter = self._waiters.pop(oid, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(error(oid))

    def session_ended(self, session: Session) -> None:
        """Fail reads waiting on a dropped session at once (their wants are recorded)."""
        lost = [oid for oid, asked in self._asked.items() if asked is session]
        lost += [key[0] for key, asked in self._parts.items() if asked.session is session]
        if lost:
            self._give_up(lost, session.peer, "the link dropped")

    def stop(self) -> None:
        for asked in self._parts.values():
            if not asked.done.done():
                asked.done.set_exception(Pending("the site server is stopping"))
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(Pending("the site server is stopping"))
