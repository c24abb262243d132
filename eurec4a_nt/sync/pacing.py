"""How much a sender keeps in flight, and in what pieces, learnt from the link as it
goes (no I/O, no clock).

The receiver acknowledges the piece bytes it has received (``'A' | varint total``, one
small message per piece). From the acknowledgements the :class:`Pacer` learns the
link's delivery rate (the fastest over the last :data:`MEMORY` seconds) and round trip
(the shortest of the session) the way BBR does. A piece may go while less than one
bandwidth-delay product and a piece is in flight: since pieces are acknowledged whole,
that is the least that keeps the link busy, and what waits in front of the link (in
the modem's buffer, the kernel's, ours) stays within about two pieces. Pieces are cut
to last about :data:`PIECE_TIME` on the link, so an urgent item queued behind bulk data
waits a fraction of a second, not a round trip. While the rate still grows by a
quarter within a round trip the product counts 1.25 times, to find the rate quickly;
a piece of an item more urgent than bulk may go while less than two windows are in
flight, so that it is not held to a rate still being learnt. A configured ``rate:``
stays a cap on top (the token bucket).
"""

from __future__ import annotations

from collections import deque

from .wire import PIECE

#: In flight before anything is learnt (about a satellite link's bandwidth-delay
#: product); never less than two pieces after.
INITIAL_WINDOW = 10 * PIECE
#: Samples older than this many seconds are forgotten (the link may change).
MEMORY = 10.0
#: Steady-state and start-up multipliers of the bandwidth-delay product.
GAIN, STARTUP_GAIN = 1.05, 1.25
#: Seconds a piece takes on the link at most (as long as it is not under
#: :data:`MIN_PIECE`): what an urgent item waits for the piece ahead of it.
PIECE_TIME = 1 / 8
MIN_PIECE = 32 << 10


class Pacer:
    """Bytes sent and acknowledged on one session; a piece may go while less than
    ``window()`` is in flight."""

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
        """Bytes in flight below which another piece may go: the bandwidth-delay product
        and a piece (the peer acknowledges whole pieces). In flight then stays within a
        piece above it, so that the link never idles and the bytes waiting in front of
        it stay under a piece or two (the pieces are discrete: a window of a piece
        less would leave the link idle a part of each round trip)."""
        rtt = self.rtt()
        if rtt is None or not self.rate():
            return INITIAL_WINDOW
        growing = now - self._grew < rtt
        gain = STARTUP_GAIN if growing else GAIN
        piece = self.piece_size()
        return max(2 * piece, int(gain * self.rate() * rtt) + piece)

    def may_send(self, now: float, urgent: bool = False) -> bool:
        """Whether another piece may go out now. A piece of an ``urgent`` item (one
        more urgent than bulk) may go while less than two windows are in flight: bulk
        sent after it waits for the window again, and while the rate is still being
        learnt (below the link's) it is not held to that pace."""
        return self.in_flight < self.window(now) * (2 if urgent else 1)

    def piece_size(self) -> int:
        """Bytes of payload to put in the next piece: about :data:`PIECE_TIME` seconds
        at the link's rate, between :data:`MIN_PIECE` (until a rate is known, so that
        the first round trips measured are not a large piece's time on a slow link)
        and :data:`~.wire.PIECE`. Bytes queued in front of the link, and so what an
        urgent item waits for, scale with it."""
        return max(MIN_PIECE, min(PIECE, int(self.rate() * PIECE_TIME)))


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
