"""Pacing without configuration: the sender learns rate and round trip from the peer's
acknowledgements and keeps about one bandwidth-delay product in flight (simulated link,
no sockets, no clock); a sender waiting for acknowledgements stops when its link drops."""

from __future__ import annotations

import asyncio
import heapq
import os
from pathlib import Path

import pytest
from aiohttp import WSMessage, WSMsgType

from eurec4a_nt.ids import ObjectId
from eurec4a_nt.stores.local import LocalStore
from eurec4a_nt.sync.core import Peer
from eurec4a_nt.sync.outbox import Priority
from eurec4a_nt.sync.pacing import MIN_PIECE, PIECE_TIME, Pacer
from eurec4a_nt.sync.partials import Partials
from eurec4a_nt.sync.session import Session
from eurec4a_nt.sync.wire import PIECE, RAW, Outgoing, Piece, ack, read_ack

HEADER = 40  # bytes of a piece beyond its payload


def simulate(rate: float, delay: float, seconds: float, first: int = 0) -> tuple[Pacer, float, int, int]:
    """A sender with endless data over a link of ``rate`` bytes/s and ``delay`` s one way,
    cutting pieces as the pacer says (after a piece of ``first`` bytes, if given, alone
    on the link: its round trip is nearly the link's own); returns the pacer, the bytes
    delivered after the first quarter per second, the largest queue in front of the link
    in the last half (bytes sent, not yet on the wire) and the most bytes ever in flight
    beyond the window."""
    pacer, now, link_free = Pacer(), 0.0, 0.0
    acks: list[tuple[float, int]] = []
    delivered: list[tuple[float, int]] = []
    queue_peak = over = 0
    if first:
        pacer.on_sent(first, now)
        now = 2 * delay + first / rate
        pacer.on_ack(first, now)
    while now < seconds:
        while pacer.may_send(now):
            size = pacer.piece_size() + HEADER
            start = max(now, link_free)
            if now > seconds / 2:
                queue_peak = max(queue_peak, int((start - now) * rate))
            link_free = start + size / rate
            pacer.on_sent(size, now)
            over = max(over, pacer.in_flight - pacer.window(now))
            delivered.append((link_free + delay, pacer.sent))
            heapq.heappush(acks, (link_free + 2 * delay, pacer.sent))
        now, total = heapq.heappop(acks)
        pacer.on_ack(total, now)
    late = [(t, b) for t, b in delivered if seconds / 4 <= t <= seconds]
    return pacer, (late[-1][1] - late[0][1]) / (late[-1][0] - late[0][0]), queue_peak, over


@pytest.mark.parametrize("first", [0, 200])
@pytest.mark.parametrize(("rate", "delay"), [(250_000, 0.35), (1_000_000, 0.35), (100e6, 0.0005)])
def test_the_link_stays_busy_and_an_urgent_piece_waits_about_a_piece(rate: float, delay: float, first: int) -> None:
    """Whether the shortest round trip seen is a small piece's (the link's own delay)
    or a full one's, the link is kept busy; what waits in front of it, and so what an
    urgent piece waits for, stays within a few pieces' time, not a round trip."""
    pacer, throughput, queue, over = simulate(rate, delay, 30.0, first)
    assert throughput > 0.97 * rate
    assert pacer.rtt() == pytest.approx(2 * delay + (first or MIN_PIECE) / rate, rel=0.05)
    piece = pacer.piece_size() + HEADER
    assert queue <= 0.1 * rate * 2 * delay + 3 * piece
    assert over < piece  # in flight exceeds the window by less than the piece that crossed it


def test_pieces_last_a_fraction_of_a_round_trip_on_a_slow_link() -> None:
    """Pieces are as large as the link's rate allows for :data:`PIECE_TIME`, within
    bounds: small on a satellite uplink, whole on a fast link, small before any rate
    is known."""
    assert Pacer().piece_size() == MIN_PIECE
    for rate, size in ((250_000, MIN_PIECE), (400_000, 50_000), (100e6, PIECE)):
        pacer, _, _, _ = simulate(rate, 0.35, 5.0)
        assert pacer.piece_size() == pytest.approx(size, abs=100)
        assert pacer.piece_size() <= max(MIN_PIECE, pacer.rate() * PIECE_TIME)


def test_an_urgent_piece_may_go_beyond_the_window_bulk_may_not() -> None:
    """Bulk waits for the window; a more urgent item is held only at two windows, so a
    rate still being learnt does not slow it (and in flight stays bounded)."""
    pacer, _, _, _ = simulate(1_000_000, 0.35, 5.0)
    now = 5.0
    window = pacer.window(now)
    while pacer.in_flight < window:
        pacer.on_sent(pacer.piece_size(), now)
    assert not pacer.may_send(now) and pacer.may_send(now, urgent=True)
    while pacer.may_send(now, urgent=True):
        pacer.on_sent(pacer.piece_size(), now)
    assert 2 * window <= pacer.in_flight < 2 * window + pacer.piece_size()


def test_an_object_cut_into_pieces_of_changing_sizes_arrives_whole() -> None:
    """Pieces cut as the sender goes, of changing sizes, resume and assemble like any."""
    data = os.urandom(5 * PIECE + 123)
    outgoing = Outgoing(ObjectId.of(data), RAW, None, data)
    partials = Partials()
    sizes = iter([MIN_PIECE, PIECE, 3000, PIECE, PIECE, PIECE, PIECE])
    whole = None
    while not outgoing.done:
        whole = partials.assemble(Piece.unpack(outgoing.next_piece(next(sizes)).pack()))
    assert whole == data


def test_acknowledgements_are_small_and_checked() -> None:
    assert read_ack(ack(5 << 30)) == 5 << 30 and len(ack(5 << 30)) <= 7
    pacer = Pacer()
    pacer.on_sent(PIECE, 0.0)
    pacer.on_ack(10 * PIECE, 1.0)  # more than was sent: ignored
    pacer.on_ack(PIECE, 1.0)
    assert pacer.in_flight == 0 and pacer.rtt() == 1.0


class _LastAck:
    """A connection whose peer acknowledges once more and is gone: the acknowledgement
    is its last message, and it ends in the same turn of the event loop."""

    closed = False

    def __init__(self, total: int) -> None:
        self._messages = [WSMessage(WSMsgType.BINARY, ack(total), None)]

    def __aiter__(self) -> _LastAck:
        return self

    async def __anext__(self) -> WSMessage:
        if not self._messages:
            raise StopAsyncIteration  # at once, right after the acknowledgement was handled
        for _ in range(5):  # the sender meanwhile fills its window and waits for acknowledgements
            await asyncio.sleep(0)
        return self._messages.pop()


async def nothing_to_act_on(session: Session, action: object) -> None:
    raise AssertionError(f"nothing to act on: {action}")


def test_a_sender_waiting_for_acknowledgements_stops_when_its_link_drops(tmp_path: Path) -> None:
    """The acknowledgement that wakes the waiting sender and the end of the connection
    come together (a link dropping mid-transfer): the session must still end, so that
    the link dials again and hands its queue on, not wait forever for acknowledgements
    a dead connection never brings."""

    async def run() -> tuple[bool, bool]:
        data = os.urandom(3 * PIECE)
        core = Peer("OPS", None, {"heads": {}}, Partials())
        core.outbox.queue([ObjectId.of(data)], Priority.BULK)
        item = core.outbox.next(True)
        assert item is not None
        core.outbox.begin(item, Outgoing(item.oid, RAW, None, data), [])
        session = Session(core, _LastAck(2 * PIECE), LocalStore(tmp_path), nothing_to_act_on,
                          lambda session, sent, received: None)
        assert session.sender.pacer is not None
        session.sender.pacer.on_sent(20 * PIECE, 0.0)  # a full window in flight, a first part acknowledged
        session.sender.pacer.on_ack(PIECE, 0.1)
        assert not session.sender.pacer.may_send(0.1)
        try:
            async with asyncio.timeout(10):
                await session.run()
        except TimeoutError:
            return False, False
        return True, core.outbox.transfer(item) is not None

    ended, still_queued = asyncio.run(run())
    assert ended, "the session did not end after its connection did"
    assert still_queued  # nothing was sent over the dead connection: all of it is handed on
