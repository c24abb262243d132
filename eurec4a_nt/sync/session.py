"""One live connection: a pump between a WebSocket and a :class:`~.core.Peer`.

The session reads messages and pieces off the socket, asks the store what the core
needs to know (off the event loop), feeds the core and carries out its actions: it
sends control messages, and object pieces in the order the core's outbox gives,
within the link's bandwidth cap. What it cannot do alone (storing objects, keeping
commits, relaying wants) goes to the site's :class:`~.arrivals.Arrivals`, and the bytes
moved to its :class:`~.meter.Meter`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from ..errors import BadInput, NTError, ObjectMissing
from ..schema import link_message
from ..stores import offloop
from ..stores.base import ObjectStore
from ..tasks import spawn
from . import answers
from .actions import Action, KeepPart, Say
from .budget import TokenBucket
from .core import Peer
from .handles import Handles
from .outbox import Priority, SendItem
from .pacing import Pacer
from .ranges import read_answer
from .wire import BATCH_PIECE, PIECE, Piece, ack, batch, batch_size, read_ack, squeeze, unbatch, unsqueeze

log = logging.getLogger(__name__)

WebSocket = web.WebSocketResponse | ClientWebSocketResponse


#: Carries out an action of a session's core beyond a message.
Act = Callable[["Session", Action], Awaitable[None]]
#: Counts the bytes a session sent and received.
Count = Callable[["Session", int, int], None]


#: Seconds a sender waits for a first acknowledgement before it stops pacing.
ACK_PATIENCE = 5.0


class Session:
    """A connected peer; :meth:`run` returns when the connection ends."""

    def __init__(self, peer: Peer, ws: WebSocket, store: ObjectStore, act: Act, count: Count) -> None:
        self.core = peer
        self.ws = ws
        self.store = store
        self._act = act
        self._counter = count
        self.peer = peer.peer
        self.link = peer.link
        self.name = peer.link.name if peer.link else f"{peer.peer} (dialled in)"
        #: Messages to send before any further piece.
        self.control: asyncio.Queue[str | bytes] = asyncio.Queue()
        #: Answers to ranges, each with the future its sender awaits (see :meth:`answer`).
        self._answers: deque[tuple[bytes, asyncio.Future[None]]] = deque()
        self.wake = asyncio.Event()
        self.sent_bytes = self.received_bytes = 0
        #: Objects the peer sent that nobody asked for (dropped).
        self.unsolicited = 0
        self.connected = self.last_contact = time.time()
        self._bucket = TokenBucket(peer.rate, time.monotonic()) if peer.rate else None
        #: In flight kept near the link's bandwidth-delay product (None: a peer that does
        #: not acknowledge pieces is sent to unpaced).
        self.pacer: Pacer | None = Pacer()
        self._pieces_received = 0
        #: Pieces of small whole objects waiting to go as one batch (see :mod:`.wire`).
        self._batch: list[Piece] = []
        self._batch_bytes = 0  #: their full size (:attr:`.wire.Piece.size`)
        #: Numbers naming objects sent in several pieces, each way (see :mod:`.handles`).
        self._sending, self._receiving = Handles(), Handles()
        self._writing: asyncio.Task[None] | None = None

    # -- life cycle --------------------------------------------------------------------

    async def run(self) -> None:
        """Pump until the connection ends (the writer runs alongside)."""
        writer = self._writing = asyncio.create_task(self._writer())
        writer.add_done_callback(self._writer_done)
        try:
            async for msg in self.ws:
                self.last_contact = time.time()
                if msg.type == WSMsgType.TEXT:
                    self._count(received=len(msg.data))
                    await self._on_text(msg.data)
                elif msg.type == WSMsgType.BINARY and msg.data[:1] == b"Z":
                    self._count(received=len(msg.data))
                    await self._guarded("message", self._on_squeezed(msg.data))
                elif msg.type == WSMsgType.BINARY and msg.data[:1] == b"A":
                    self._count(received=len(msg.data))
                    self._on_ack(msg.data)
                elif msg.type == WSMsgType.BINARY and msg.data[:1] == b"M":
                    self._count(received=len(msg.data))
                    await self._guarded("batch of pieces", self._on_batch(msg.data))
                elif msg.type == WSMsgType.BINARY and msg.data[:1] == b"R":
                    self._count(received=len(msg.data))
                    await self._guarded("range answer", self._on_part(msg.data))
                elif msg.type == WSMsgType.BINARY:
                    self._count(received=len(msg.data))
                    await self._guarded("piece", self._on_message(msg.data))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, (ConnectionError, RuntimeError)):
                log.error("%s: sending failed: %r", self.name, exc)
            spawn(self.ws.close())

    async def perform(self, actions: Iterable[Action]) -> None:
        """Carry out the core's actions: messages here, the rest by ``act``."""
        for action in actions:
            if isinstance(action, Say):
                self.control.put_nowait(action.text())
            else:
                await self._act(self, action)
        self.wake.set()

    async def answer(self, message: bytes) -> None:
        """Send the answer to a range (see :mod:`.ranges`) as a piece of a read: paced,
        ahead of any object piece, counted in flight until the peer acknowledges it; return
        once it went out. ConnectionError if the connection ends first."""
        sent = asyncio.get_running_loop().create_future()
        self._answers.append((message, sent))
        self.wake.set()
        writing = [self._writing] if self._writing is not None else []
        await asyncio.wait([sent, *writing], return_when=asyncio.FIRST_COMPLETED)
        if not sent.done():
            raise ConnectionError("the link ended before a range answer went out")

    def tell(self, messages: Iterable[Say]) -> None:
        """Queue control messages (sent before any further object piece)."""
        for say in messages:
            self.control.put_nowait(say.text())
        self.wake.set()

    def _count(self, sent: int = 0, received: int = 0) -> None:
        self.sent_bytes += sent
        self.received_bytes += received
        self._counter(self, sent, received)

    # -- receiving ---------------------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        try:
            body = link_message(text)
            held = self.core.to_check(body)
        except NTError as exc:
            log.warning("%s: ignoring a malformed message: %s", self.name, exc)
            return
        here = await offloop.call(answers.held, self.store, held) if held else set()
        await self._guarded(body.get("type"), self._receive(body, here))

    def _on_ack(self, message: bytes) -> None:
        try:
            total = read_ack(message)
        except BadInput:
            log.warning("%s: ignoring a malformed acknowledgement", self.name)
            return
        self.core.outbox.acked(total)
        if self.pacer is not None:
            self.pacer.on_ack(total, time.monotonic())
            self.wake.set()

    async def _on_squeezed(self, message: bytes) -> None:
        await self._on_text(await asyncio.to_thread(unsqueeze, message))

    async def _receive(self, body: dict[str, Any], held: set[Any]) -> None:
        try:
            actions = self.core.receive(body, held)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s: ignoring a malformed %s message", self.name, body.get("type"))
            return
        await self.perform(actions)

    async def _guarded(self, what: object, work: Any) -> None:
        """Run the handling of one message; errors are logged, never take the link down."""
        try:
            await work
        except NTError as exc:
            log.warning("%s: %s", self.name, exc)
        except Exception:  # a bug must not take the link down
            log.exception("%s: error handling %s", self.name, what)

    def _acknowledge(self, size: int) -> None:
        self._pieces_received += size
        self.control.put_nowait(ack(self._pieces_received))  # goes out before any piece
        self.wake.set()

    async def _on_batch(self, message: bytes) -> None:
        self._acknowledge(batch_size(message))  # the pieces it holds count, damaged or not
        for piece in unbatch(message):
            await self._guarded("piece", self._on_piece(piece))

    async def _on_message(self, message: bytes) -> None:
        try:
            piece = self._receiving.unpack(message)
        except BadInput:
            self._acknowledge(len(message))
            raise
        self._acknowledge(piece.size)  # at its full size, however it travelled
        await self._on_piece(piece)

    async def _on_part(self, message: bytes) -> None:
        self._acknowledge(len(message))  # counted in flight by its sender, as pieces are
        await self.perform([KeepPart(read_answer(message))])

    async def _on_piece(self, piece: Piece) -> None:
        held = await offloop.call(self.store.has, piece.oid)
        await self.perform(self.core.piece(piece, held))

    # -- sending -----------------------------------------------------------------------

    async def _writer(self) -> None:
        while True:
            if not self.control.empty():
                await self._send_batch()  # in the order they were taken
            while not self.control.empty():
                out = self.control.get_nowait()
                out = squeeze(out) if isinstance(out, str) else out
                await (self.ws.send_str(out) if isinstance(out, str) else self.ws.send_bytes(out))
                self._count(sent=len(out))
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
                self._batch.append(piece)
                self._batch_bytes += piece.size
                if self._batch_bytes >= size:  # a batch is as long as a piece
                    await self._send_batch()
            else:
                await self._send_batch()
                await self._send_piece(self._sending.pack(piece) if self.core.batches else piece.pack())
            self._in_flight(piece.size)
            if after:
                here = await offloop.call(answers.held, self.store, [oid for oid, _ in after])
                self.core.outbox.follow(item, [(o, f) for o, f in after if o in here])

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
        self._count(sent=len(message))

    async def _send_batch(self) -> None:
        """Send the pieces waiting to go together (one alone as it is)."""
        if self._batch:
            waiting, self._batch, self._batch_bytes = self._batch, [], 0
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
            await self.perform(self.core.missing(item))
            return False
        self.core.cut(item, data, base if based else None, encoding, payload, resume)
        return True

    # -- state -------------------------------------------------------------------------

    def status(self, label: Any) -> dict[str, Any]:
        """State for pages and ``eurec4a-nt status``; ``label(oid)`` names a queued object."""
        core = self.core
        waiting = [{"what": label(item.oid), "class": item.priority.wire,
                    "held back": item.priority is Priority.BULK and not core.bulk_flows}
                   for item in core.outbox.waiting(10)]
        return {
            "peer": self.peer, "link": self.name, "dialled": self.link is not None,
            "connected_since": self.connected, "last_contact": self.last_contact,
            "queue": len(core.outbox), "waiting": waiting, "bulk": core.bulk_flows,
            "sent": self.sent_bytes, "received": self.received_bytes,
        }
