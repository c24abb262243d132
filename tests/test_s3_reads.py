"""Reads of a file entry through a site server whose objects are on S3 (moto's server on
loopback): blocks are fetched several at once ahead of the one being sent, each checked
against its id, so the bytes served are the bytes published, a damaged object in the
bucket is never served, and a reader hanging up cancels the fetches under way."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import requests
from server_kit import InProcessHub, assert_error, damage, start, wait_for

import eurec4a_nt as nt
from eurec4a_nt.demokit.campaign import wait_until
from eurec4a_nt.demokit.sampledata import raw_file
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.entries import Entry
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.manifests import blocks_of, entry_ref
from eurec4a_nt.server.blocks import READ_AHEAD
from eurec4a_nt.server.context import NODE
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.testing.s3 import new_bucket

pytestmark = pytest.mark.timeout(180)

HUB = "MPI"


@pytest.fixture
def hub(aws: dict[str, str], s3_endpoint: str, tmp_path: Path) -> tuple[SiteStore, Entry, bytes]:
    """A site whose objects are in a fresh bucket, holding ``raw/big.bin`` (seeded
    incompressible bytes, so always the same 20 blocks or so); every AWS client of the test
    points at the moto server."""
    store = SiteStore.init(tmp_path / HUB, HUB, objects=f"s3://{new_bucket(s3_endpoint)}/mpi")
    path = raw_file(tmp_path / "big.bin", size=24 << 20, seed=8)
    data = path.read_bytes()
    entry = nt.publish(path, name="raw/big.bin", store=store.path, progress=False)
    assert isinstance(entry, Entry)
    return SiteStore(store.path), entry, data


def blocks(store: SiteStore, entry: Entry) -> list[tuple[ObjectId, int, int]]:
    found = blocks_of(entry_ref(entry), store.objects.get)
    assert len(found) > 10 and entry.size > READ_AHEAD, "the entry must span more than is read ahead"
    return found


def received(url: str, **headers: str) -> tuple[int, bytes]:
    """Status and whatever bytes arrived before the server ended the response."""
    got = bytearray()
    with requests.get(url, headers=headers, stream=True, timeout=30) as answer:
        try:
            for piece in answer.iter_content(1 << 16):
                got += piece
        except requests.exceptions.ChunkedEncodingError:  # ended short of its Content-Length
            pass
        return answer.status_code, bytes(got)


def test_an_entry_on_s3_is_served_whole_and_damage_is_refused(hub: tuple[SiteStore, Entry, bytes],
                                                              s3_endpoint: str) -> None:
    store, entry, data = hub
    found = blocks(store, entry)
    server = SiteProcess(store.path).start()
    try:
        url = f"{server.url}/data/{HUB}/raw/big.bin"
        assert received(url) == (200, data)
        # a range across several block boundaries, starting and ending inside blocks
        lo, hi = found[2][1] + 17, found[7][1] + 5
        assert received(url, Range=f"bytes={lo}-{hi - 1}") == (206, data[lo:hi])

        # a damaged block in the middle: everything before it is served, none of it
        oid, offset, _ = found[5]
        damage(store, s3_endpoint, oid)
        status, got = received(url)
        assert status == 200 and len(got) <= offset and got == data[:len(got)]
        # a read that starts in the damaged block is an error before the first byte
        answer = requests.get(url, headers={"Range": f"bytes={offset + 10}-"}, timeout=30)
        assert_error(answer, 422, "corrupt")
        assert oid.short in answer.json()["message"]
        # the blocks around it still read
        assert received(url, Range=f"bytes=0-{offset - 1}") == (206, data[:offset])
    finally:
        server.stop()


def test_a_reader_hanging_up_cancels_the_fetches_under_way(hub: tuple[SiteStore, Entry, bytes],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store, entry, data = hub
    found = blocks(store, entry)
    first = found[0]
    ahead = 1  # the blocks after the first that fit in the window
    while found[ahead][2] + sum(b[2] for b in found[1:ahead]) <= READ_AHEAD:
        ahead += 1
    ahead -= 1
    server = InProcessHub(store.path).start()
    objects = server.app[NODE].store.objects
    fetch = objects.fetch
    stalled: list[ObjectId] = []
    cancelled: list[ObjectId] = []

    async def stalling_fetch(oid: ObjectId) -> bytes:
        """The first block comes; every other stalls (as S3 may) until cancelled."""
        if oid != first[0]:
            stalled.append(oid)
            try:
                await asyncio.sleep(120)
            except asyncio.CancelledError:
                cancelled.append(oid)
                raise
        return await fetch(oid)

    async def read_aheads() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("read-ahead")]

    def running() -> list[str]:
        return asyncio.run_coroutine_threadsafe(read_aheads(), server.loop).result(10)

    monkeypatch.setattr(objects, "fetch", stalling_fetch)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as reader:
            reader.sendall(f"GET /data/{HUB}/raw/big.bin HTTP/1.1\r\nHost: hub\r\n\r\n".encode())
            got = b""
            while data[:first[2]] not in got:  # headers, then the first block
                piece = reader.recv(1 << 16)
                assert piece, "the server closed the connection early"
                got += piece
            wait_until(lambda: len(running()) == ahead, 10, "the blocks after the first asked for")
        # the reader hung up while the server waited for the second block
        wait_until(lambda: not running(), 10, "the fetches cancelled")
        assert sorted(cancelled) == sorted(stalled) and len(stalled) == ahead > 1
        assert requests.get(server.url + "/health", timeout=10).json()["ok"]
    finally:
        server.stop()


def test_blocks_the_hub_lacks_come_over_its_link_into_the_bucket(aws: dict[str, str], s3_endpoint: str,
                                                                 tmp_path: Path) -> None:
    """A hub on S3 reading through to a ship: each block it lacks is fetched over the
    link, kept in the bucket, and served from there."""
    sites = tmp_path / "sites"
    ship = start(sites, "RV-Meteor", sites=["RV-Meteor", HUB])
    hub = None
    try:
        path = raw_file(tmp_path / "radar.bin", size=6 << 20, seed=9)
        data = path.read_bytes()
        entry = nt.publish(path, name="raw/radar.bin", server=ship.url, token=ship.token, progress=False)
        assert isinstance(entry, Entry)
        store = SiteStore.init(sites / HUB, HUB, objects=f"s3://{new_bucket(s3_endpoint)}/mpi")
        hub = start(sites, HUB, args=["--upstream", ship.url])
        url = f"{hub.url}/data/RV-Meteor/raw/radar.bin"
        wait_for(lambda: requests.get(url, headers={"Range": "bytes=0-0"}, timeout=30).ok, 30,
                 "the ship's entry at the hub")
        assert received(url, Range="bytes=3000000-4999999") == (206, data[3_000_000:5_000_000])
        assert received(url) == (200, data)
        found = blocks_of(entry_ref(entry), SiteStore(store.path).objects.get)
        assert len(found) > 2 and all(SiteStore(store.path).objects.has(b[0]) for b in found)
    finally:
        for proc in (hub, ship):
            if proc is not None:
                proc.stop()
