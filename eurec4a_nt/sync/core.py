"""The sync protocol of one connection as a state machine without I/O.

A :class:`Peer` holds what one side knows of the other (log heads, subscription,
resume points, whether bulk may flow) and what it still has to send (its
:class:`~.outbox.Outbox`). Events go in as method calls, with whatever the store
answered passed in as values (which of some ids are held, an object's bytes); the
methods return :data:`Action` s for the session to carry out. Nothing here touches a
socket, a clock, a thread or a store, so every rule is tested with plain values
(``tests/test_sync_core.py``); docs/design-notes.md lists the events and actions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..entries import Entry, check_topics
from ..ids import ObjectId
from ..log import Commit
from ..logstate import CheckpointRef
from ..schema import MAX_RANGES
from .actions import Action, CatchUp, Join, Keep, Lacking, Limits, Prove, Receive, Refused, Relay, Say
from .budget import PIECE_ROOM, STOP_MARGIN
from .config import DEFAULT_ESSENTIAL, DEFAULT_PRIORITY, LinkConfig
from .outbox import Follow, Outbox, Priority, SendItem
from .partials import Partials, Resume, parse_resume
from .plan import Wants
from .policy import Subscription, pushed, rank
from .refusals import Told
from .want import read_want, want_messages
from .wire import DELTA, Outgoing, Piece

_COMMIT_BATCH = 256 << 10


def _prove(body: Mapping[str, Any]) -> Prove:
    """The ranges a ``ranges`` message asks for (see :class:`~.actions.Prove`)."""
    asked = [(ObjectId.parse(oid), int(start), int(end), ObjectId.parse(rest[0]) if rest and rest[0] else None)
             for oid, start, end, *rest in body["ranges"]]
    return Prove(asked, str(body["site"]) if body.get("site") else None)


class Peer:
    """One connected peer, the same on both ends of a link.

    ``options`` are what the peer said in the handshake: its log ``heads``, what it
    subscribes to, its resume points and, from a dialling peer, how it wants to be
    served (topic priority, essential topics, rate cap, whether bulk may flow,
    topics it pushes). ``link`` is the link's configuration on the dialling side.
    ``checkpoints``: the peer starts a log it lacks from a checkpoint offered to it
    (it said so when the link opened, see :mod:`.handshake`); ``batches``: it reads
    small objects sent together in one message; ``refusals``: it reads why this side
    cannot fetch a third site's data on its behalf (:mod:`.refusals`); ``ranges``: it
    answers for verified parts of blocks and reads them (:mod:`.ranges`); ``leaves``:
    it sends the leaves a read span needs right after the record asked for with that
    span, when asked to, and takes them so.
    """

    def __init__(self, peer: str, link: LinkConfig | None, options: Mapping[str, Any],
                 partials: Partials, bulk: bool = True, checkpoints: bool = False,
                 batches: bool = False, refusals: bool = False, ranges: bool = False,
                 leaves: bool = False) -> None:
        self.peer = peer
        self.checkpoints = checkpoints
        self.batches = batches
        self.ranges = ranges
        self.leaves = ranges and leaves
        #: What the peer was told about fetching third sites' data on its behalf.
        self.told = Told(refusals)
        #: Logs whose checkpoint the peer was offered (once per session), and those of
        #: them whose commits wait for its answer.
        self.offered: set[str] = set()
        self.awaiting: set[str] = set()
        #: Logs this side is starting from a checkpoint the peer offered.
        self.joining: set[str] = set()
        self.link = link
        self.partials = partials
        self.heads = {str(k): int(v) for k, v in (options.get("heads") or {}).items()}
        self.wants = Subscription.from_json(options.get("subscribe") or {})
        self.ready = "heads" in options  # until the peer says what it has, send no commits
        self.resume = parse_resume(options.get("partials") or {})
        self.push_topics: tuple[str, ...] = ()
        if link is not None:
            self.priority, self.essential, self.rate = link.priority, link.essential, link.up_rate
            self.bulk, self.compress = bulk, link.compress
        else:
            self.priority = tuple(options.get("priority") or DEFAULT_PRIORITY)
            self.essential = tuple(options.get("essential") or DEFAULT_ESSENTIAL)
            self.rate = int(options["rate"]) if options.get("rate") else None
            self.bulk, self.compress = bool(options.get("bulk", True)), True
            self.push_topics = check_topics(options.get("push") or [])
        self.outbox = Outbox()
        self.deep_incoming: set[ObjectId] = set()
        #: Bytes this side's budget still allows today (None: no budget here); bulk is
        #: sent only while a whole piece fits, so the budget holds to within a piece.
        self.allowance: int | None = None
        #: Whether the peer was last told (or, in the handshake, said) that bulk may come.
        self.peer_bulk = self.bulk

    # -- commits -----------------------------------------------------------------------

    def behind(self, heads: Mapping[str, int]) -> dict[str, int]:
        """Sites whose commits the peer lacks, with the last seq it holds (nothing
        before it said what it has; nothing of a log whose checkpoint it was offered,
        until it answers)."""
        if not self.ready:
            return {}
        return {site: self.heads.get(site, 0) for site, seq in heads.items()
                if seq > self.heads.get(site, 0) and site != self.peer and site not in self.awaiting}

    def to_offer(self, behind: Mapping[str, int]) -> list[str]:
        """Of the logs the peer lacks commits of (:meth:`behind`), those whose newest
        checkpoint it may be offered: it holds nothing of them (only an empty log starts
        at a checkpoint), takes checkpoints, and was not offered one this session."""
        if not self.checkpoints:
            return []
        return [site for site, seq in behind.items() if seq == 0 and site not in self.offered]

    def offer(self, checkpoints: Mapping[str, CheckpointRef]) -> list[Say]:
        """Offer the peer the checkpoints held here of logs from :meth:`to_offer`; their
        commits are held back until the peer says how far it got (:meth:`receive` of
        ``heads``), then only those after that are sent."""
        out = []
        for site, ref in checkpoints.items():
            if site in self.offered or self.heads.get(site, 0):
                continue
            self.offered.add(site)
            self.awaiting.add(site)
            out.append(Say("checkpoint", {"site": site, **ref.to_json()}))
        return out

    def send_commits(self, commits: Iterable[Commit]) -> list[Say]:
        """Send commits the peer lacks (from :meth:`behind`), in batches, oldest first."""
        out, batch, size = [], [], 0
        for commit in commits:
            batch.append(commit.raw.decode())
            size += len(commit.raw)
            self.heads[commit.site] = max(self.heads.get(commit.site, 0), commit.seq)
            if size > _COMMIT_BATCH:
                out.append(Say("commits", {"raws": batch}))
                batch, size = [], 0
        if batch:
            out.append(Say("commits", {"raws": batch}))
        return out

    # -- entries -----------------------------------------------------------------------

    def pushes(self, entry: Entry) -> bool:
        """Whether the peer gets ``entry`` unasked (see :func:`.policy.pushed`)."""
        return pushed(entry, self.peer, self.link, self.wants)

    def rank(self, entry: Entry) -> tuple[Priority, tuple[Any, ...]]:
        return rank(entry, self.essential, self.priority)

    def push(self, entry: Entry, new: bool) -> list[Action]:
        """Send an entry held whole here: all of it if ``new``, else only its root (the
        peer asks for the blocks it lacks, naming delta bases)."""
        priority, key = self.rank(entry)
        self.outbox.queue([entry.root], priority, key, follow=Follow.ALL if new else Follow.NOTHING)
        return [Say("pushing", {"roots": [entry.root]})] if new else []

    def want(self, wants: Wants, priority: Priority, site: str | None = None, hops: int = 1,
             leaves: bool = False) -> list[Action]:
        """Ask the peer for objects (in batches), resuming partial transfers; with
        ``leaves``, if the peer takes them, for the leaves of the spans read in parts too."""
        self.deep_incoming.update(wants.deep)
        return want_messages(wants, self.partials.specs(wants.shallow + wants.deep), priority, site, hops,
                             leaves and self.leaves)

    def ask_ranges(self, ranges: list[tuple[ObjectId, int, int]], site: str | None = None,
                   record: ObjectId | None = None) -> list[Say]:
        """Ask the peer (one that takes ranges) for verified parts of blocks, ``(id,
        start, end)`` each (see :mod:`.ranges`); with ``site`` and ``record``, of blocks
        of that third site named by that file record (the peer relays them)."""
        items = [[*r, record] if record else list(r) for r in ranges]
        extra = {"site": site} if record else {}
        return [Say("ranges", {"ranges": items[i:i + MAX_RANGES], **extra}) for i in range(0, len(items), MAX_RANGES)]

    # -- messages from the peer --------------------------------------------------------

    @staticmethod
    def to_check(body: Mapping[str, Any]) -> list[ObjectId]:
        """The ids whose presence here :meth:`receive` needs for ``body``."""
        if body.get("type") != "want":
            return []
        return [ObjectId.parse(i) for i in body.get("ids") or []]

    def receive(self, body: Mapping[str, Any], held: set[ObjectId] | frozenset[ObjectId] = frozenset()) -> list[Action]:
        """A control message from the peer; ``held``: which of :meth:`to_check` are here.

        Raises KeyError, ValueError or TypeError (or :class:`~eurec4a_nt.errors.BadInput`)
        for a malformed message; nothing is changed then.
        """
        kind = body["type"]
        if kind == "commits":
            return self._on_commits(body)
        if kind == "heads":
            return self._on_heads(body)
        if kind == "checkpoint":
            return self._on_checkpoint(body)
        if kind == "subscribe":
            self.wants = Subscription.from_json(body)
        elif kind == "limits":
            self.bulk = bool(body.get("bulk", True))
            return [Limits(self.bulk)]
        elif kind == "pushing":
            self.deep_incoming.update(ObjectId.parse(r) for r in body.get("roots") or [])
        elif kind == "want":
            return self._on_want(body, held)
        elif kind == "lack":
            return [Lacking([ObjectId.parse(i) for i in body.get("ids") or []],
                            str(body.get("held_at") or ""), bool(body.get("pending")))]
        elif kind == "refused":
            return [Refused(str(body["site"]), body.get("reason"))]
        elif kind == "have":
            self.outbox.had(ObjectId.parse(i) for i in body.get("ids") or [])
        elif kind == "ranges":
            if not self.ranges:
                raise ValueError("ranges asked by a peer that did not say it takes them")
            return [_prove(body)]
        else:
            raise ValueError(f"unknown message type {kind!r}")
        return []

    def _on_commits(self, body: Mapping[str, Any]) -> list[Action]:
        raws = [str(r).encode() for r in body.get("raws") or []]
        for raw in raws:  # the peer has them: never echo them back
            try:
                head = json.loads(raw)
                self.heads[head["site"]] = max(self.heads.get(head["site"], 0), int(head["seq"]))
            except (ValueError, KeyError, TypeError):
                continue
        return [Receive(raws)]

    def received_commits(self, heads: Mapping[str, int]) -> list[Action]:
        """After the peer's commits were kept: tell it how far this site got."""
        return [Say("heads", {"heads": dict(heads)})]

    def _on_heads(self, body: Mapping[str, Any]) -> list[Action]:
        heads = {str(site): int(seq) for site, seq in (body.get("heads") or {}).items()}
        for site, seq in heads.items():
            self.heads[site] = max(self.heads.get(site, 0), seq)
        answered = self.awaiting.intersection(heads)
        self.awaiting -= answered
        return [CatchUp()] if answered else []

    def _on_checkpoint(self, body: Mapping[str, Any]) -> list[Action]:
        """The peer offers a checkpoint: start that log from it (one at a time per log)."""
        site, ref = str(body["site"]), CheckpointRef.from_json(body)
        if site in self.joining:
            return []
        self.joining.add(site)
        return [Join(site, ref)]

    def joined(self, site: str, seq: int) -> list[Say]:
        """The offered checkpoint of ``site`` was taken (or refused, or this site held
        that log already): tell the peer how far this site holds that log, so it sends
        the commits after it."""
        self.joining.discard(site)
        return [Say("heads", {"heads": {site: seq}})]

    def _on_want(self, body: Mapping[str, Any], held: set[ObjectId] | frozenset[ObjectId]) -> list[Action]:
        want = read_want(body, parts=self.ranges)
        self.resume.update(want.resume)
        reader = want.priority is Priority.READ
        if reader:  # a reader lacks them: the peer lost or evicted what it had
            self.outbox.resend(want.ids)
        for oid in (o for o in want.ids if o in held):
            f = want.follow.get(oid, Follow.NOTHING)
            self.outbox.queue([oid], want.priority, (), want.bases, f.for_reader() if reader else f)
        absent = [oid for oid in want.ids if oid not in held]
        if not absent:
            return []
        return [Relay(absent, want.follow, want.spans, want.bases, want.priority, want.hops, want.site)]

    def relayed(self, relay: Relay) -> None:
        """The objects of ``relay`` are held here now: queue them for the peer."""
        for oid in relay.ids:
            self.outbox.queue([oid], relay.priority, (), relay.bases, relay.follow.get(oid, Follow.NOTHING))

    def piece(self, piece: Piece, held: bool) -> list[Action]:
        """A piece of an object arrived; ``held``: whether the object is here already."""
        if held:
            return [Say("have", {"ids": [piece.oid]})] if piece.offset == 0 else []
        payload = self.partials.assemble(piece)
        if payload is None:
            return []
        return [Keep(piece.oid, piece.encoding, payload, piece.base)]

    def stored(self, oid: ObjectId) -> bool:
        """An object from the peer was stored; True if the peer follows it with
        everything below (then tell it with :meth:`held_below` what is here already)."""
        if oid in self.deep_incoming:
            self.deep_incoming.discard(oid)
            return True
        return False

    @staticmethod
    def held_below(ids: list[ObjectId]) -> list[Action]:
        return [Say("have", {"ids": ids})] if ids else []

    def budget(self, left: int | None) -> list[Say]:
        """This side's daily budget leaves ``left`` bytes (None: no budget). Bulk flows
        from here while a whole piece fits; the peer is told to hold its bulk back while
        less is left than it may have in flight, and told again when a new day frees it."""
        self.allowance = left
        self.bulk = left is None or left >= PIECE_ROOM
        return self._peer_bulk(left is None or left >= STOP_MARGIN)

    def moved(self, size: int) -> list[Say]:
        """``size`` bytes went over the link either way; they count against the budget."""
        if self.allowance is None:
            return []
        self.allowance -= size
        return self._peer_bulk(False) if self.allowance < STOP_MARGIN else []

    def _peer_bulk(self, allowed: bool) -> list[Say]:
        if allowed == self.peer_bulk:
            return []
        self.peer_bulk = allowed
        return [Say("limits", {"bulk": allowed})]

    # -- sending objects -----------------------------------------------------------------

    @property
    def bulk_flows(self) -> bool:
        """Whether bulk goes out from here now: not held back by the peer or a spent
        budget, and this side's budget has room for one more whole piece."""
        return self.bulk and (self.allowance is None or self.allowance >= PIECE_ROOM)

    def next_item(self) -> SendItem | None:
        """What to send a piece of now (None: nothing, or only bulk while it is held
        back, see :attr:`bulk_flows`)."""
        return self.outbox.next(self.bulk_flows)

    def encoding_of(self, item: SendItem) -> tuple[ObjectId | None, Resume | None]:
        """The delta base to encode ``item`` against (if held), and where the peer
        resumes it."""
        resume = self.resume.pop(item.oid, None)
        return (resume[1] if resume else item.base), resume

    def cut(self, item: SendItem, data: bytes, base: ObjectId | None, encoding: int, payload: bytes,
            resume: Resume | None) -> None:
        """``item`` was read (``data``) and encoded: start sending it (from where the
        peer resumes it, if it holds the start in the same encoding)."""
        start = resume[2] if resume and resume[0] == encoding and resume[2] < len(payload) else 0
        outgoing = Outgoing(item.oid, encoding, base if encoding == DELTA else None, payload, start)
        self.outbox.begin(item, outgoing, item.follow.after(data))

    def missing(self, item: SendItem) -> list[Action]:
        """``item`` is not held here (evicted meanwhile): tell the peer."""
        self.outbox.drop(item.oid)
        return [Say("lack", {"ids": [item.oid], "held_at": ""})]
