"""One live connection: a pump between a WebSocket and a :class:`~.core.Peer`.

The session reads messages and pieces off the socket, asks the store what the core
needs to know (off the event loop), feeds the core and carries out its actions: it
sends control messages, and object pieces in the order the core's outbox gives, by
its :class:`~.sender.Sender`. What it cannot do alone (storing objects, keeping
commits, relaying wants) goes to the site's :class:`~.arrivals.Arrivals`, and the bytes
moved to its :class:`~.meter.Meter`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import WSMsgType

from ..errors import BadInput, NTError
from ..schema import link_message
from ..stores import offloop
from ..stores.base import ObjectStore
from ..tasks import spawn
from . import answers
from .actions import Action, KeepPart, Say
from .core import Peer
from .handles import Handles
from .outbox import Priority
from .ranges import read_answer
from .sender import Sender, WebSocket
from .wire import Piece, ack, batch_size, read_ack, unbatch, unsqueeze

log = logging.getLogger(__name__)

#: Carries out an action of a session's core beyond a message.
Act = Callable[["Session", Action], Awaitable[None]]
#: Counts the bytes a session sent and received.
Count = Callable[["Session", int, int], None]


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
        self.sent_bytes = self.received_bytes = 0
        #: Objects the peer sent that nobody asked for (dropped).
        self.unsolicited = 0
        self.connected = self.last_contact = time.time()
        self._pieces_received = 0
        #: Numbers naming objects the peer sent in several pieces (see :mod:`.handles`).
        self._receiving = Handles()
        self.sender = Sender(peer, ws, store, self.name, self.perform, lambda sent: self._count(sent=sent))

    # -- life cycle --------------------------------------------------------------------

    async def run(self) -> None:
        """Pump until the connection ends (the writer runs alongside)."""
        writer = self.sender.task = asyncio.create_task(self.sender.run())
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
                self.sender.say(action.text())
            else:
                await self._act(self, action)
        self.sender.wake.set()

    def tell(self, messages: Iterable[Say]) -> None:
        """Queue control messages (sent before any further object piece)."""
        for say in messages:
            self.sender.say(say.text())

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
        self.sender.acked(total)

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
        self.sender.say(ack(self._pieces_received))  # goes out before any piece

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
