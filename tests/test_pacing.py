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
from eurec4a_nt.sync.pacing import MIN_WINDOW, Pacer
from eurec4a_nt.sync.partials import Partials
from eurec4a_nt.sync.session import Session
from eurec4a_nt.sync.wire import PIECE, RAW, ack, pieces, read_ack


def simulate(rate: float, delay: float, seconds: float) -> tuple[Pacer, float, int]:
    """A sender with endless data over a link of ``rate`` bytes/s and ``delay`` s one way;
    returns the pacer, the bytes delivered after the first quarter per second, and the
    largest queue in front of the link in the last half (bytes sent, not yet on the wire)."""
    pacer, now, link_free = Pacer(), 0.0, 0.0
    acks: list[tuple[float, int]] = []
    delivered: list[tuple[float, int]] = []
    queue_peak = 0
    while now < seconds:
        while pacer.may_send(PIECE, now):
            start = max(now, link_free)
            if now > seconds / 2:
                queue_peak = max(queue_peak, int((start - now) * rate))
            link_free = start + PIECE / rate
            pacer.on_sent(PIECE, now)
            delivered.append((link_free + delay, pacer.sent))
            heapq.heappush(acks, (link_free + 2 * delay, pacer.sent))
        now, total = heapq.heappop(acks)
        pacer.on_ack(total, now)
    late = [(t, b) for t, b in delivered if seconds / 4 <= t <= seconds]
    return pacer, (late[-1][1] - late[0][1]) / (late[-1][0] - late[0][0]), queue_peak


@pytest.mark.parametrize(("rate", "delay"), [(250_000, 0.35), (1_000_000, 0.35), (100e6, 0.0005)])
def test_the_link_stays_busy_and_its_buffer_nearly_empty(rate: float, delay: float) -> None:
    pacer, throughput, queue = simulate(rate, delay, 30.0)
    bdp = rate * 2 * delay
    assert throughput > 0.95 * rate
    assert pacer.rtt() == pytest.approx(2 * delay + PIECE / rate, rel=0.2)
    assert queue <= 0.5 * bdp + 2 * PIECE  # an urgent piece waits well under a round trip
    assert MIN_WINDOW <= pacer.window(30.0) <= 2.5 * bdp + 2 * PIECE + MIN_WINDOW


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
        core.outbox.begin(item, pieces(item.oid, RAW, None, data), [])
        session = Session(core, _LastAck(2 * PIECE), LocalStore(tmp_path), nothing_to_act_on,
                          lambda session, sent, received: None)
        assert session.pacer is not None
        session.pacer.on_sent(20 * PIECE, 0.0)  # a full window in flight, a first part acknowledged
        session.pacer.on_ack(PIECE, 0.1)
        assert not session.pacer.may_send(PIECE, 0.1)
        try:
            async with asyncio.timeout(10):
                await session.run()
        except TimeoutError:
            return False, False
        return True, core.outbox.transfer(item) is not None

    ended, still_queued = asyncio.run(run())
    assert ended, "the session did not end after its connection did"
    assert still_queued  # nothing was sent over the dead connection: all of it is handed on
