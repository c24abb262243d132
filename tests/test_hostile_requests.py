"""Hostile requests against a real server that once got past the boundary: query numbers
out of range, compressed and undecodable bodies, floods of commits, absurd purge rules.
Each is answered 4xx with a JSON error, leaves no traceback and at most a few log lines,
changes nothing, and the server stays up with a clean fsck."""

from __future__ import annotations

import gzip
import os
import socket
import time
import zlib
from collections.abc import Iterator

import pytest
import requests
from server_kit import TIMEOUT, assert_consistent, auth, start, state

import eurec4a_nt
from eurec4a_nt.demokit.sites import SiteProcess


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """RV-Meteor with one file entry, in a campaign with BCO; checked at the end."""
    root = tmp_path_factory.mktemp("hostile-requests")
    proc = start(root / "sites", "RV-Meteor", sites=["RV-Meteor", "BCO"])
    data = root / "sonde.nc"
    data.write_bytes(os.urandom(20_000))
    eurec4a_nt.publish(data, name="sondes/sonde.nc", server=proc.url, token=proc.token, progress=False)
    try:
        yield proc
        assert_consistent(proc)
        log = proc.log_path.read_text()
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    finally:
        proc.stop()


def assert_refused(r: requests.Response, *codes: int) -> None:
    assert r.status_code in codes, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert set(r.json()) >= {"error", "message"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("query", [
    {"limit": "1e300"}, {"limit": "1" * 50}, {"limit": "0"}, {"limit": "10001"}, {"limit": "nan"},
    {"after": "1e300"}, {"after": "9" * 30}, {"after": "-1"}, {"after": "1.5"}, {"after": "\u0663"},
])
def test_log_reads_take_whole_numbers_in_range(site: SiteProcess, query: dict[str, str]) -> None:
    assert_refused(requests.get(site.url + "/logs/RV-Meteor", params=query, timeout=TIMEOUT), 400)


@pytest.mark.timeout(30)
def test_log_reads_in_range_work(site: SiteProcess) -> None:
    r = requests.get(site.url + "/logs/RV-Meteor", params={"after": "0", "limit": "10000"}, timeout=TIMEOUT)
    assert r.status_code == 200 and len(r.content.splitlines()) == 1
    r = requests.get(site.url + "/logs/RV-Meteor", params={"after": str(1 << 53)}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == b""


BOMB = zlib.compress(b" " * (64 << 20), 9)
BODIES = {"gzip": gzip.compress(b'{"ids": []}'), "deflate": BOMB, "br": b"\x0b\x02\x80{}\x03",
          "zstd": b"\x28\xb5\x2f\xfd", "gzip, gzip": b"\x1f\x8b" + bytes(range(128, 192))}
POSTS = ["/objects", "/objects/missing", "/objects/batch", "/objects/urls", "/api/commit", "/api/prefetch",
         "/api/purge", "/logs", "/objects/" + "ab" * 32]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("encoding", BODIES)
@pytest.mark.parametrize("path", POSTS)
def test_compressed_bodies_are_taken_as_sent(site: SiteProcess, path: str, encoding: str) -> None:
    """No body is decompressed (no bomb): compressed bytes are what they are, a
    malformed body, with or without a token."""
    before, log_before = state(site), site.log_path.read_text()
    method = "PUT" if path.startswith("/objects/") else "POST"
    for headers in (auth(site), {}):
        r = requests.request(method, site.url + path, data=BODIES[encoding], timeout=TIMEOUT,
                             headers={**headers, "Content-Encoding": encoding, "Content-Type": "application/json"})
        assert_refused(r, 400, 401, 409, 422)
    assert state(site) == before
    added = site.log_path.read_text()[len(log_before):]
    assert "Traceback" not in added and len(added.strip().splitlines()) <= 2, added


@pytest.mark.timeout(60)
@pytest.mark.parametrize("body", [b"{" * (1 << 20), b"a" * (8 << 20) + b"\n"])
def test_an_endless_line_in_an_upload_is_400(site: SiteProcess, body: bytes) -> None:
    before = state(site)
    assert_refused(requests.post(site.url + "/objects", data=body, headers=auth(site), timeout=TIMEOUT), 400)
    assert state(site) == before


@pytest.mark.timeout(60)
def test_a_broken_chunked_body_after_an_answer_is_one_line(site: SiteProcess) -> None:
    """A body the server drains after answering (401: no token) and that breaks the
    chunked encoding: no traceback, the server goes on."""
    log_before = site.log_path.read_text()
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall(b"POST /objects HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 401")
        s.sendall(b"zz\r\n\r\n")
        time.sleep(0.5)
    added = site.log_path.read_text()[len(log_before):]
    assert "Traceback" not in added and len(added.strip().splitlines()) <= 1, added
    assert requests.get(site.url + "/health", timeout=TIMEOUT).ok


@pytest.mark.timeout(30)
@pytest.mark.parametrize("body", [b'{"keep_days": 1e300}', b'{"keep_days": 36501}', b'{"keep_days": NaN}',
                                  b'{"keep": -1}', b'{"keep": "all"}', b'{"dry_run": 1}'])
def test_an_absurd_purge_rule_is_400(site: SiteProcess, body: bytes) -> None:
    before = state(site)
    assert_refused(requests.post(site.url + "/api/purge", data=body, headers=auth(site), timeout=TIMEOUT), 400)
    assert state(site) == before


@pytest.mark.timeout(60)
def test_a_flood_of_commits_is_bounded_and_logged_in_a_few_lines(site: SiteProcess) -> None:
    before, log_before = state(site), site.log_path.read_text()
    r = requests.post(site.url + "/logs", data=b"{}\n" * 10_001, headers=auth(site), timeout=TIMEOUT)
    assert_refused(r, 413)
    r = requests.post(site.url + "/logs", data=b'{"site": "BCO"}\n' * 10_000, headers=auth(site), timeout=TIMEOUT)
    assert_refused(r, 409)
    assert state(site) == before
    added = site.log_path.read_text()[len(log_before):]
    assert "Traceback" not in added and len(added.strip().splitlines()) <= 6, added[:3000]
