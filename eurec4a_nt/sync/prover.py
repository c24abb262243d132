"""Answering the ranges a peer asks for (see :mod:`.ranges`): one task per session
answers them in turn, each answer sent (paced, see :meth:`.sender.Sender.answer`)
before the next block is read, while the session goes on reading the peer's
acknowledgements. A range of a third site's block not held here is relayed: its leaves
are fetched from that site and checked here against the tree root in the file record
the peer names, before anything is passed on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from ..errors import NTError, ObjectMissing, Pending
from ..ids import ObjectId
from ..node import Node
from ..stores import offloop
from ..tasks import spawn
from . import ranges
from .actions import Prove, Say
from .outbox import Priority
from .session import Session

log = logging.getLogger(__name__)

#: Ranges a peer may have waiting for their answers (a few hundred KB of memory at most).
MAX_ASKED_RANGES = 1024
#: Ranges of third sites' blocks relayed at once for one peer (each holds at most half
#: a block here while it is under way).
RELAYS_AT_ONCE = 4
#: A range a peer asked for: ``(block, start, end, file record, site)`` (see :class:`~.actions.Prove`).
Asked = tuple[ObjectId, int, int, ObjectId | None, str | None]


class Prover:
    """The ranges each peer asked for and this site has not answered yet."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._proving: dict[Session, deque[Asked]] = {}

    def ask(self, session: Session, prove: Prove) -> None:
        """Queue the peer's ranges for answering (at most :data:`MAX_ASKED_RANGES`; a
        ``lack`` for the others), answered by one task per session while the session
        goes on reading (its acknowledgements pace the answers)."""
        queued = self._proving.get(session)
        if queued is None:
            queued = self._proving[session] = deque()
            spawn(self._prove(session, queued))
        room = max(MAX_ASKED_RANGES - len(queued), 0)
        queued.extend((*asked, prove.site) for asked in prove.ranges[:room])
        if prove.ranges[room:]:
            log.warning("%s: %d ranges asked beyond %d waiting: refused", session.name, len(prove.ranges) - room,
                        MAX_ASKED_RANGES)
            session.tell([Say("lack", {"ids": list(dict.fromkeys(r[0] for r in prove.ranges[room:])),
                                       "held_at": ""})])

    async def _prove(self, session: Session, queued: deque[Asked]) -> None:
        """Answer the ranges ``queued`` for the peer one at a time, each sent before the
        next block is read (so a peer asking for many holds at most one block here): the
        leaves holding it and their proof, or a ``lack`` for a block not held here or a
        range beyond it. Leaves of a third site's block not held here are relayed from
        that site (:meth:`_relay`), :data:`RELAYS_AT_ONCE` at a time, each sent when it
        came."""
        relays = asyncio.Semaphore(RELAYS_AT_ONCE)
        try:
            while queued:
                await self._answer(session, relays, *queued.popleft())
        except ConnectionError:
            pass  # the link ended: the peer asks again on the next one
        finally:
            del self._proving[session]

    async def _answer(self, session: Session, relays: asyncio.Semaphore, oid: ObjectId, start: int, end: int,
                      record: ObjectId | None, site: str | None) -> None:
        try:
            block = await offloop.call(self.node.store.objects.get, oid)
        except ObjectMissing:
            if record is None or site in (None, session.peer, self.node.site):
                session.tell([Say("lack", {"ids": [oid], "held_at": ""})])
            else:
                await relays.acquire()  # released once relayed
                spawn(self._relay(session, relays, oid, start, end, record, site))
            return
        if end > len(block):
            log.warning("%s: asked for bytes %d-%d of block %s of %d bytes: refused", session.name, start, end,
                        oid.short, len(block))
            session.tell([Say("lack", {"ids": [oid], "held_at": ""})])
            return
        await session.sender.answer(await asyncio.to_thread(ranges.answer, oid, block, start, end))

    async def _relay(self, session: Session, relays: asyncio.Semaphore, oid: ObjectId, start: int, end: int,
                     record: ObjectId, site: str) -> None:
        """Answer a range of ``site``'s block ``oid`` not held here with the leaves and
        proof fetched from ``site``, verified here first against the tree root in file
        ``record`` (see :meth:`Node.proven`); where no link brings parts, from the block
        fetched whole. A ``lack`` (pending, if ``site`` is out of reach now) otherwise.
        Releases a place in ``relays`` when done."""
        try:
            await self._relayed(session, oid, start, end, record, site)
        except ConnectionError:
            pass  # the link ended: the peer asks again on the next one
        finally:
            relays.release()

    async def _relayed(self, session: Session, oid: ObjectId, start: int, end: int, record: ObjectId,
                       site: str) -> None:
        """The answer to one range relayed, or a lack (see :meth:`_relay`)."""
        try:
            part = await self.node.proven(oid, start, end, record, site)
            if part is None:
                await self.node.ensure([oid], site, hops=1, priority=Priority.READ)
                block = await offloop.call(self.node.store.objects.get, oid)
                message = await asyncio.to_thread(ranges.answer, oid, block, start, end)
            else:
                message = ranges.packed(part)
        except Pending as exc:
            session.tell([Say("lack", {"ids": [oid], "held_at": exc.held_at, "pending": True})])
            return
        except NTError as exc:
            log.info("%s: cannot relay bytes %d-%d of block %s of %s: %s", session.name, start, end, oid.short,
                     site, exc)
            session.tell([Say("lack", {"ids": [oid], "held_at": ""})])
            return
        await session.sender.answer(message)
