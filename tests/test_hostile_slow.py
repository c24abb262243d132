"""Slow clients against a real server: hundreds of connections that send a request head
a few bytes at a time (slowloris), and bodies sent a byte at a time. The server has more
file descriptors than the usual soft limit of 1024 allows, closes each such connection
once its head is overdue (``--head-timeout``), answers an overdue body 408
(``--body-timeout``), and /health answers throughout. The servers here run with
timeouts of :data:`HEAD_TIMEOUT` and :data:`BODY_TIMEOUT` seconds, the defaults being a
minute and two."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, start

from eurec4a_nt.demokit.sites import SiteProcess

SOFT_LIMIT = 256
SLOW = 400
HEAD_TIMEOUT = BODY_TIMEOUT = 10
TIMEOUTS = ("--head-timeout", str(HEAD_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT))


@pytest.fixture
def cramped(tmp_path: Path) -> Iterator[SiteProcess]:
    """A server started with a soft limit of 256 open files (its hard limit as usual)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4 * SLOW:
        pytest.skip(f"hard limit of open files {hard} too low for this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT_LIMIT, hard))
    try:
        proc = start(tmp_path / "sites", "RV-Meteor", args=TIMEOUTS)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield proc
    finally:
        proc.stop()


def health(proc: SiteProcess) -> bool:
    return requests.get(proc.url + "/health", timeout=TIMEOUT).ok


@pytest.mark.timeout(HEAD_TIMEOUT + 90)
def test_slow_request_heads_lock_nobody_out(cramped: SiteProcess) -> None:
    slow = []
    try:
        for _ in range(SLOW):
            s = socket.create_connection(("127.0.0.1", cramped.port), timeout=TIMEOUT)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        assert health(cramped)  # past the soft limit the server started with
        deadline = time.monotonic() + HEAD_TIMEOUT + 30
        open_ = list(slow)
        while open_ and time.monotonic() < deadline:
            for s in list(open_):
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:  # closed by the server
                    open_.remove(s)
            assert health(cramped)
            time.sleep(2)
        for s in open_:  # a close the sender has not noticed yet reads as the end
            s.settimeout(5)
            try:
                assert s.recv(1024) == b"", "a slow connection is still open"
            except ConnectionResetError:
                pass
        log = cramped.log_path.read_text()
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    finally:
        for s in slow:
            s.close()


@pytest.mark.timeout(BODY_TIMEOUT + 90)
def test_a_body_sent_a_byte_at_a_time_is_408_after_its_time(tmp_path: Path) -> None:
    """No token needed to try it: /objects/missing reads its body open, as /login does."""
    site = start(tmp_path / "sites", "RV-Meteor", args=TIMEOUTS)
    slow = [socket.create_connection(("127.0.0.1", site.port), timeout=TIMEOUT) for _ in range(2)]
    try:
        for s, path in zip(slow, (b"/objects/missing", b"/login"), strict=True):
            s.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000\r\n\r\n{")
        start_at, answers = time.monotonic(), [b"", b""]
        while not all(answers) and time.monotonic() < start_at + BODY_TIMEOUT + 30:
            for i, s in enumerate(slow):
                if not answers[i]:
                    s.sendall(b" ")  # one byte every second or so: never idle, never done
                    s.setblocking(False)
                    try:
                        answers[i] = s.recv(4096)
                    except BlockingIOError:
                        pass
                    s.setblocking(True)
            assert health(site)
            time.sleep(1)
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
        assert time.monotonic() - start_at >= BODY_TIMEOUT - 5
        log = site.log_path.read_text()
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    finally:
        for s in slow:
            s.close()
        site.stop()
