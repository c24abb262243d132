"""What arrives over a site's sessions and is not the core's to handle alone.

:class:`Arrivals` carries out the actions a session's core returns for what the peer
sent: objects to keep (decoded, verified, then stored if something asked for them, else
held back in the :class:`~.pen.Pen` until something names them), commits to keep, a
checkpoint to start a log from, the answer to one offered (the commits after it go out),
wants to relay from the site holding the objects, and lacks to report to waiting reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..entries import Entry
from ..errors import BadInput, Corrupt, NTError, ObjectMissing, Pending
from ..ids import ObjectId
from ..manifests import children
from ..node import Node
from ..stores import offloop
from ..tasks import spawn
from ..tree import held_below
from . import answers
from .actions import Action, CatchUp, Join, Keep, Lacking, Receive, Relay, Say
from .pen import Pen
from .reads import Reads
from .session import Session

log = logging.getLogger(__name__)

#: Asks a peer for what this site lacks of some entries (the exchange's completing).
Complete = Callable[[Session, list[Entry]], Awaitable[None]]
#: Sends a peer the commits it lacks, and pushes what it subscribes to of them.
CatchUpWith = Callable[[Session], Awaitable[None]]


class Arrivals:
    """Objects, commits, checkpoints, wants and lacks from peers, for all sessions of one site.

    ``complete`` asks the peer for the rest of the entries an object is the root of,
    once it was stored; ``catch_up`` sends the peer the commits it lacks.
    """

    def __init__(self, node: Node, reads: Reads, complete: Complete, catch_up: CatchUpWith) -> None:
        self.node = node
        self.reads = reads
        self.pen: Pen[Session] = Pen()
        self._complete = complete
        self._catch_up = catch_up

    async def act(self, session: Session, action: Action) -> None:
        """Carry out one action of ``session``'s core."""
        if isinstance(action, Keep):
            await self._keep(session, action)
        elif isinstance(action, Relay):
            spawn(self._relay(session, action))
        elif isinstance(action, Receive):
            added, _ = await self.node.receive(action.raws)
            await session.perform(session.core.received_commits(self.node.store.heads()))
            roots = [c.entry.root for commit in added for c in commit.changes if c.entry is not None]
            for oid, source, data in self.pen.release(roots):  # roots that came before their commit
                await self._store(source, oid, data)
        elif isinstance(action, Join):
            spawn(self._join(session, action))
        elif isinstance(action, CatchUp):
            await self._catch_up(session)
        elif isinstance(action, Lacking):
            self.reads.lacking(session, action.ids, action.held_at, action.pending)
            if not action.pending:  # the holder has none: nothing to ask it again for
                await asyncio.to_thread(self.node.index.forget_wants, action.ids, session.peer)

    async def _keep(self, session: Session, keep: Keep) -> None:
        """Decode and verify an object that arrived; store it if something asked for it
        (a read waits for it, or a known entry names it), else hold it back in the
        :class:`~.pen.Pen` until something names it."""
        try:
            data = await offloop.call(answers.decoded, self.node.store.objects, keep)
        except (Corrupt, BadInput) as exc:
            log.warning("%s: dropped %s: %s", session.name, keep.oid.short, exc)
            self.reads.failed(keep.oid, exc)
            return
        if self.reads.awaited(keep.oid) or bool(await offloop.call(self.node.named, [keep.oid])):
            await self._store(session, keep.oid, data)
            return
        dropped = self.pen.add(keep.oid, session, data)
        if dropped:
            session.unsolicited += dropped
            if session.unsolicited == dropped:
                log.warning("%s: dropping objects nobody asked for (first %s)", session.name, keep.oid.short)

    async def _store(self, session: Session, oid: ObjectId, data: bytes) -> None:
        """Store an object that arrived (and what it names that arrived before it), then
        follow up on it."""
        try:
            await self.node.put_objects([(oid, data)])
        except (Corrupt, BadInput) as exc:
            log.warning("%s: dropped %s: %s", session.name, oid.short, exc)
            self.reads.failed(oid, exc)
            return
        for child, source, held in self.pen.release(c for c, _ in children(data)):
            await self._store(source, child, held)
        await self.reads.arrived(session, oid, data)
        if session.core.stored(oid):
            below = await offloop.call(held_below, oid, data, self.node.store.objects)
            await session.perform(session.core.held_below(below))
            return
        entries = await offloop.call(self.node.store.db.by_root, oid)
        if entries:
            await self._complete(session, entries)

    async def _join(self, session: Session, join: Join) -> None:
        """Start a log this site holds nothing of at the checkpoint the peer offered: its
        file record, then its blocks, fetched over this link (the peer relays them from
        the log's own site if it does not hold them), its signature checked against the
        keyring. Then tell the peer how far this site holds the log, so it sends only the
        commits after that, and ask it for what this site subscribes to of the log's
        entries. A checkpoint that cannot be fetched or does not verify starts nothing
        (one log line says why): the peer then sends the log's commits from the first."""
        site, ref, store = join.site, join.ref, self.node.store
        started = False
        if (await asyncio.to_thread(store.heads)).get(site, 0) == 0:
            try:
                await self.reads.fetch([ref.root], site, 2, via=session)
                record = await offloop.call(store.objects.get, ref.root)
                await self.reads.fetch([oid for oid, _ in children(record)], site, 2, via=session)
                started = await self.node.start_at(ref)
            except NTError as exc:
                log.warning("%s: refused the checkpoint of %s at seq %d offered; taking its commits "
                            "instead: %s", session.name, site, ref.seq, exc)
        if started:
            log.info("%s: started the log of %s at its checkpoint of seq %d", session.name, site, ref.seq)
        await session.perform(session.core.joined(site, (await asyncio.to_thread(store.heads)).get(site, 0)))
        if started:
            await self._complete(session, await asyncio.to_thread(lambda: list(store.state(site).entries.values())))

    async def _relay(self, session: Session, relay: Relay) -> None:
        """Fetch what the peer wants from the site holding it, then send it on."""
        try:
            if relay.hops <= 1:
                raise ObjectMissing("not held here")
            await self.node.ensure(relay.ids, relay.site, relay.hops - 1, relay.spans, priority=relay.priority)
        except Pending as exc:
            self.node.index.want(relay.ids, relay.site or "", session.peer, relay.spans)
            session.tell([Say("lack", {"ids": relay.ids, "held_at": exc.held_at, "pending": True})])
            return
        except NTError:
            session.tell([Say("lack", {"ids": relay.ids, "held_at": ""})])
            return
        session.core.relayed(relay)
        session.wake.set()
