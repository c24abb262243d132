"""How much a sender keeps in flight, learnt from the link as it goes (no I/O, no clock).

The receiver acknowledges the piece bytes it has received (``'A' | varint total``, one
small message per piece). From the acknowledgements the :class:`Pacer` learns the
link's delivery rate (the fastest recent one) and round trip (the shortest recent one)
the way BBR does (the rate over the last :data:`MEMORY` seconds, the round trip over
the session), and lets about one bandwidth-delay product and a piece be in flight
(the piece: acknowledgements come a piece at a time): enough to keep the link busy,
little enough that the buffers in front of a slow link stay nearly empty, so an
urgent item queued behind bulk data overtakes within a piece or two. While the rate
still grows by a quarter within a round trip it lets 1.5 times that out, to find the
rate quickly. A configured ``rate:`` stays a cap on top (the token bucket).
"""

from __future__ import annotations

from collections import deque

from .wire import PIECE

#: In flight before anything is learnt (about a satellite link's bandwidth-delay
#: product), and never less than :data:`MIN_WINDOW` after.
INITIAL_WINDOW = 10 * PIECE
MIN_WINDOW = 4 * PIECE
#: Samples older than this many seconds are forgotten (the link may change).
MEMORY = 10.0
#: Steady-state and start-up multipliers of the bandwidth-delay product.
GAIN, STARTUP_GAIN = 1.05, 1.5


class Pacer:
    """Bytes sent and acknowledged on one session; ``window()`` says how much may be in flight."""

    def __init__(self) -> None:
        self.sent = self.acked = 0
        self._sends: deque[tuple[int, float]] = deque()  # (bytes sent up to the end of a piece, when)
        self._acks: deque[tuple[float, int]] = deque()  # (when, bytes acknowledged), the last round trip
        self._rtt: float | None = None  # the shortest round trip of the session
        self._rates = _Windowed()  # bytes per second
        self._best = 0.0
        self._grew = 0.0  # when the rate last grew by a quarter

    @property
    def in_flight(self) -> int:
        return self.sent - self.acked

    def on_sent(self, size: int, now: float) -> None:
        self.sent += size
        self._sends.append((self.sent, now))

    def on_ack(self, total: int, now: float) -> None:
        """The peer holds ``total`` piece bytes; ignored unless it is news."""
        if total <= self.acked or total > self.sent:
            return
        while self._sends and self._sends[0][0] <= total:
            end, when = self._sends.popleft()
            if end == total:
                self._rtt = now - when if self._rtt is None else min(self._rtt, now - when)
        since = now - max(self.rtt() or 0.0, 0.05)
        while len(self._acks) > 1 and self._acks[1][0] <= since:  # keep one ack a round trip old
            self._acks.popleft()
        if self._acks and self._acks[0][0] <= since:  # delivered over the last round trip
            when, acked = self._acks[0]
            rate = (total - acked) / (now - when)
            self._rates.add(now, rate)
            if rate > 1.25 * self._best:
                self._best, self._grew = rate, now
        self._acks.append((now, total))
        self.acked = total

    def rate(self) -> float:
        """The fastest recent delivery rate, bytes per second (0 before any)."""
        return self._rates.best() or 0.0

    def rtt(self) -> float | None:
        """The shortest round trip of the session, seconds: the link's own delay, not
        the queues in front of it (a queue only ever adds to a round trip)."""
        return self._rtt

    def window(self, now: float) -> int:
        """Bytes that may be in flight now."""
        rtt = self.rtt()
        if rtt is None or not self.rate():
            return INITIAL_WINDOW
        growing = now - self._grew < rtt
        gain = STARTUP_GAIN if growing else GAIN
        return max(MIN_WINDOW, int(gain * self.rate() * rtt) + PIECE)  # a piece of slack for acks per piece

    def may_send(self, size: int, now: float) -> bool:
        """Whether a piece of ``size`` may go out now."""
        return self.in_flight == 0 or self.in_flight + size <= self.window(now)


class _Windowed:
    """The greatest value added over the last :data:`MEMORY` seconds, in constant time
    per sample (a monotonic queue)."""

    def __init__(self) -> None:
        self._items: deque[tuple[float, float]] = deque()

    def add(self, now: float, value: float) -> None:
        while self._items and self._items[-1][1] <= value:
            self._items.pop()
        self._items.append((now, value))
        while self._items[0][0] < now - MEMORY:
            self._items.popleft()

    def best(self) -> float | None:
        return self._items[0][1] if self._items else None
