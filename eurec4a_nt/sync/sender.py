"""The sending half of a session (see :mod:`.session`): control messages first, then
answers to ranges, then object pieces in the order the core's outbox gives, paced to
about one bandwidth-delay product in flight (:mod:`.pacing`) and within the link's
bandwidth cap; small whole objects go together in batches (see :mod:`.wire`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.client_ws import ClientWebSocketResponse

from ..errors import ObjectMissing
from ..ids import ObjectId
from ..stores import offloop
from ..stores.base import ObjectStore
from . import answers
from .actions import Action, Prove
from .budget import TokenBucket
from .core import Peer
from .handles import Handles
from .outbox import Follow, FollowKind, Priority, SendItem
from .pacing import Pacer
from .wire import BATCH_PIECE, PIECE, Piece, batch, squeeze

log = logging.getLogger(__name__)

WebSocket = web.WebSocketResponse | ClientWebSocketResponse

#: Seconds a sender waits for a first acknowledgement before it stops pacing.
ACK_PATIENCE = 5.0


class Sender:
    """What one session sends, and how fast; :meth:`run` sends until cancelled."""

    def __init__(self, core: Peer, ws: WebSocket, store: ObjectStore, name: str,
                 perform: Callable[[Iterable[Action]], Awaitable[None]], count: Callable[[int], None]) -> None:
        self.core, self.ws, self.store, self.name = core, ws, store, name
        self._perform, self._count = perform, count
        #: Messages to send before any further piece.
        self.control: asyncio.Queue[str | bytes] = asyncio.Queue()
        #: Answers to ranges, each with the future its sender awaits (see :meth:`answer`).
        self._answers: deque[tuple[bytes, asyncio.Future[None]]] = deque()
        self.wake = asyncio.Event()
        self._bucket = TokenBucket(core.rate, time.monotonic()) if core.rate else None
        #: In flight kept near the link's bandwidth-delay product (None: a peer that does
        #: not acknowledge pieces is sent to unpaced).
        self.pacer: Pacer | None = Pacer()
        #: Pieces of small whole objects waiting to go as one batch (see :mod:`.wire`).
        self.batched: list[Piece] = []
        self._batch_bytes = 0  #: their full size (:attr:`.wire.Piece.size`)
        #: Numbers naming objects sent in several pieces (see :mod:`.handles`).
        self._sending = Handles()
        self.task: asyncio.Task[None] | None = None

    def say(self, message: str | bytes) -> None:
        """Queue a control message (sent before any further piece)."""
        self.control.put_nowait(message)
        self.wake.set()

    def acked(self, total: int) -> None:
        """The peer acknowledged ``total`` piece bytes in all."""
        self.core.outbox.acked(total)
        if self.pacer is not None:
            self.pacer.on_ack(total, time.monotonic())
            self.wake.set()

    async def answer(self, message: bytes) -> None:
        """Send the answer to a range (see :mod:`.ranges`) as a piece of a read: paced,
        ahead of any object piece, counted in flight until the peer acknowledges it; return
        once it went out. ConnectionError if the connection ends first."""
        sent = asyncio.get_running_loop().create_future()
        self._answers.append((message, sent))
        self.wake.set()
        running = [self.task] if self.task is not None else []
        await asyncio.wait([sent, *running], return_when=asyncio.FIRST_COMPLETED)
        if not sent.done():
            raise ConnectionError("the link ended before a range answer went out")

    async def run(self) -> None:
        """Send what there is to send, waiting when there is nothing; until cancelled."""
        while True:
            if not self.control.empty():
                await self._send_batch()  # in the order they were taken
            while not self.control.empty():
                out = self.control.get_nowait()
                out = squeeze(out) if isinstance(out, str) else out
                await (self.ws.send_str(out) if isinstance(out, str) else self.ws.send_bytes(out))
                self._count(len(out))
            if self._answers:  # a reader waits for them: before any object, as urgent as a read
                if await self._paced(urgent=True):
                    await self._send_answer()
                continue
            item = self.core.next_item()
            if item is None:
                await self._send_batch()
                self.wake.clear()
                if self.control.empty():
                    await self.wake.wait()
                continue
            if self.core.outbox.transfer(item) is None and not await self._encode(item):
                continue
            if not await self._paced(urgent=item.priority is not Priority.BULK):
                continue  # then the most urgent item again: it may have changed
            size = self.pacer.piece_size() if self.pacer is not None else PIECE
            piece, after = self.core.outbox.take_piece(item, size)
            if self.core.batches and len(piece.data) == piece.total and piece.size <= BATCH_PIECE:
                self.batched.append(piece)
                self._batch_bytes += piece.size
                if self._batch_bytes >= size:  # a batch is as long as a piece
                    await self._send_batch()
            else:
                await self._send_batch()
                await self._send_piece(self._sending.pack(piece) if self.core.batches else piece.pack())
            self._in_flight(piece.size)
            if after:
                await self._follow(item, after)

    async def _follow(self, item: SendItem, after: list[tuple[ObjectId, Follow]]) -> None:
        """Queue what follows ``item``, just sent: the objects held here, and leaves of
        blocks to answer as ranges (so they go after it, see :mod:`.ranges`)."""
        runs: list[tuple[ObjectId, int, int, ObjectId | None]] = [
            (oid, *f.span, item.oid) for oid, f in after if f.kind is FollowKind.LEAVES and f.span]
        if runs:
            site = next(f.site for _, f in after if f.kind is FollowKind.LEAVES)
            await self._perform([Prove(runs, site)])
        objects = [(oid, f) for oid, f in after if f.kind is not FollowKind.LEAVES]
        here = await offloop.call(answers.held, self.store, [oid for oid, _ in objects])
        self.core.outbox.follow(item, [(o, f) for o, f in objects if o in here])

    async def _paced(self, urgent: bool) -> bool:
        """Whether a piece (of an ``urgent`` item: more urgent than bulk) may go now; if
        not, the pieces batched so far go and this returns once an acknowledgement (or a
        control message) came."""
        if self.pacer is None or self.pacer.may_send(time.monotonic(), urgent):
            return True
        await self._send_batch()
        await self._await_ack()
        return False

    def _in_flight(self, size: int) -> None:
        """Count ``size`` bytes of a piece or range answer just taken as sent, until the
        peer acknowledges them."""
        if self.pacer is not None:
            self.pacer.on_sent(size, time.monotonic())
        else:  # a peer that acknowledges nothing: what went out counts as arrived
            self.core.outbox.acked(self.core.outbox.taken)

    async def _send_answer(self) -> None:
        """Send the first answer to a range, within the link's cap, counted in flight."""
        message, sent = self._answers.popleft()
        await self._send_batch()
        self.core.outbox.took(len(message))
        await self._send_piece(message)
        self._in_flight(len(message))
        if not sent.done():
            sent.set_result(None)

    async def _send_piece(self, message: bytes) -> None:
        if self._bucket is not None:
            await asyncio.sleep(self._bucket.delay(len(message), time.monotonic()))
        await self.ws.send_bytes(message)
        self._count(len(message))

    async def _send_batch(self) -> None:
        """Send the pieces waiting to go together (one alone as it is)."""
        if self.batched:
            waiting, self.batched, self._batch_bytes = self.batched, [], 0
            await self._send_piece(waiting[0].pack(compact=True) if len(waiting) == 1 else batch(waiting))

    async def _await_ack(self) -> None:
        """Wait for an acknowledgement (or a control message to send). A peer that has
        acknowledged nothing within :data:`ACK_PATIENCE` seconds does not acknowledge:
        it is sent to unpaced."""
        assert self.pacer is not None
        self.wake.clear()
        if not self.control.empty():
            return
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that comes in the
        # same turn of the loop as the wake-up (the last acknowledgement before a drop), and
        # the session, which ends once this writer has, would never end.
        try:
            async with asyncio.timeout(ACK_PATIENCE):
                await self.wake.wait()
        except TimeoutError:
            if self.pacer.acked == 0:
                log.info("%s: the peer acknowledges no pieces; sending unpaced", self.name)
                self.pacer = None

    async def _encode(self, item: SendItem) -> bool:
        """Read and encode ``item`` off the loop and cut it into pieces; False if it
        is not held here (the peer is told)."""
        base, resume = self.core.encoding_of(item)
        try:
            data, based, encoding, payload = await offloop.call(
                answers.encoded, self.store, item.oid, base, self.core.compress)
        except ObjectMissing:
            await self._perform(self.core.missing(item))
            return False
        self.core.cut(item, data, base if based else None, encoding, payload, resume)
        return True
