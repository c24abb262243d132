"""What a site exchanges with all its connected peers.

The :class:`Exchange` turns the site's events (commits appended, objects stored,
prefetch rules changed) and each session's start, actions and end into calls on the
sessions' cores, after asking the store what they need to know off the event loop:
it pushes what peers subscribe to once it is held whole, asks for what this site
lacks of what it subscribes to, and hands a dropped session's queue to the next one.
What arrives is :class:`~.arrivals.Arrivals`' business; traffic against budgets is
the :class:`~.meter.Meter`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from ..entries import Entry
from ..ids import ObjectId
from ..log import Commit
from ..node import Node
from ..stores import offloop
from ..stores.base import ObjectStore
from ..tasks import spawn
from . import answers, plan, refusals
from .actions import Action, Say, merge_pushing
from .arrivals import Arrivals
from .config import LinkConfig
from .meter import Meter
from .outbox import Priority, SendItem
from .policy import PushWaits, Selection, Subscription, by_priority, subscription, to_complete
from .reads import Reads
from .session import Session


class Exchange:
    """The sessions of one site, and what flows over them."""

    def __init__(self, node: Node, reads: Reads, linked: Callable[[str], bool] | None = None) -> None:
        self.node = node
        self.reads = reads
        #: Whether this site has a link to a site (connected or not); default: connected now.
        self.linked = linked or (lambda site: site in self.sessions)
        self.sessions: dict[str, Session] = {}
        self.meter = Meter(node.index)
        self._waits: PushWaits[Session] = PushWaits()
        self._watchers: dict[object, set[ObjectId]] = {}  # by a key of each check's own
        self._complete: set[ObjectId] = set()
        self._backlog: dict[str, list[SendItem]] = {}
        self._commits = asyncio.Lock()
        self.arrivals = Arrivals(node, reads, self._complete_from, self._catch_up, self.why_refused,
                                 self.push_whole, self.held_back)
        node.listen("commits", lambda commits: spawn(self._on_commits()))
        node.listen("objects", self._on_objects)
        node.listen("rules", lambda rules: spawn(self._on_rules()))

    @property
    def store(self) -> ObjectStore:
        return self.node.store.objects

    # -- sessions starting and ending --------------------------------------------------

    def subscription(self, link: LinkConfig | None, peer: str, peer_push: tuple[str, ...]) -> Subscription:
        rules = [Selection(r.topics, r.sites, r.names) for r in self.node.rules()]
        return subscription(rules, link, peer, peer_push)

    async def started(self, session: Session) -> None:
        """Link up: replace an older session to the same peer, take over what it still
        had to send, send the commits the peer lacks and the entries it subscribes to,
        ask for what this site lacks, and send wants recorded while the peer was away."""
        old = self.sessions.get(session.peer)
        if old is not None and old is not session:
            spawn(old.ws.close())
        self.sessions[session.peer] = session
        self.held_back(session)
        spawn(self._fetch_for("", [e for e in self._waits.entries() if e.site == session.peer]))
        self.meter.tell_budget(session)
        backlog = self._backlog.pop(session.peer, [])
        if not session.core.ready:
            session.core.outbox.take(backlog)
            return
        sent = await self._send_commits(session)
        session.core.outbox.take(backlog)  # after the commits: the peer keeps only objects its entries name
        await self._push_entries(session, sent)
        await self._complete_from(session, self.node.entries())
        pending = [w for w in self.node.index.wants()
                   if w.site in (session.peer, "") or session.link is not None]
        if pending:
            spans = {w.id: (w.span[0], w.span[1]) for w in pending if w.span}
            await session.perform(session.core.want(plan.Wants(shallow=[w.id for w in pending], spans=spans),
                                                    Priority.READ, hops=2))

    def why_refused(self, site: str, priority: Priority) -> str | None:
        """Why this site cannot fetch ``site``'s data at ``priority`` on a peer's behalf
        (None: it can; see :func:`.refusals.why_refused`)."""
        origin = self.sessions.get(site)
        return refusals.why_refused(self.node.site, site, known=site in self.node.store.keyring.sites,
                                    linked=self.linked(site),
                                    bulk_held=priority is Priority.BULK and origin is not None and not origin.core.bulk)

    def held_back(self, origin: Session) -> None:
        """``origin`` connected, or lets bulk flow or holds it back (its link's budget):
        tell the peers waiting here for pushes of its bulk entries, and those told they
        are refused its data, whether (and why) they are now; a peer refused for want of
        a link asks again once told it is not."""
        reason = self.why_refused(origin.peer, Priority.BULK)
        waiting = self._waits.peers_for(origin.peer, lambda e: origin.core.rank(e)[0] is Priority.BULK)
        for other in list(self.sessions.values()):
            if other is not origin and (other in waiting or origin.peer in other.core.told.refused()):
                self.arrivals.tell_refusal(other, origin.peer, reason)

    def ended(self, session: Session) -> None:
        """Link down: count its traffic, fail reads waiting on it, and keep what it still
        had to send for the next session to the peer or, if a newer one already runs,
        for that one (never for a later one, which would send again what the newer
        session delivered meanwhile)."""
        self.meter.flush(session)
        items = session.core.outbox.hand_over()
        current = self.sessions.get(session.peer)
        if current is session:
            del self.sessions[session.peer]
            self._backlog[session.peer] = items
        elif current is not None:
            current.core.outbox.take(items)
            current.sender.wake.set()
        else:
            self._backlog[session.peer] = items
        self.reads.session_ended(session)

    # -- commits and pushes ------------------------------------------------------------

    async def _send_commits(self, session: Session) -> list[Commit]:
        """Send the peer every commit it lacks, after offering it the checkpoints of logs
        it holds nothing of (their commits wait for its answer): those held here, and
        those of sites linked now, which relay them on demand; return the commits sent."""
        core = session.core
        async with self._commits:
            heads = await asyncio.to_thread(self.node.store.heads)
            offer = core.to_offer(core.behind(heads))
            if offer:
                found = await offloop.call(answers.checkpoints, self.node.store, offer, set(self.sessions))
                await session.perform(core.offer(found))
            commits = await asyncio.to_thread(answers.commits_after, self.node.store, core.behind(heads))
            await session.perform(list(core.send_commits(commits)))
        return commits

    async def _push_entries(self, session: Session, commits: list[Commit]) -> None:
        entries = [change.entry.with_site(commit.site) for commit in commits for change in commit.changes
                   if change.entry is not None]
        await self._push_whole(session, [e for e in entries if session.core.pushes(e)])

    async def push_whole(self, session: Session, site: str, roots: list[ObjectId]) -> list[ObjectId]:
        """Of ``roots`` the peer asked for whole, those of ``site``'s entries: pushed to it
        once held whole here, fetched whole from ``site`` meanwhile (once, however many
        peers wait). Returns the other roots."""
        found = await offloop.call(lambda: {r: e for r in roots for e in self.node.store.db.by_root(r)
                                            if e.site == site})
        await self._push_whole(session, list(found.values()))
        return [r for r in roots if r not in found]

    async def _push_whole(self, session: Session, entries: list[Entry]) -> None:
        """Push ``entries`` to the peer: those held whole here now, the others once they
        are, fetched from their sites meanwhile."""
        if not entries:
            return
        fresh = [e for e in entries if not self._waits.waits(e.root)]
        for root, lacking in (await self._lacking(fresh)).items():
            if not self._waits.waits(root):
                self._waits.add(root, lacking)
        waiting, ready = [], []
        for entry in entries:
            if self._waits.waits(entry.root):
                self._waits.hold(session, entry)
                waiting.append(entry)
            else:
                ready.append(entry)
        await self._push(session, ready)
        await self._fetch_for(session.peer, waiting)

    async def _fetch_for(self, peer: str, entries: Iterable[Entry]) -> None:
        """Entries a peer subscribes to, not held whole here, of a third site: ask that
        site for them whole, ranked as its link ranks them (so its budget and topic order
        apply). Asked once however many peers wait; what arrives is pushed to each of
        them. A site not connected now is asked when it connects."""
        far: dict[str, list[Entry]] = {}
        for entry in entries:
            if entry.site not in (peer, self.node.site) and entry.site in self.sessions:
                far.setdefault(entry.site, []).append(entry)
        for site, group in far.items():
            origin = self.sessions[site]
            if not origin.core.bulk:  # its budget holds bulk back: say so to those waiting
                self.held_back(origin)
            rounds = [(entry, plan.Wants(deep=[entry.root])) for entry in group]
            for priority, _, wants in by_priority(rounds, origin.core.rank):
                await origin.perform(origin.core.want(wants, priority))

    async def _push(self, session: Session, entries: list[Entry]) -> None:
        """Queue entries held whole here, announcing the new ones in one message (and
        that their sites' data is no longer refused, if the peer was told it was)."""
        for site in {e.site for e in entries}.intersection(session.core.told.refused()):
            self.arrivals.tell_refusal(session, site, None)
        actions: list[Action] = []
        for entry in entries:
            new = self.node.store.state(entry.site).previous.get(entry.name) is None
            actions += session.core.push(entry, new)
        await session.perform(merge_pushing(actions))

    async def _on_commits(self) -> None:
        for session in list(self.sessions.values()):
            await self._catch_up(session)

    async def _catch_up(self, session: Session) -> None:
        """Send the peer the commits it lacks and push what it subscribes to of them."""
        await self._push_entries(session, await self._send_commits(session))

    async def _lacking(self, entries: list[Entry]) -> dict[ObjectId, list[ObjectId]]:
        """What the entries lack here, asked off the loop; asked again if some of it
        was stored meanwhile (a push must neither wait for an object already here nor
        go out before what the stored root points to is checked)."""
        while True:
            key, stored = object(), set[ObjectId]()
            self._watchers[key] = stored
            try:
                lacking = await offloop.call(answers.lacking, entries, self.store)
            finally:
                del self._watchers[key]
            if not any(stored.intersection(ids) for ids in lacking.values()):
                return lacking

    def _on_objects(self, oids: list[ObjectId]) -> None:
        for watcher in self._watchers.values():
            watcher.update(oids)
        for oid in oids:
            self.reads.stored(oid)
            for requester in self.node.index.wanted_by(oid):
                if requester in self.sessions:
                    self.sessions[requester].core.outbox.queue([oid], Priority.READ)
                    self.sessions[requester].sender.wake.set()
        unblocked = self._waits.unblocked(oids)
        if unblocked:
            spawn(self._push_unblocked(unblocked))

    async def _push_unblocked(self, unblocked: list[Entry]) -> None:
        """Push entries that waited for objects, if they are whole now."""
        for root, lacking in (await self._lacking(unblocked)).items():
            self._waits.add(root, lacking)
            if lacking:
                continue
            for session, entry in self._waits.release(root):
                if self.sessions.get(session.peer) is session:
                    await self._push(session, [entry])

    async def _on_rules(self) -> None:
        self._complete.clear()
        for session in list(self.sessions.values()):
            mine = self.subscription(session.link, session.peer, session.core.push_topics)
            session.tell([Say("subscribe", mine.to_json())])
            await self._complete_from(session, self.node.entries())

    # -- completing entries ------------------------------------------------------------

    async def _complete_from(self, session: Session, entries: Iterable[Entry]) -> None:
        """Ask the peer for every object this site lacks of the entries it subscribes to."""
        core = session.core
        chosen = self.subscription(session.link, session.peer, core.push_topics)
        todo = to_complete(entries, self.node.site, chosen, self._complete | core.deep_incoming, core.priority)
        if todo:
            rounds = await offloop.call(answers.rounds, todo, self.node.store)
            self._complete.update(entry.root for entry, wants in rounds if not wants)
            for priority, site, wants in by_priority(rounds, core.rank, self._through(session)):
                await session.perform(core.want(wants, priority, site, hops=2 if site else 1))

    def _through(self, session: Session) -> Callable[[Entry], str | None]:
        """For a dialled link (a ship asking its hub): the site of an entry of a third
        site, which the hub then fetches once on behalf of every site asking, at the
        priority asked (so the third site's budget and topic order apply)."""
        if session.link is None:
            return lambda entry: None
        return lambda entry: entry.site if entry.site not in (session.peer, self.node.site) else None

    def label(self, oid: ObjectId) -> str:
        """How a queued object is shown: the path of the entry it is the root of."""
        entries = self.node.store.db.by_root(oid)
        return entries[0].path if entries else f"object {oid.short}"
