"""Pacing without configuration: the sender learns rate and round trip from the peer's
acknowledgements and keeps about one bandwidth-delay product in flight (simulated link,
no sockets, no clock)."""

from __future__ import annotations

import heapq

import pytest

from eurec4a_nt.sync.pacing import MIN_WINDOW, Pacer
from eurec4a_nt.sync.wire import PIECE, ack, read_ack


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
