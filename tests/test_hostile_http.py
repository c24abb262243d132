"""Hostile HTTP against a real server: strange headers, deep and huge JSON, malformed
requests, published HTML. Each is answered 4xx (never 5xx), leaves no traceback in the
log, stores nothing, and the server stays up with a clean fsck."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, assert_consistent, auth, raw, start, start_with_sonde, state

import eurec4a_nt
from eurec4a_nt.demokit.sites import SiteProcess, make_sites
from eurec4a_nt.server.blocks import _send_file

DEEP = 100_000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """RV-Meteor with a file entry, an HTML entry and a directory holding HTML; checked at the end."""
    root = tmp_path_factory.mktemp("hostile-http")
    proc = start_with_sonde(root, 20_000)
    page = root / "page.html"
    page.write_text("<script>fetch('/api/status').then(r => r.text()).then(alert)</script>")
    folder = root / "blog"
    (folder / "img").mkdir(parents=True)
    (folder / "index.html").write_text("<script>document.cookie</script>")
    (folder / "img" / "x.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>')
    for path, name in ((page, "page.html"), (folder, "blog")):
        eurec4a_nt.publish(path, name=name, server=proc.url, token=proc.token, progress=False)
    try:
        yield proc
        assert_unharmed(proc)
    finally:
        proc.stop()


def assert_unharmed(proc: SiteProcess) -> None:
    """Consistent (fsck clean, index matching the store), and no 500, ERROR or traceback in the log."""
    assert_consistent(proc)
    log = proc.log_path.read_text()
    for bad in ("Traceback", "ERROR"):
        assert bad not in log, log[-3000:]


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def assert_refused(r: requests.Response, *codes: int) -> None:
    assert 400 <= r.status_code < 500 and (not codes or r.status_code in codes), (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert set(r.json()) >= {"error", "message"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", [
    "bytes=" + "9" * 5000 + "-",
    "bytes=0-" + "9" * 5000,
    "bytes=-" + "9" * 100,
    "bytes=\u0663-\u0665",  # Arabic-Indic digits
    "bytes=1-2,3-4",
    "bytes=" + "1" * 19 + "-",
])
def test_range_headers_are_parsed_strictly(site: SiteProcess, value: str) -> None:
    r = requests.get(f"{site.url}/data/RV-Meteor/sondes/sonde.nc", headers={"Range": value.encode()},
                     timeout=TIMEOUT)
    assert_refused(r, 400, 416)
    assert r.status_code == 416 or "one 'bytes=start-end' range (numbers of at most 18 digits)" in r.json()["message"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("host", [b"[::1", b"a b", b"x:99999", b"a:b:c", b"foo/bar", b"", b"\xff\xfe"])
@pytest.mark.parametrize("path", [b"/catalog.yaml", b"/sites/RV-Meteor/catalog.yaml"])
def test_malformed_host_headers_are_400(site: SiteProcess, host: bytes, path: bytes) -> None:
    answer = raw(site, b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 400, answer[:300]
    assert b"http://" + host + b"/" not in answer or not host


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("path", "body"), [
    ("/objects/batch", b"[" * DEEP + b"]" * DEEP),
    ("/objects/missing", b'{"ids": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    ("/api/commit", b'{"changes": [{"op": "put", "name": "x", "entry": {"metadata": '
     + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}}]}"),
    ("/api/prefetch", b'{"topics": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    ("/objects/batch", b'{"ids": [], "site": NaN}'),
    ("/objects/batch", b'{"ids": ["' + b"a" * 64 + b'"], "extra": 1}'),
    ("/objects/batch", b'{"ids": ' + str(["ab" * 32] * 20_000).replace("'", '"').encode() + b"}"),
    ("/api/prefetch", b'{"topics": "sondes"}'),
    ("/api/prefetch", b'{"topics": [1]}'),
    ("/api/prefetch", b'{"names": [null]}'),
    ("/api/prefetch", b'{"sites": {"a": 1}}'),
    ("/api/prefetch", b'{"topics": ["sondes"], "names": [' + b'"x",' * 1000 + b'"x"]}'),
    ("/api/prefetch", b'{"names": ["../*"]}'),
    ("/api/prefetch", b'{"names": ["/etc/*"]}'),
    ("/api/prefetch", b'{"names": ["RV-Meteor//sondes/*"]}'),
    ("/api/prefetch", b'{"names": ["RV-Meteor/sondes/*.nc\\u0000"]}'),
])
def test_deep_strange_and_huge_json_is_400(site: SiteProcess, path: str, body: bytes) -> None:
    before = state(site)
    r = requests.post(site.url + path, data=body, timeout=TIMEOUT,
                      headers={**auth(site), "Content-Type": "application/json"})
    assert_refused(r, 400)
    assert state(site) == before


ENTRY = {"name": "x.bin", "kind": "file", "root": "ab" * 32, "size": 5, "format": "binary"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("entry", [
    {**ENTRY, "size": "Infinity"},
    {**ENTRY, "size": 1e400},
    {**ENTRY, "size": 10**30},
    {**ENTRY, "size": -1},
    {**ENTRY, "size": True},
    {**ENTRY, "size": 5.0},
    {**ENTRY, "topics": "sondes"},
    {**ENTRY, "metadata": []},
    {**ENTRY, "kind": "socket"},
    {**ENTRY, "root": "AB" * 32},
])
def test_wrong_types_and_numbers_in_a_commit_are_400(site: SiteProcess, entry: dict) -> None:
    before = state(site)
    body = {"changes": [{"op": "put", "name": "x.bin", "entry": entry}]}
    text = requests.models.complexjson.dumps(body).replace('"Infinity"', "Infinity")
    r = requests.post(site.url + "/api/commit", data=text, headers=auth(site), timeout=TIMEOUT)
    assert_refused(r, 400)
    assert state(site) == before


@pytest.mark.timeout(30)
def test_infinity_and_nan_literals_are_400(site: SiteProcess) -> None:
    for literal in (b"Infinity", b"-Infinity", b"NaN", b"1e999"):
        body = b'{"changes": [{"op": "put", "name": "x.bin", "entry": {"name": "x.bin", "kind": "file", "root": "' \
            + b"ab" * 32 + b'", "size": 5, "format": "x", "metadata": {"v": ' + literal + b"}}}]}"
        assert_refused(requests.post(site.url + "/api/commit", data=body, headers=auth(site), timeout=TIMEOUT), 400)


@pytest.mark.timeout(30)
def test_an_over_long_frame_header_is_400(site: SiteProcess) -> None:
    before = state(site)
    for body in (b"a" * 200_000 + b" 5\nhello", b"a" * 64 + b" " + b"9" * 5000 + b"\n", b"\xff" * 90 + b"\n"):
        r = requests.post(site.url + "/objects", data=body, headers=auth(site), timeout=TIMEOUT)
        assert_refused(r, 400, 413)
    assert state(site) == before


@pytest.mark.timeout(30)
@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_malformed_requests_are_400_and_one_log_line(site: SiteProcess, request_bytes: bytes) -> None:
    before = site.log_path.read_text()
    answer = raw(site, request_bytes)
    assert status_of(answer) in (0, 400, 413, 414, 431), answer[:300]
    added = site.log_path.read_text()[len(before):]
    assert "Traceback" not in added and "ERROR" not in added, added
    assert len(added.strip().splitlines()) <= 1, added


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("path", "sandboxed"), [
    ("/data/RV-Meteor/page.html", True),
    ("/data/RV-Meteor/blog/index.html", True),
    ("/data/RV-Meteor/blog/img/x.svg", True),
    ("/data/RV-Meteor/blog", True),
    ("/data/RV-Meteor/sondes/sonde.nc", True),
])
def test_published_pages_run_sandboxed(site: SiteProcess, path: str, sandboxed: bool) -> None:
    r = requests.get(site.url + path, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert (r.headers.get("Content-Security-Policy") == "sandbox") is sandboxed
    root = requests.get(f"{site.url}/api/sites/RV-Meteor/entries", timeout=TIMEOUT).json()["entries"][0]["root"]
    r = requests.get(f"{site.url}/objects/{root}", timeout=TIMEOUT)
    assert r.headers["Content-Security-Policy"] == "sandbox" and r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.timeout(60)
def test_what_a_killed_publish_left_in_tmp_is_removed_at_start(tmp_path: Path) -> None:
    make_sites(tmp_path / "sites", ["BCO"])
    tmp = tmp_path / "sites" / "BCO" / "tmp"
    tmp.mkdir(exist_ok=True)
    old = time.time() - 2 * 3600
    stale_file, stale_dir, fresh = tmp / "ab.1234", tmp / "dataset-x1", tmp / "cd.5678"
    stale_file.write_bytes(b"half an object")
    (stale_dir / "data.zarr").mkdir(parents=True)
    (stale_dir / "data.zarr" / "chunk").write_bytes(b"x")
    fresh.write_bytes(b"a write going on now")
    for path in (stale_file, stale_dir / "data.zarr" / "chunk", stale_dir / "data.zarr", stale_dir):
        os.utime(path, (old, old))
    proc = start(tmp_path / "sites", "BCO")
    try:
        assert not stale_file.exists() and not stale_dir.exists() and fresh.exists()
    finally:
        proc.stop()


def hang_up(proc: SiteProcess, head: bytes, body: bytes = b"", read: int = 0) -> None:
    """Send a request head and part of a body, read ``read`` bytes of the answer, then
    reset the connection (a reader or uploader gone mid-request)."""
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(head + body)
        if read:
            s.recv(read)
        else:
            time.sleep(0.2)  # the server is reading the body
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.timeout(30)
def test_a_reader_reset_while_a_block_is_sent_is_a_reader_gone(tmp_path: Path) -> None:
    """A reset in the middle of ``sendfile`` (the socket's error, not asyncio's "Transport
    is closing") is the reader gone, with its connection closed: the server logs it as
    one line, not as a bug."""
    async def main() -> tuple[BaseException | None, bool]:
        loop = asyncio.get_running_loop()
        connected: asyncio.Future[asyncio.Transport] = loop.create_future()

        class Accept(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                connected.set_result(transport)  # type: ignore[arg-type]

        server = await loop.create_server(Accept, "127.0.0.1", 0)
        reader = socket.create_connection(server.sockets[0].getsockname()[:2])
        transport = await connected
        with (tmp_path / "block").open("w+b") as file:
            file.truncate(64 << 20)
            sending = asyncio.ensure_future(_send_file(loop, transport, file, 0, 64 << 20))
            await asyncio.sleep(0.2)  # the buffers are full: sendfile waits for the reader
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            reader.close()
            error = (await asyncio.gather(sending, return_exceptions=True))[0]
        server.close()
        return error, transport.is_closing()

    error, closed = asyncio.run(main())
    assert isinstance(error, ConnectionResetError) and str(error) == "the reader hung up" and closed


@pytest.mark.timeout(60)
def test_clients_that_hang_up_mid_request_leave_one_line_each(tmp_path: Path) -> None:
    proc = start_with_sonde(tmp_path, 8 << 20)
    try:
        block = requests.get(f"{proc.url}/objects/" + requests.get(
            f"{proc.url}/api/sites/RV-Meteor/entries/sondes/sonde.nc", timeout=TIMEOUT).json()["entry"]["root"],
            timeout=TIMEOUT).json()
        before, objects = proc.log_path.read_text(), state(proc)
        token = f"Authorization: Bearer {proc.token}\r\n".encode()
        for path in ("/data/RV-Meteor/sondes/sonde.nc", f"/objects/{block['blocks'][0][0]}"):
            hang_up(proc, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n", read=100)
        hang_up(proc, b"PUT /objects/" + b"0" * 64 + b" HTTP/1.1\r\nHost: x\r\n" + token
                + b"Content-Length: 1000000\r\n\r\n", b"x" * 1000)
        hang_up(proc, b"POST /objects HTTP/1.1\r\nHost: x\r\n" + token + b"Content-Length: 1000000\r\n\r\n",
                b"0" * 64 + b" 999000\n" + b"x" * 1000)
        time.sleep(1)
        assert requests.get(proc.url + "/health", timeout=TIMEOUT).ok and state(proc) == objects
        added = proc.log_path.read_text()[len(before):]
        assert "Traceback" not in added and "ERROR" not in added, added
        lines = added.strip().splitlines()  # a request lost before it was read leaves none
        assert len(lines) <= 4 and all("the client went away" in line for line in lines), added
    finally:
        proc.stop()
