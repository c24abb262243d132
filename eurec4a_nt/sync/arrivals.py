"""What arrives over a site's sessions and is not the core's to handle alone.

:class:`Arrivals` carries out the actions a session's core returns for what the peer
sent: objects to keep (decoded, verified, then stored if something asked for them, else
held back in the :class:`~.pen.Pen` until something names them), commits to keep, a
checkpoint to start a log from, the answer to one offered (the commits after it go out),
wants to relay from the site holding the objects (or to refuse, saying why: see
:mod:`.refusals`), refusals the peer sent, lacks to report to waiting reads, and
ranges of blocks answered (by the :class:`~.prover.Prover`) and received (see :mod:`.ranges`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from ..entries import Entry
from ..errors import BadInput, Corrupt, NTError, ObjectMissing, Pending
from ..ids import ObjectId
from ..manifests import children
from ..node import Node
from ..stores import offloop
from ..tasks import spawn
from ..tree import held_below
from . import answers
from .actions import Action, CatchUp, Join, Keep, KeepPart, Lacking, Limits, Prove, Receive, Refused, Relay, Say
from .outbox import Follow, Priority
from .pen import Pen
from .prover import Prover
from .reads import Reads
from .refusals import Refusals
from .session import Session

log = logging.getLogger(__name__)


#: Asks a peer for what this site lacks of some entries (the exchange's completing).
Complete = Callable[[Session, list[Entry]], Awaitable[None]]
#: Sends a peer the commits it lacks, and pushes what it subscribes to of them.
CatchUpWith = Callable[[Session], Awaitable[None]]
#: Why this site cannot fetch a site's data at a priority on a peer's behalf (None: it can).
WhyRefused = Callable[[str, Priority], str | None]
#: Pushes a peer the entries of a site whose roots it asked for whole; returns the other roots.
PushWhole = Callable[[Session, str, list[ObjectId]], Awaitable[list[ObjectId]]]
#: The peer lets bulk flow again or holds it back: tell those waiting for its data.
OnLimits = Callable[[Session], None]


class Arrivals:
    """Objects, commits, checkpoints, wants and lacks from peers, for all sessions of one site.

    ``complete`` asks the peer for the rest of the entries an object is the root of,
    once it was stored; ``catch_up`` sends the peer the commits it lacks; ``why_refused``
    says why this site cannot fetch a third site's data for a peer; ``push_whole`` pushes
    a peer the third site's entries it asked for whole; ``on_limits`` tells those waiting
    for a peer's data that its budget holds bulk back, or no longer does.
    """

    def __init__(self, node: Node, reads: Reads, complete: Complete, catch_up: CatchUpWith,
                 why_refused: WhyRefused, push_whole: PushWhole, on_limits: OnLimits) -> None:
        self.node = node
        self.reads = reads
        self.pen: Pen[Session] = Pen()
        self._complete = complete
        self._catch_up = catch_up
        self._why_refused = why_refused
        self._push_whole = push_whole
        self._on_limits = on_limits
        #: What peers refuse to fetch for this site, and what this site refuses its peers.
        self.refused, self.refusing = Refusals(by_peer=True), Refusals(by_peer=False)
        self.prover = Prover(node)

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
        elif isinstance(action, Refused):
            await self._on_refused(session, action)
        elif isinstance(action, Limits):
            self._on_limits(session)
        elif isinstance(action, Prove):
            self.prover.ask(session, action)
        elif isinstance(action, KeepPart):
            await self.reads.part_arrived(session, action.part)
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
        self.reads.expect(session, oid, data)  # before its readers wake
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

    async def _on_refused(self, session: Session, refused: Refused) -> None:
        """The peer refuses (or, with no reason, no longer refuses) to fetch a site's data
        for this site: keep that for status. Once a refusal held here is lifted, ask again
        for what this site lacks of that site's entries (what was asked for whole while
        refused never came)."""
        site = refused.site
        if site not in self.node.store.keyring.sites:  # not a site whose entries this site knows
            return
        if not self.refused.note(session.peer, site, refused.reason) or refused.reason is not None:
            return
        entries = await asyncio.to_thread(lambda: list(self.node.store.state(site).entries.values()))
        session.core.deep_incoming.difference_update(e.root for e in entries)
        await self._complete(session, entries)

    def tell_refusal(self, session: Session, site: str, reason: str | None) -> None:
        """Tell the peer (once, and again when it changes) whether fetching ``site``'s
        data on its behalf is refused, for ``reason``; keep it for status."""
        session.tell(session.core.told.say(site, reason))
        self.refusing.note(session.peer, site, reason)

    def _refuse(self, session: Session, site: str, priority: Priority) -> bool:
        """For a want the peer made for ``site``'s data at a prefetch's priority: tell it
        why this site cannot fetch that (or that it can). True if it cannot at all (no
        link, not in the keyring): nothing is asked, and the peer asks again when told it
        can. A spent budget is told, and the want asked all the same (it flows when the
        budget frees)."""
        blocked = self._why_refused(site, Priority.ESSENTIAL)
        self.tell_refusal(session, site, blocked or self._why_refused(site, priority))
        return blocked is not None

    def _span_blocks(self, spans: dict[ObjectId, tuple[int, int]]) -> list[ObjectId]:
        """The blocks of the records in ``spans`` (held here) holding their spans."""
        return [block for oid, span in spans.items()
                for block, _ in children(self.node.store.objects.get(oid), span)]

    async def _relay(self, session: Session, relay: Relay) -> None:
        """Fetch what the peer wants from the site holding it, then send it on. A
        prefetch through this site of a third site's data may be refused (see
        :meth:`_refuse`); the entries it asks for whole are pushed to it once held whole
        here, fetched once however many peers ask."""
        third = relay.site not in (None, session.peer, self.node.site)
        through = relay.site if third and relay.priority is not Priority.READ else None  # a prefetch through here
        if through is not None:
            if self._refuse(session, through, relay.priority):
                return
            whole = [oid for oid in relay.ids if relay.follow.get(oid) == Follow.ALL]
            others = set(await self._push_whole(session, through, whole)) if whole else set()
            relay = replace(relay, ids=[oid for oid in relay.ids if oid not in whole or oid in others])
            if not relay.ids:
                return
        try:
            if relay.hops <= 1:
                raise ObjectMissing("not held here")
            await self.node.ensure(relay.ids, relay.site, relay.hops - 1, relay.spans, priority=relay.priority)
            if relay.spans and not session.core.ranges:  # it reads no parts: bring its spans' blocks whole
                await self.node.ensure(await offloop.call(self._span_blocks, relay.spans), relay.site,
                                       relay.hops - 1, priority=relay.priority)
        except Pending as exc:
            self.node.index.want(relay.ids, relay.site or "", session.peer, relay.spans)
            session.tell([Say("lack", {"ids": relay.ids, "held_at": exc.held_at, "pending": True})])
            return
        except NTError:
            session.tell([Say("lack", {"ids": relay.ids, "held_at": ""})])
            return
        if through is not None:
            self.tell_refusal(session, through, None)  # fetched: whatever held it back is gone
        session.core.relayed(relay)
        session.sender.wake.set()
