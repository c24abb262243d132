"""The link emulator between real sockets: bandwidth, delay, outages, bounded loss."""

from __future__ import annotations

import contextlib
import itertools
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from eurec4a_nt.demokit.emulator import EmulatorThread, LinkEmulator, LinkProfile, Outages

KB = 1000


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(ConnectionResetError):  # by outages
            while data := self.request.recv(65536):
                self.request.sendall(data)


class _Sink(socketserver.BaseRequestHandler):
    """Reads until EOF, then answers with the number of bytes received."""

    def handle(self) -> None:
        total = 0
        with contextlib.suppress(ConnectionResetError):
            while data := self.request.recv(65536):
                total += len(data)
            self.request.sendall(str(total).encode())


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    with _Server(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            thread.join(5)


@pytest.fixture
def echo() -> Iterator[int]:
    yield from _serve(_Echo)


@pytest.fixture
def sink() -> Iterator[int]:
    yield from _serve(_Sink)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _push(port: int, size: int) -> tuple[int, float]:
    """Send ``size`` bytes to a sink, half-close; return (bytes it got, seconds taken)."""
    t0 = time.monotonic()
    with _connect(port) as s:
        s.sendall(b"x" * size)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while data := s.recv(100):
            answer += data
    return int(answer), time.monotonic() - t0


def _round_trip(port: int, data: bytes = b"ping") -> None:
    with _connect(port) as s:
        s.sendall(data)
        assert s.recv(100) == data


@pytest.mark.timeout(10)
def test_bandwidth(sink: int) -> None:
    with EmulatorThread(sink, LinkProfile(down=None, up=200 * KB)) as em:
        got, elapsed = _push(em.port, 400 * KB)
        stats = em.stats
    assert got == 400 * KB
    assert 1.8 <= elapsed < 10  # never faster than the link; slower only on a starved machine
    assert stats["sent_up"] == stats["delivered_up"] == 400 * KB
    assert stats["connections"] == 1


@pytest.mark.timeout(10)
def test_link_is_shared_fairly(sink: int) -> None:
    times: list[float] = []
    with EmulatorThread(sink, LinkProfile(down=None, up=200 * KB)) as em:
        pushers = [threading.Thread(target=lambda: times.append(_push(em.port, 200 * KB)[1])) for _ in range(2)]
        for t in pushers:
            t.start()
        for t in pushers:
            t.join(8)
        assert em.stats["sent_up"] == 400 * KB
    assert len(times) == 2
    assert min(times) >= 1.5  # interleaved: neither got the whole link for itself
    assert max(times) >= 1.8


@pytest.mark.timeout(10)
def test_delay(echo: int) -> None:
    profile = LinkProfile(down=None, up=None, delay=0.1)
    with EmulatorThread(echo, profile) as em, _connect(em.port) as s:
        t0 = time.monotonic()
        s.sendall(b"ping")
        assert s.recv(100) == b"ping"
        elapsed = time.monotonic() - t0
    assert 0.2 <= elapsed < 5  # never faster than the delay; slower only on a starved machine


def _is_reset(s: socket.socket) -> bool:
    try:
        return s.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


@pytest.mark.timeout(10)
def test_outage_on_demand(echo: int) -> None:
    with EmulatorThread(echo, LinkProfile(down=200 * KB, up=200 * KB, delay=0.02)) as em:
        with _connect(em.port) as open_conn:
            open_conn.sendall(b"before")
            assert open_conn.recv(100) == b"before"
            em.down()
            assert not em.is_up
            assert _is_reset(open_conn)
        try:  # the proxy accepts, then resets, maybe before connect() returns
            with _connect(em.port) as refused:
                assert _is_reset(refused)
        except ConnectionResetError:
            pass
        em.up()
        _round_trip(em.port, b"after")
        stats = em.stats
    assert stats["resets"] == 1
    assert stats["refused"] == 1
    assert stats["connections"] == 2
    assert stats["up"] is True


@pytest.mark.timeout(10)
def test_outage_schedule(echo: int) -> None:
    seen = []
    with EmulatorThread(echo, LinkProfile(down=None, up=None), outages=Outages(period=1.0, duration=0.3)) as em:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.3:
            seen.append((time.monotonic() - t0, em.is_up))
            time.sleep(0.02)
    # Only bounds a late (starved) sampler cannot break: up until the outage is due,
    # then down for no longer than scheduled, then up again.
    down = [t for t, up in seen if not up]
    assert down, "the link never went down"
    assert all(up for t, up in seen if t < 0.65)
    assert down[0] >= 0.65 and down[-1] - down[0] < 0.35
    assert seen[-1][1], "the link did not come back up"


@pytest.mark.timeout(10)
def test_in_flight_loss_is_bounded(sink: int) -> None:
    rate, delay = 200 * KB, 0.05
    written = 0

    def flood(port: int) -> None:
        nonlocal written
        buf = b"x" * 65536
        with _connect(port) as s:
            try:
                while True:
                    written += s.send(buf)
            except OSError:
                pass

    with EmulatorThread(sink, LinkProfile(down=None, up=rate, delay=delay)) as em:
        sender = threading.Thread(target=flood, args=(em.port,))
        sender.start()
        time.sleep(1.0)
        em.down()
        sender.join(5)
        assert not sender.is_alive()
        stats = em.stats
    assert stats["resets"] == 1
    assert stats["sent_up"] >= 150 * KB  # the link was busy
    assert stats["sent_up"] <= written
    assert 0 <= stats["sent_up"] - stats["delivered_up"] <= rate * delay + 64 * 1024 + 16 * 1024


@pytest.mark.timeout(10)
def test_timeline_and_reset_counters(sink: int) -> None:
    with EmulatorThread(sink, LinkProfile(down=None, up=200 * KB)) as em:
        _push(em.port, 40 * KB)
        time.sleep(0.25)
        timeline = em.timeline
        assert len(timeline) >= 2
        assert all(b[0] > a[0] for a, b in itertools.pairwise(timeline))
        assert timeline[-1][1:] == (40 * KB, len(b"40000"))  # and the answer came back
        em.reset_counters()
        assert em.stats["sent_up"] == 0 and em.stats["connections"] == 0


def test_refuses_non_loopback_target() -> None:
    profile = LinkProfile.satellite()
    for host in ("10.0.0.1", "example.org", "0.0.0.0"):
        with pytest.raises(ValueError):
            LinkEmulator(80, profile, target_host=host)


def test_parse() -> None:
    assert LinkProfile.parse("down=1MB,up=250KB,delay=350ms") == LinkProfile.satellite()
    assert LinkProfile.parse("up=2KiB, delay=1.5s") == LinkProfile(down=None, up=2048, delay=1.5)
    assert Outages.parse("3/8") == Outages(period=8.0, duration=3.0)
    for bad in ("down=1GB", "down=fast", "sideways=1MB", "down=-1MB"):
        with pytest.raises(ValueError):
            LinkProfile.parse(bad)
    for bad in ("3", "8/3", "x/8"):
        with pytest.raises(ValueError):
            Outages.parse(bad)


@pytest.mark.timeout(30)
def test_cli_help() -> None:
    cmd = [sys.executable, "-m", "eurec4a_nt.demokit.emulator", "--help"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=25, check=False)
    assert result.returncode == 0, result.stderr
    assert "--outages" in result.stdout
