"""Emulate a slow, intermittent network link as a TCP proxy on 127.0.0.1.

Each direction ("up" = client->target, "down" = target->client) is one link shared by
all connections of an emulator. Bytes read from a source socket are serialized onto
the link at the direction's bandwidth, in pieces of at most 16 KiB taken round robin
from the connections; a piece reaches its destination ``delay`` seconds after its
serialization finished. Per connection and direction at most one bandwidth-delay
product + 64 KiB is read but not yet delivered, so senders see a realistic window;
the emulator's own sockets keep small receive buffers, so that the kernel adds little
queue on top of it.

When the link goes down (``down()`` or an ``Outages`` schedule) every connection is
reset (RST), everything queued or in flight is lost (serialized bytes were already
counted as ``sent``), and new connections are reset on accept until the link is up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

PIECE = 16 * 1024  # largest piece serialized at once
MIN_WINDOW = 64 * 1024  # read-but-undelivered bytes allowed on top of the BDP
RECEIVE_BUFFER = 64 * 1024  # SO_RCVBUF of the emulator's sockets (the kernel doubles it)
UNLIMITED_RATE = 100e6  # bytes/s assumed for an unlimited direction when sizing its window
BURST = 0.01  # seconds of lost link time (late timers) a busy link may catch up on
SAMPLE = 0.1  # seconds between timeline samples
_SIZES = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "KiB": 1024, "MiB": 1024**2}
_TIMES = {"": 1.0, "s": 1.0, "ms": 1e-3}


def _quantity(text: str, units: Mapping[str, float]) -> float:
    m = re.fullmatch(r"\s*(\d*\.?\d+)\s*([A-Za-z]*)\s*", text)
    if not m or m[2] not in units:
        raise ValueError(f"bad quantity {text!r} (units: {', '.join(u for u in units if u)})")
    return round(float(m[1]) * units[m[2]], 9)


@dataclass(frozen=True)
class LinkProfile:
    """Bandwidth per direction in bytes/s (None = unlimited) and one-way delay in s."""

    down: float | None  # target -> client
    up: float | None  # client -> target
    delay: float = 0.0

    def __post_init__(self) -> None:
        if any(b is not None and b <= 0 for b in (self.down, self.up)) or self.delay < 0:
            raise ValueError(f"invalid link profile {self}")

    @classmethod
    def satellite(cls) -> LinkProfile:
        """A ship's satellite link: 1 MB/s down, 250 KB/s up, 350 ms one way."""
        return cls(down=1_000_000, up=250_000, delay=0.35)

    @classmethod
    def parse(cls, text: str) -> LinkProfile:
        """Parse e.g. ``"down=1MB,up=250KB,delay=350ms"``; a direction left out is unlimited."""
        fields: dict[str, float | None] = {}
        for item in text.split(","):
            key, sep, value = (s.strip() for s in item.partition("="))
            if not sep or key not in ("down", "up", "delay") or key in fields:
                raise ValueError(f"bad link item {item!r} in {text!r}")
            if key == "delay":
                fields[key] = _quantity(value, _TIMES)
            elif value.lower() in ("none", "unlimited"):
                fields[key] = None
            else:
                fields[key] = _quantity(value.removesuffix("/s"), _SIZES)
        return cls(down=fields.get("down"), up=fields.get("up"), delay=fields.get("delay") or 0.0)


@dataclass(frozen=True)
class Outages:
    """The link is down for ``duration`` s at the end of every ``period`` s; the first
    outage starts ``first`` s after start (default ``period - duration``)."""

    period: float
    duration: float
    first: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.duration < self.period or (self.first or 0) < 0:
            raise ValueError(f"invalid outages {self}")

    @classmethod
    def parse(cls, text: str) -> Outages:
        """Parse ``"3/8"`` (or ``"300ms/1s"``): down 3 s every 8 s."""
        duration, sep, period = text.partition("/")
        if not sep:
            raise ValueError(f"bad outages {text!r}, expected DURATION/PERIOD")
        return cls(period=_quantity(period, _TIMES), duration=_quantity(duration, _TIMES))


class _Link:
    """One direction of the link: a serializer shared by all connections."""

    def __init__(self, bandwidth: float | None, delay: float) -> None:
        self.bandwidth, self.delay = bandwidth, delay
        self.window = int((bandwidth or UNLIMITED_RATE) * delay) + MIN_WINDOW
        self.sent = self.delivered = 0
        self._ready: deque[_Pipe] = deque()  # pipes with pending pieces, round robin
        self._wakeup = asyncio.Event()

    def submit(self, pipe: _Pipe, data: bytes) -> None:
        pipe.pending.append(data)
        if len(pipe.pending) == 1:
            self._ready.append(pipe)
            self._wakeup.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        free_at = 0.0  # when the link finishes serializing what it has started
        while True:
            if not self._ready:
                self._wakeup.clear()
                await self._wakeup.wait()
                free_at = loop.time()  # an idle link saves up no time
                continue
            pipe = self._ready.popleft()
            if not pipe.pending:  # closed by an outage
                continue
            data = pipe.pending.popleft()
            if pipe.pending:
                self._ready.append(pipe)
            now = loop.time()
            if self.bandwidth is None:
                free_at = now
            else:
                free_at = max(free_at, now - BURST) + len(data) / self.bandwidth
                await asyncio.sleep(free_at - now)
            if not pipe.closed:
                self.sent += len(data)
                pipe.arrivals.put_nowait((free_at + self.delay, data))


class _Pipe:
    """One direction of one connection: source socket -> link -> destination socket."""

    def __init__(self, link: _Link, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        self.link, self.src, self.dst = link, src, dst
        self.pending: deque[bytes] = deque()  # read, waiting for the link; b"" = EOF
        self.arrivals: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()  # (due, piece)
        self.inflight = 0  # bytes read but not yet delivered
        self.room = asyncio.Event()
        self.closed = False
        dst.transport.set_write_buffer_limits(high=0)  # drain() = handed to the kernel

    async def read(self) -> None:
        while True:
            while self.inflight >= self.link.window:
                self.room.clear()
                await self.room.wait()
            data = await self.src.read(min(PIECE, self.link.window - self.inflight))
            self.inflight += len(data)
            self.link.submit(self, data)
            if not data:
                return

    async def write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await self.arrivals.get()
            await asyncio.sleep(due - loop.time())
            if not data:
                if self.dst.can_write_eof():
                    self.dst.write_eof()
                return
            self.dst.write(data)
            await self.dst.drain()
            self.link.delivered += len(data)
            self.inflight -= len(data)
            self.room.set()

    def close(self) -> None:
        self.closed = True
        self.pending.clear()


def _socket(port: int | None = None) -> socket.socket:
    """A TCP socket on 127.0.0.1 with a small receive buffer; bound to ``port`` and
    listening if ``port`` is given (accepted sockets inherit the buffer size)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    if port is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    sock.setblocking(False)
    return sock


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with RST rather than FIN."""
    with contextlib.suppress(OSError):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Conn:
    """One proxied connection: the task running it, its sockets and its two pipes."""

    def __init__(self, em: LinkEmulator, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.writers = [client_w]
        self.pipes: list[_Pipe] = []
        self.task = asyncio.create_task(self._run(em, client_r, client_w))

    async def _run(self, em: LinkEmulator, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            sock = _socket()
            try:
                await asyncio.get_running_loop().sock_connect(sock, (em.target_host, em.target_port))
            except OSError:
                sock.close()
                raise
            target_r, target_w = await asyncio.open_connection(sock=sock, limit=PIECE)
            self.writers.append(target_w)
            self.pipes = [_Pipe(em._up, client_r, target_w), _Pipe(em._down, target_r, client_w)]
            async with asyncio.TaskGroup() as group:
                for pipe in self.pipes:
                    group.create_task(pipe.read())
                    group.create_task(pipe.write())
        except* OSError:  # a peer reset, or the target refused: pass a reset on
            self.abort()
        else:
            for writer in self.writers:
                writer.close()
        finally:
            em._conns.discard(self)

    def abort(self) -> None:
        for pipe in self.pipes:
            pipe.close()
        for writer in self.writers:
            _reset(writer)


class LinkEmulator:
    """A TCP proxy on 127.0.0.1:``port`` to 127.0.0.1:``target_port`` through an emulated link."""

    def __init__(self, target_port: int, profile: LinkProfile, *, target_host: str = "127.0.0.1",
                 port: int = 0, outages: Outages | None = None) -> None:
        if target_host != "127.0.0.1":
            raise ValueError(f"the emulator only forwards to 127.0.0.1, not {target_host!r}")
        self.target_host, self.target_port = target_host, target_port
        self.profile, self.outages, self.port = profile, outages, port
        self.is_up = True
        self._up, self._down = _Link(profile.up, profile.delay), _Link(profile.down, profile.delay)
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: set[_Conn] = set()
        self.reset_counters()

    def reset_counters(self) -> None:
        """Zero all counters and restart the timeline (its clock too)."""
        self._up.sent = self._up.delivered = self._down.sent = self._down.delivered = 0
        self.connections = self.resets = self.refused = 0
        self.timeline: list[tuple[float, int, int]] = []  # (s since start, sent up, sent down)
        self._t0 = time.monotonic()

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: bytes ``sent`` (serialized onto the link) and ``delivered`` per direction,
        connections accepted, reset by outages and refused during outages, and ``up``."""
        up, down = self._up, self._down
        return {"sent_up": up.sent, "sent_down": down.sent,
                "delivered_up": up.delivered, "delivered_down": down.delivered,
                "connections": self.connections, "resets": self.resets,
                "refused": self.refused, "up": self.is_up}

    async def start(self) -> None:
        """Listen, and start the link serializers, the sampler and the outage schedule."""
        self._server = await asyncio.start_server(self._accept, sock=_socket(self.port), limit=PIECE)
        self.port = self._server.sockets[0].getsockname()[1]
        self.reset_counters()
        jobs = [self._up.run(), self._down.run(), self._sample()]
        if self.outages:
            jobs.append(self._schedule(self.outages))
        self._tasks = [asyncio.create_task(job) for job in jobs]

    async def stop(self) -> None:
        """Stop listening, reset all connections and cancel all tasks."""
        if self._server:
            self._server.close()
        conns = [conn.task for conn in self._conns]
        self._abort_all()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *conns, return_exceptions=True)
        if self._server:
            await self._server.wait_closed()

    def down(self) -> None:
        """Take the link down: reset every connection, drop all queued and in-flight bytes."""
        if self.is_up:
            self.is_up = False
            self.resets += self._abort_all()

    def up(self) -> None:
        """Bring the link back up: new connections work again."""
        self.is_up = True

    def _abort_all(self) -> int:
        conns = list(self._conns)
        for conn in conns:
            conn.abort()
            conn.task.cancel()
        self._conns.clear()
        return len(conns)

    def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.is_up:
            self.connections += 1
            self._conns.add(_Conn(self, client_r, client_w))
        else:
            self.refused += 1
            _reset(client_w)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        tick = loop.time()
        while True:
            tick += SAMPLE
            await asyncio.sleep(tick - loop.time())
            t = round(time.monotonic() - self._t0, 3)
            self.timeline.append((t, self._up.sent, self._down.sent))

    async def _schedule(self, outages: Outages) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time() + (outages.period - outages.duration if outages.first is None else outages.first)
        while True:
            await asyncio.sleep(start - loop.time())
            self.down()
            await asyncio.sleep(start + outages.duration - loop.time())
            self.up()
            start += outages.period


class EmulatorThread:
    """Runs a LinkEmulator on its own event loop in a daemon thread, for synchronous code
    (pytest, benchmarks). All methods and properties are thread-safe."""

    def __init__(self, target_port: int, profile: LinkProfile, **kwargs: Any) -> None:
        self.emulator = LinkEmulator(target_port, profile, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="link-emulator", daemon=True)

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` (awaiting it if a coroutine function) on the emulator's loop."""

        async def run() -> Any:
            return await fn() if inspect.iscoroutinefunction(fn) else fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def start(self) -> None:
        """Start the thread and the emulator; ``port`` is known when this returns."""
        self._thread.start()
        try:
            self._call(self.emulator.start)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the emulator and join the thread (within a few seconds)."""
        if self._thread.is_alive():
            try:
                self._call(self.emulator.stop)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.emulator.port

    @property
    def is_up(self) -> bool:
        return self._call(lambda: self.emulator.is_up)

    @property
    def stats(self) -> dict[str, Any]:
        return self._call(lambda: self.emulator.stats)

    @property
    def timeline(self) -> list[tuple[float, int, int]]:
        return self._call(lambda: list(self.emulator.timeline))

    def down(self) -> None:
        self._call(self.emulator.down)

    def up(self) -> None:
        self._call(self.emulator.up)

    def reset_counters(self) -> None:
        self._call(self.emulator.reset_counters)


async def _serve(args: argparse.Namespace) -> None:
    emulator = LinkEmulator(args.target, args.link, port=args.port, outages=args.outages)
    await emulator.start()
    print(f"127.0.0.1:{emulator.port} -> 127.0.0.1:{args.target}, {args.link}, {args.outages}", flush=True)
    try:
        while True:
            await asyncio.sleep(args.every)
            print(" ".join(f"{k}={v}" for k, v in emulator.stats.items()), flush=True)
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    """Run one emulator until Ctrl-C, printing its stats every few seconds."""
    parser = argparse.ArgumentParser(
        prog="python -m eurec4a_nt.demokit.emulator",
        description="TCP proxy on 127.0.0.1 emulating a slow, intermittent link.",
    )
    parser.add_argument("--target", type=int, required=True, help="port of the server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free)")
    parser.add_argument(
        "--link", type=LinkProfile.parse, default=LinkProfile.satellite(),
        help="e.g. down=1MB,up=250KB,delay=350ms (the default)",
    )
    parser.add_argument("--outages", type=Outages.parse, help="DURATION/PERIOD, e.g. 3/8: down 3 s every 8 s")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between stats lines")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
