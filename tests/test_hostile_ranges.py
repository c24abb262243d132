"""A hostile peer and verified parts of blocks, against a real hub (the test plays site
BCO): ranges asked beyond a block, of a block not held, too many at once, or by a peer
that did not say it takes them; answers nobody asked for, malformed ones (cut, unaligned,
beyond their block, too many proof hashes, a zstd bomb), and one with a wrong proof. Each
is refused or dropped with a log line; a reader never gets a byte that did not check,
and the hub stays up with its memory bounded."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import pytest
import requests
import xarray as xr
import zstandard
from server_kit import TIMEOUT, listed, start, state, wait_for
from test_hostile_link import Dialler, bco, log_since, weathers, zstd_bomb

import eurec4a_nt as nt
from eurec4a_nt import hashtree
from eurec4a_nt.chunking import Block, FileRecord, cut_bytes
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.entries import Entry
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.log import Change, make_commit
from eurec4a_nt.sitestore import SiteStore
from eurec4a_nt.sync.prover import MAX_ASKED_RANGES
from eurec4a_nt.sync.ranges import answer, read_answer
from eurec4a_nt.sync.wire import PIECE, RAW, Piece

Message = aiohttp.WSMessage


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SiteProcess, bytes, str]]:
    """The hub OPS holding a netCDF file of its own (its largest block and that block's
    tree root are given), in a campaign with RV-Meteor and BCO (played by the tests)."""
    root = tmp_path_factory.mktemp("hostile-ranges")
    proc = start(root / "sites", "OPS", sites=["OPS", "RV-Meteor", "BCO"])
    try:
        path = root / "held.nc"
        xr.Dataset({"v": (("t", "x"), np.random.default_rng(1).random((2000, 300)))}).to_netcdf(
            path, engine="h5netcdf")
        entry = nt.publish(path, name="held.nc", server=proc.url, token=proc.token, progress=False)
        store = SiteStore(root / "sites" / "OPS")
        block = max(FileRecord.from_bytes(store.objects.get(entry.root)).blocks, key=lambda b: b.length)
        yield proc, store.objects.get(block.id), str(block.tree)
        assert "Traceback" not in proc.log_path.read_text(), proc.log_path.read_text()[-3000:]
    finally:
        proc.stop()


async def next_message(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 10) -> Message | None:
    """The next message from the hub of ``kind`` (a control message's type, or a binary
    message's first letter), skipping others; None if none comes within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.BINARY and message.data[:1] == kind.encode():
                    return message
                if message.type == aiohttp.WSMsgType.TEXT and json.loads(message.data).get("type") == kind:
                    return message
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return None
    except TimeoutError:
        return None


@dataclass(frozen=True)
class BcoFile:
    """3 MiB of random bytes of BCO's (played by the tests): its file record, the record's
    id, and its first block with that block's bytes."""

    data: bytes
    record: bytes
    root: ObjectId
    block: Block
    content: bytes

    @classmethod
    def make(cls) -> BcoFile:
        data = os.urandom(3 << 20)
        cut = list(cut_bytes(data, trees=True))
        record = FileRecord(len(data), tuple(b for b, _ in cut)).to_bytes()
        block, content = cut[0]
        return cls(data, record, ObjectId.of(record), block, bytes(content))

    @property
    def start(self) -> int:
        """Where the tests read 1,000 bytes: the middle of the first block."""
        return self.block.length // 2

    def assert_only_right_served(self, damaged: requests.Response, good: requests.Response) -> None:
        """The read answered with a wrong proof failed with none of the bytes; the other
        got them."""
        wanted = self.data[self.start:self.start + 1000]
        assert damaged.status_code >= 400 and wanted not in damaged.content
        assert good.status_code == 206 and good.content == wanted


async def _wrong_then_right(ws: aiohttp.ClientWebSocketResponse, url: str, bco_file: BcoFile,
                            timeout: float) -> tuple[list[requests.Response], bool]:
    """Two reads at ``url`` of 1,000 bytes in the middle of ``bco_file``'s first block,
    each answered as the hub asks over ``ws`` (the file record the first time, then the
    leaves holding the bytes: right after the record if the hub's want asks for them
    along, and whenever it asks for them): the first with leaves whose proof is wrong,
    the second with leaves that check. Also whether the hub asked for the leaves along."""
    start, block = bco_file.start, bco_file.block
    run = hashtree.span(block.length, start, start + 1000)
    out, along = [], False
    for damaged in (True, False):
        message = bytearray(answer(block.id, bco_file.content, *run))
        if damaged:
            message[-5] ^= 0xFF
        reading = asyncio.create_task(asyncio.to_thread(
            requests.get, url, headers={"Range": f"bytes={start}-{start + 999}"}, timeout=TIMEOUT))
        answered = False
        if damaged:
            want = await next_message(ws, "want", timeout=timeout)
            assert want is not None
            along = json.loads(want.data).get("leaves", False)
            record = bco_file.record
            await ws.send_bytes(Piece(bco_file.root, RAW, None, 0, len(record), record).pack())
            if along:
                await ws.send_bytes(bytes(message))
                answered = True
        while not reading.done():  # a reader coming after leaves were dropped asks again
            asked = await next_message(ws, "ranges", timeout=0.2)
            if asked is not None:
                (oid, first, last), = json.loads(asked.data)["ranges"]
                assert (oid, first, last) == (block.id, *run)
                await ws.send_bytes(bytes(message))
                answered = True
        assert answered
        out.append(await reading)
    await ws.close()
    return out, along


def ranges(*items: list[Any]) -> str:
    return json.dumps({"type": "ranges", "ranges": list(items)})


@pytest.mark.timeout(120)
def test_ranges_a_peer_asks_for(hub: tuple[SiteProcess, bytes, str]) -> None:
    """A range of a block held is answered with leaves that check against its tree root;
    one beyond the block, or of a block not held, with a lack; too many ranges, an empty
    one, or any from a peer that did not say it takes ranges, with nothing."""
    proc, block, tree = hub
    oid = ObjectId.of(block)
    before = proc.log_path.read_text()

    async def run() -> None:
        dialler = Dialler(proc)
        async with dialler.session() as http:
            ws, _ = await dialler.open(http)
            await ws.send_str(ranges([oid, 20000, 21000]))
            got = await next_message(ws, "R")
            assert got is not None
            part = read_answer(got.data)
            assert (part.oid, part.size, part.first, part.last) == (oid, len(block), 16384, 32768)
            hashtree.verify(part.data, part.size, part.first, part.proof, tree)
            for asked in ([oid, 0, len(block) + 1], [ObjectId.of(b"not held"), 0, 10]):
                await ws.send_str(ranges(asked))
                lack = await next_message(ws, "lack")
                assert lack is not None and json.loads(lack.data)["ids"] == [asked[0]]
            for junk in (ranges(*[[oid, 0, 10]] * 65), ranges([oid, 10, 10]), ranges([oid, -1, 10]),
                         json.dumps({"type": "ranges", "ranges": []})):
                await ws.send_str(junk)
            assert await next_message(ws, "R", timeout=2) is None
            await ws.close()
            ws, _ = await dialler.open(http, takes="checkpoints tickets batches refusals")  # an older peer
            await ws.send_str(ranges([oid, 20000, 21000]))
            assert await next_message(ws, "R", timeout=2) is None and not ws.closed
            await ws.close()

    asyncio.run(run())
    added = log_since(proc, before)
    assert added.count("ignoring a malformed") == 5, added
    assert f"of block {oid.short} of {len(block)} bytes: refused" in added, added
    assert "ERROR" not in added, added


def bad_answers(oid: ObjectId, block: bytes) -> list[bytes]:
    """Range answers malformed in each way the receiver checks."""
    good = answer(oid, block, 20000, 21000)
    head = b"R\x00" + bytes.fromhex(oid)
    return [good[:20], b"R\x07" + good[2:], head + b"\x80\x80",  # cut
            head + b"\x80\x80\x40\x10\x80\x80\x01\x00",  # unaligned
            head + b"\x80\x80\x01\x00\x80\x80\x02\x00",  # beyond its block
            head + b"\x80\x80\x40\x00\x80\x80\x01\xc8" + os.urandom(64),  # 200 proof hashes
            b"R\x01" + good[2:34] + b"\x80\x80\x40\x00\x80\x80\x01\x00" + zstd_bomb(64 << 20),
            b"R\x01" + good[2:34] + b"\x80\x80\x40\x00\x80\x01\x00" + zstandard.ZstdCompressor().compress(
                bytes(PIECE))]  # decompresses to more than it says


@pytest.mark.timeout(120)
def test_answers_a_peer_should_not_send(hub: tuple[SiteProcess, bytes, str]) -> None:
    """Malformed answers, and a well-formed one nobody asked for, are dropped with a log
    line each; the hub stores nothing, stays up and under 200 MB, the session goes on."""
    proc, block, _ = hub
    before_state, before = state(proc), proc.log_path.read_text()
    other = os.urandom(1 << 20)

    async def run() -> None:
        dialler = Dialler(proc)
        async with dialler.session() as http:
            ws, _ = await dialler.open(http)
            for junk in [*bad_answers(ObjectId.of(block), block), answer(ObjectId.of(other), other, 0, 5000)]:
                await ws.send_bytes(junk)
            await asyncio.sleep(2)
            assert not ws.closed
            await ws.close()

    added = weathers(proc, run, before)
    assert state(proc) == before_state
    assert "not asked for" in added and added.count("BCO (dialled in): ") == 9, added


@pytest.mark.timeout(120)
def test_leaves_with_a_wrong_proof_are_never_served(hub: tuple[SiteProcess, bytes, str]) -> None:
    """A reader at the hub reads an entry of BCO's: the hub asks BCO for the record and
    the leaves the read needs along. Leaves with a wrong proof fail the read (no byte of
    them is served); asked again, leaves that check are served."""
    proc, _, _ = hub
    bco_file = BcoFile.make()
    entry = Entry("sonde.nc", "file", bco_file.root, len(bco_file.data), "netcdf")
    commit = make_commit(bco(proc).key, "BCO", 1, None, [Change("put", entry.name, entry)])

    async def run() -> tuple[list[requests.Response], bool]:
        dialler = Dialler(proc)
        async with dialler.session() as http:
            ws, _ = await dialler.open(http)
            await ws.send_str(json.dumps({"type": "commits", "raws": [commit.raw.decode()]}))
            assert await next_message(ws, "heads") is not None
            return await _wrong_then_right(ws, f"{proc.url}/data/BCO/sonde.nc", bco_file, timeout=10)

    before = proc.log_path.read_text()
    served, along = asyncio.run(run())
    bco_file.assert_only_right_served(*served)
    assert along  # its reader is here: the leaves come with the record
    assert "does not match the block's tree root" in log_since(proc, before)


@pytest.mark.timeout(120)
def test_ranges_beyond_what_may_wait_are_refused(hub: tuple[SiteProcess, bytes, str]) -> None:
    """A peer asking for far more ranges than it acknowledges answers to: those beyond
    :data:`~eurec4a_nt.sync.prover.MAX_ASKED_RANGES` waiting are refused with a lack
    and a log line; the hub stays up with its memory bounded."""
    proc, block, _ = hub
    oid = ObjectId.of(block)
    before = proc.log_path.read_text()

    async def run() -> None:
        dialler = Dialler(proc)
        async with dialler.session() as http:
            ws, _ = await dialler.open(http)
            for _ in range(MAX_ASKED_RANGES // 64 + 2):
                await ws.send_str(ranges(*[[oid, 0, 1000]] * 64))
            lack = await next_message(ws, "lack")
            assert lack is not None and json.loads(lack.data)["ids"] == [oid]
            await ws.close()

    added = weathers(proc, run, before)
    assert "ranges asked beyond 1024 waiting: refused" in added, added


@pytest.mark.timeout(180)
def test_leaves_relayed_by_the_hub_are_checked_there_first(hub: tuple[SiteProcess, bytes, str],
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    """A reader at RV-Meteor (a real server linked to the hub) reads an entry of BCO's
    through the hub: RV-Meteor asks the hub for the leaves, naming the file record; the
    hub, lacking the block, asks BCO for them and checks them against the tree root in
    the record it holds before passing anything on. Leaves with a wrong proof never leave
    the hub (the read fails); leaves that check reach the reader, verified again there."""
    proc, _, _ = hub
    bco_file = BcoFile.make()
    entry = Entry("relayed.nc", "file", bco_file.root, len(bco_file.data), "netcdf")
    last = ([None, *SiteStore(proc.store).log("BCO")])[-1]  # after the commits of other tests, if any
    commit = make_commit(bco(proc).key, "BCO", last.seq + 1 if last else 1, last.id if last else None,
                         [Change("put", entry.name, entry)])
    ship = start(proc.store.parent, "RV-Meteor", args=["--upstream", proc.url])

    async def run() -> tuple[list[requests.Response], bool]:
        dialler = Dialler(proc)
        async with dialler.session() as http:
            ws, _ = await dialler.open(http)
            await ws.send_str(json.dumps({"type": "commits", "raws": [commit.raw.decode()]}))
            await asyncio.to_thread(wait_for, lambda: any(e["name"] == entry.name for e in listed(ship.url, "BCO")),
                                    30, "BCO's entry at RV-Meteor")
            return await _wrong_then_right(ws, f"{ship.url}/data/BCO/relayed.nc", bco_file, timeout=30)

    before = proc.log_path.read_text()
    try:
        served, along = asyncio.run(run())
        bco_file.assert_only_right_served(*served)
        assert not along  # its reader is at RV-Meteor: the hub asks for the leaves it relays
        assert "does not match the block's tree root" in log_since(proc, before)
        assert "does not match" not in ship.log_path.read_text()  # nothing damaged got past the hub
        assert not SiteStore(proc.store).objects.has(bco_file.block.id)  # only its leaves crossed, not the block
    finally:
        ship.stop()


#: What BCO does once the forger's reader waits (see :meth:`Forgery.play`).
Script = Callable[[aiohttp.ClientWebSocketResponse, "asyncio.Task[requests.Response]"],
                  Awaitable[tuple[requests.Response, requests.Response]]]


@dataclass(frozen=True)
class Forgery:
    """A file of BCO's, its entry committed as ``name``, and a forged file record naming its
    first block with a made-up tree root, with leaves made to fit that root."""

    bco_file: BcoFile
    name: str
    commit: Any
    forged: bytes
    fitted: bytes

    @classmethod
    def make(cls, proc: SiteProcess, name: str) -> Forgery:
        bco_file = BcoFile.make()
        block = bco_file.block
        fitted = os.urandom(block.length)  # the forger's "block": leaves that fit its own root
        forged = FileRecord(block.length, (Block(block.id, 0, block.length, hashtree.root(fitted)),)).to_bytes()
        last = ([None, *SiteStore(proc.store).log("BCO")])[-1]  # after the commits of other tests, if any
        entry = Entry(name, "file", bco_file.root, len(bco_file.data), "netcdf")
        commit = make_commit(bco(proc).key, "BCO", last.seq + 1 if last else 1, last.id if last else None,
                             [Change("put", entry.name, entry)])
        return cls(bco_file, name, commit, forged, fitted)

    @property
    def run(self) -> tuple[int, int]:
        """The leaves both readers read."""
        return hashtree.span(self.bco_file.block.length, self.bco_file.start, self.bco_file.start + 1000)

    def get(self, url: str, **params: str) -> requests.Response:
        start = self.bco_file.start
        return requests.get(url, params=params, headers={"Range": f"bytes={start}-{start + 999}"}, timeout=TIMEOUT)

    async def begin(self, ws: aiohttp.ClientWebSocketResponse, proc: SiteProcess) -> asyncio.Task[requests.Response]:
        """As BCO over ``ws``: commit the entry, then start an HTTP reader asking the hub for
        the leaves by the forged record, from BCO; send the hub that record and return
        once it asks for the leaves (the answer is left to the test)."""
        await ws.send_str(json.dumps({"type": "commits", "raws": [self.commit.raw.decode()]}))
        assert await next_message(ws, "heads") is not None
        forger = asyncio.create_task(asyncio.to_thread(self.get, f"{proc.url}/objects/{self.bco_file.block.id}",
                                                       proof="1", record=ObjectId.of(self.forged), site="BCO"))
        assert await next_message(ws, "want") is not None
        await self.send_record(ws, self.forged)
        assert await next_message(ws, "ranges") is not None
        return forger

    def play(self, proc: SiteProcess, script: Script) -> tuple[requests.Response, requests.Response]:
        """Play BCO: dial the hub, :meth:`begin`, then ``script(ws, forger)``; the answers
        to the forger's reader and to the true one, as the script gives them."""
        async def main() -> tuple[requests.Response, requests.Response]:
            dialler = Dialler(proc)
            async with dialler.session() as http:
                ws, _ = await dialler.open(http)
                try:
                    return await script(ws, await self.begin(ws, proc))
                finally:
                    await ws.close()

        return asyncio.run(main())

    def read_true(self, proc: SiteProcess) -> asyncio.Task[requests.Response]:
        """A reader at the hub reading the same bytes of the true entry."""
        return asyncio.create_task(asyncio.to_thread(self.get, f"{proc.url}/data/BCO/{self.name}"))

    async def send_record(self, ws: aiohttp.ClientWebSocketResponse, record: bytes) -> None:
        await ws.send_bytes(Piece(ObjectId.of(record), RAW, None, 0, len(record), record).pack())

    async def send_leaves(self, ws: aiohttp.ClientWebSocketResponse, true: bool) -> None:
        content = self.bco_file.content if true else self.fitted
        await ws.send_bytes(answer(self.bco_file.block.id, content, *self.run))


@pytest.mark.timeout(120)
def test_leaves_fitted_to_a_forged_record_never_reach_a_reader_of_the_true_one(
        hub: tuple[SiteProcess, bytes, str]) -> None:
    """A forged file record names a real block with a made-up tree root; an HTTP reader
    asks the hub for leaves of that block by the forged record, and BCO sends leaves made
    to fit it: they check, and that reader gets them. Then a reader at the hub reads the
    same bytes of BCO's true entry: it waits for the leaves that check against the true
    root, and never gets the forged ones the hub holds."""
    proc, _, _ = hub
    forgery = Forgery.make(proc, "true.nc")

    async def script(ws: aiohttp.ClientWebSocketResponse,
                     forger: asyncio.Task[requests.Response]) -> tuple[requests.Response, requests.Response]:
        await forgery.send_leaves(ws, true=False)
        took_forged = await forger
        reading = forgery.read_true(proc)
        assert await next_message(ws, "want") is not None
        await forgery.send_record(ws, forgery.bco_file.record)
        await asyncio.sleep(1)  # long enough for the hub to serve what it holds of that run
        await forgery.send_leaves(ws, true=True)
        return took_forged, await reading

    took_forged, got = forgery.play(proc, script)
    start = forgery.bco_file.start
    assert took_forged.status_code == 206  # the forger's own reader gets what fits its record
    assert got.status_code == 206 and got.content == forgery.bco_file.data[start:start + 1000]


@pytest.mark.timeout(120)
def test_a_forger_asking_for_the_same_leaves_at_once_fails_no_true_read(hub: tuple[SiteProcess, bytes, str]) -> None:
    """The forger's ask for leaves of a real block by its forged root is still unanswered
    when a reader at the hub reads the same bytes of BCO's true entry: the two asks are
    answered each on its own (true leaves do not fail the forger's, nor fitted ones the
    true one), and each reader gets the bytes that check against its own root."""
    proc, _, _ = hub
    forgery = Forgery.make(proc, "both.nc")

    async def script(ws: aiohttp.ClientWebSocketResponse,
                     forger: asyncio.Task[requests.Response]) -> tuple[requests.Response, requests.Response]:
        reading = forgery.read_true(proc)  # the forger's ask left unanswered for now
        want = await next_message(ws, "want")
        assert want is not None and json.loads(want.data).get("leaves")
        await forgery.send_record(ws, forgery.bco_file.record)
        await forgery.send_leaves(ws, true=True)  # the leaves along
        got = await reading
        await forgery.send_leaves(ws, true=False)  # the forger's answer
        return await forger, got

    took_forged, got = forgery.play(proc, script)
    start = forgery.bco_file.start
    assert got.status_code == 206 and got.content == forgery.bco_file.data[start:start + 1000]
    assert took_forged.status_code == 206
