"""What one side of a link still has to send, in the order it sends it.

Objects are queued with a :class:`Priority` (reads first, then essential topics, then
bulk) and a rank within it (the link's topic order, small and new before large and
old); the sender takes the first item and sends it a piece at a time (cut as it goes,
as large as the link's pace allows), so an urgent object overtakes a large one within
one piece. Each item names what :class:`Follow` s it: after an object, what it points
to may be sent too.

No I/O here: the session reads and encodes objects and hands the pieces in.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, ClassVar

from ..ids import ObjectId
from ..manifests import Span, children, leaf_runs, zarr_metadata
from .wire import PIECE, Outgoing, Piece


class Priority(IntEnum):
    """How urgent an object is; a lower value is sent first."""

    READ = 0  #: a reader is waiting for it
    ESSENTIAL = 1  #: of an essential topic: flows even when the budget is spent
    BULK = 2  #: everything else: held back when the link's budget is spent

    @property
    def wire(self) -> str:
        """The name a want message carries."""
        return self.name.lower()

    @classmethod
    def from_wire(cls, name: object) -> Priority:
        """The priority a want message names (bulk for anything unknown)."""
        return {"read": cls.READ, "essential": cls.ESSENTIAL}.get(str(name), cls.BULK)


class FollowKind(Enum):
    NOTHING = "nothing"
    ALL = "all"  #: everything below the object
    METADATA = "metadata"  #: the metadata documents of a zarr manifest
    SPAN = "span"  #: the blocks of a file record holding a byte span
    LEAVES = "leaves"  #: not an object: a run of leaves of a block, answered as a range


@dataclass(frozen=True)
class Follow:
    """What to send after an object, found from its bytes when it is sent."""

    kind: FollowKind = FollowKind.NOTHING
    span: Span | None = None
    parts: bool = False  #: leave out the blocks of a span read in verified parts
    #: send the leaves of those blocks that hold the span along (see :mod:`.ranges`),
    #: relayed from ``site`` where not held here
    leaves: bool = False
    site: str | None = None

    NOTHING: ClassVar[Follow]
    ALL: ClassVar[Follow]
    METADATA: ClassVar[Follow]

    @classmethod
    def within(cls, span: Span, parts: bool = False, leaves: bool = False, site: str | None = None) -> Follow:
        """The blocks of a record holding bytes ``[start, end)`` (with ``parts``, those
        not read in verified parts, see :func:`~eurec4a_nt.manifests.children`; with
        ``leaves`` too, the leaves of those read in parts, of ``site``'s blocks)."""
        return cls(FollowKind.SPAN, (int(span[0]), int(span[1])), parts, parts and leaves, site)

    def after(self, data: bytes) -> list[tuple[ObjectId, Follow]]:
        """What follows the object whose bytes are ``data``, as ``(id, follow)``: objects,
        and (:attr:`FollowKind.LEAVES`, their runs as spans) leaves of blocks."""
        if self.kind is FollowKind.METADATA:
            return [(oid, Follow.NOTHING) for oid in zarr_metadata(data)]
        if self.kind in (FollowKind.NOTHING, FollowKind.LEAVES):
            return []
        span = self.span if self.kind is FollowKind.SPAN else None
        out = [(oid, Follow.ALL if deep else Follow.NOTHING) for oid, deep in children(data, span, self.parts)]
        if self.leaves and span is not None:
            out += [(oid, Follow(FollowKind.LEAVES, (first, last), site=self.site))
                    for oid, _, first, last, _ in leaf_runs(data, span)]
        return out

    def for_reader(self) -> Follow:
        """A reader's want follows the object as asked, else brings a zarr manifest's
        metadata along (what a reader opening the dataset needs next)."""
        return self if self.kind is not FollowKind.NOTHING else Follow.METADATA


Follow.NOTHING = Follow()
Follow.ALL = Follow(FollowKind.ALL)
Follow.METADATA = Follow(FollowKind.METADATA)

_order = itertools.count()


@dataclass(frozen=True)
class SendItem:
    """An object queued for sending. Items are values: handing one to another outbox
    keeps its priority, rank and place in line (``seq``)."""

    oid: ObjectId
    priority: Priority
    rank: tuple[Any, ...] = ()
    base: ObjectId | None = None
    follow: Follow = Follow.NOTHING
    seq: int = field(default_factory=lambda: next(_order))

    @property
    def key(self) -> tuple[Any, ...]:
        """Send order: priority, then rank, then first queued first."""
        return (self.priority, *self.rank, self.seq)


@dataclass
class Transfer:
    """An item being sent: its encoded bytes still to go, and what follows it."""

    outgoing: Outgoing
    after: list[tuple[ObjectId, Follow]]


class Outbox:
    """Objects to send to one peer. Ids already sent or queued are not queued again,
    except to raise the priority of a queued one."""

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[Any, ...], int, SendItem]] = []
        self._pushes = itertools.count()
        self.queued: dict[ObjectId, SendItem] = {}
        self.sent: set[ObjectId] = set()
        self._transfers: dict[ObjectId, Transfer] = {}
        #: Piece bytes taken for sending (what the peer's acknowledgements count).
        self.taken = 0
        #: Items sent whole the peer has not acknowledged yet, with :attr:`taken` after
        #: their last piece: a drop may still lose them.
        self._unacked: deque[tuple[int, SendItem]] = deque()

    def __len__(self) -> int:
        return len(self.queued)

    def add(self, item: SendItem) -> bool:
        """Queue ``item``; False if its object was sent or is queued as urgently."""
        if item.oid in self.sent:
            return False
        current = self.queued.get(item.oid)
        if current is not None and current.priority <= item.priority:
            return False
        self.queued[item.oid] = item
        heapq.heappush(self._heap, (item.key, next(self._pushes), item))
        return True

    def queue(self, oids: Iterable[ObjectId], priority: Priority, rank: tuple[Any, ...] = (),
              bases: Mapping[ObjectId, ObjectId] | None = None, follow: Follow = Follow.NOTHING) -> bool:
        """Queue objects alike; True if any was queued."""
        added = [self.add(SendItem(oid, priority, rank, (bases or {}).get(oid), follow)) for oid in oids]
        return any(added)

    def next(self, bulk: bool) -> SendItem | None:
        """The item to send a piece of now (bulk ones only with ``bulk``), or None.

        The item stays first in line until its last piece is out. Priority leads the
        send order, so once the first live item is bulk, all behind it are too."""
        while self._heap:
            item = self._heap[0][2]
            if self.queued.get(item.oid) is item:
                return item if bulk or item.priority is not Priority.BULK else None
            heapq.heappop(self._heap)  # cancelled or superseded
        return None

    def transfer(self, item: SendItem) -> Transfer | None:
        """What of ``item`` is not yet sent, once :meth:`begin` started it."""
        return self._transfers.get(item.oid)

    def begin(self, item: SendItem, outgoing: Outgoing, after: list[tuple[ObjectId, Follow]]) -> None:
        """Start sending ``item``, encoded as ``outgoing``; ``after`` is what follows it."""
        self._transfers[item.oid] = Transfer(outgoing, after)

    def take_piece(self, item: SendItem, size: int = PIECE) -> tuple[Piece, list[tuple[ObjectId, Follow]] | None]:
        """The next piece of ``item``, of at most ``size`` bytes of payload; with the
        last one also what follows it (the item is then sent and leaves the queue)."""
        transfer = self._transfers[item.oid]
        piece = transfer.outgoing.next_piece(size)
        self.taken += piece.size
        if not transfer.outgoing.done:
            return piece, None
        del self._transfers[item.oid]
        if self.queued.get(item.oid) is item:
            del self.queued[item.oid]
        self.sent.add(item.oid)
        self._unacked.append((self.taken, item))
        return piece, transfer.after

    def took(self, size: int) -> None:
        """``size`` bytes beside the queue went out as a piece (an answer to a range, see
        :mod:`.ranges`): the peer's acknowledgements count them too."""
        self.taken += size

    def acked(self, total: int) -> None:
        """The peer acknowledged the first ``total`` piece bytes: the items sent whole
        within them arrived."""
        while self._unacked and self._unacked[0][0] <= total:
            self._unacked.popleft()

    def follow(self, item: SendItem, held: Iterable[tuple[ObjectId, Follow]]) -> None:
        """Queue what follows a sent item (those of its follow-ups held here)."""
        for oid, follow in held:
            self.add(SendItem(oid, item.priority, item.rank, None, follow))

    def drop(self, oid: ObjectId) -> None:
        """Forget a queued object (it is not held here after all)."""
        self.queued.pop(oid, None)
        self._transfers.pop(oid, None)

    def had(self, oids: Iterable[ObjectId]) -> None:
        """The peer holds these already: never send them."""
        held = set(oids)
        for oid in held:
            self.drop(oid)
            self.sent.add(oid)
        self._unacked = deque(u for u in self._unacked if u[1].oid not in held)

    def resend(self, oids: Iterable[ObjectId]) -> None:
        """The peer lost these (a reader lacks them): they may be sent again."""
        self.sent.difference_update(oids)

    def hand_over(self) -> list[SendItem]:
        """What is still to send, as the items themselves (for the next session): the
        queued ones and those sent whole but not acknowledged (a drop loses what is in
        flight; the peer's resume points say how much of them arrived)."""
        self._transfers.clear()
        lost = [item for _, item in self._unacked if item.oid not in self.queued]
        return list(self.queued.values()) + lost

    def take(self, items: Iterable[SendItem]) -> None:
        """Queue items another outbox handed over, as they are."""
        for item in items:
            self.add(item)

    def waiting(self, limit: int) -> list[SendItem]:
        """The first ``limit`` items in send order."""
        live = (entry for entry in self._heap if self.queued.get(entry[2].oid) is entry[2])
        return [entry[2] for entry in heapq.nsmallest(limit, live)]
