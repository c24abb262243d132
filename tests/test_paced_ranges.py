"""Answers to ranges go the paced way pieces go: ahead of bulk, as urgent as a read, and
counted in flight until the peer acknowledges them. A session sends over a simulated slow
link (no sockets) while a bulk object is in flight; then over a real one, a reader at the
hub reads a few values of a netCDF entry at the ship while a bulk push crosses the
emulated satellite link."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import requests
from aiohttp import WSMessage, WSMsgType
from server_kit import TIMEOUT, publish_spectra

import eurec4a_nt as nt
from eurec4a_nt.demokit import sampledata
from eurec4a_nt.demokit.campaign import Campaign, Remote, wait_until
from eurec4a_nt.demokit.emulator import LinkProfile
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.stores.local import LocalStore
from eurec4a_nt.sync.core import Peer
from eurec4a_nt.sync.outbox import Priority
from eurec4a_nt.sync.partials import Partials
from eurec4a_nt.sync.ranges import answer
from eurec4a_nt.sync.session import Session
from eurec4a_nt.sync.wire import ack

RATE, DELAY = 500_000, 0.05  # bytes/s and seconds one way


class SlowLink:
    """The far side of a link of :data:`RATE` and :data:`DELAY` each way: what the session
    sends crosses it in order, and pieces and range answers are acknowledged as they
    arrive, as a site does. Keeps the most bytes ever sent and not yet acknowledged."""

    closed = False

    def __init__(self) -> None:
        self.acks: asyncio.Queue[int | None] = asyncio.Queue()
        self.free = 0.0  # when the link is done with what it was given
        self.sent = self.acked = self.peak = 0
        self.arrived: dict[bytes, float] = {}  # range answers by their first bytes: when each arrived

    async def send_bytes(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.free = max(loop.time(), self.free) + len(data) / RATE
        if data[:1] == b"A":
            return
        self.sent += len(data)
        self.peak = max(self.peak, self.sent - self.acked)
        if data[:1] == b"R":
            self.arrived[data[:80]] = self.free + DELAY
        total = self.sent
        loop.call_at(self.free + 2 * DELAY, self._ack, total)

    def _ack(self, total: int) -> None:
        self.acked = total
        self.acks.put_nowait(total)

    async def send_str(self, text: str) -> None:
        pass

    def __aiter__(self) -> SlowLink:
        return self

    async def __anext__(self) -> WSMessage:
        total = await self.acks.get()
        if total is None:
            raise StopAsyncIteration
        return WSMessage(WSMsgType.BINARY, ack(total), None)


async def nothing_to_act_on(session: Session, action: object) -> None:
    raise AssertionError(f"nothing to act on: {action}")


@pytest.mark.timeout(60)
def test_range_answers_are_paced_counted_and_go_ahead_of_bulk(tmp_path: Path) -> None:
    """20 range answers (2 MB) asked while 3 MB of bulk crosses: the first arrives within
    a few pieces' time, not behind the bulk; every answer is counted in flight, so what
    the link holds unacknowledged stays within the pacer's bound, not 2 MB on top."""
    store = LocalStore(tmp_path)
    bulk = store.put(os.urandom(3 << 20))
    block = os.urandom(4 << 20)
    oid = ObjectId.of(block)
    answers = [answer(oid, block, i * (96 << 10), (i + 1) * (96 << 10) - 1) for i in range(20)]

    async def run() -> tuple[SlowLink, Session, float, float]:
        link = SlowLink()
        core = Peer("OPS", None, {"heads": {}}, Partials())
        core.outbox.queue([bulk], Priority.BULK)
        session = Session(core, link, store, nothing_to_act_on, lambda session, sent, received: None)
        running = asyncio.create_task(session.run())
        await asyncio.sleep(1.0)  # the pacer learns the link; bulk fills the window
        asked = asyncio.get_running_loop().time()
        bulk_behind, link.peak = link.free - asked, 0
        await asyncio.gather(*(session.sender.answer(message) for message in answers))
        first = min(link.arrived.values()) - asked
        link.acks.put_nowait(None)
        await running
        return link, session, first, bulk_behind

    link, session, first, bulk_behind = asyncio.run(run())
    assert session.sender.pacer is not None
    assert len(link.arrived) == len(answers)
    assert session.sender.pacer.sent == link.sent  # the answers are counted in flight like pieces
    assert session.core.outbox.taken == link.sent
    window = session.sender.pacer.window(time.monotonic())
    assert link.peak <= 2 * window + 100_000, (link.peak, window)  # urgent: two windows at most
    assert link.peak < 1_500_000  # not the answers all at once on top of the bulk
    assert first < bulk_behind + 2 * DELAY + 0.5, (first, bulk_behind)  # behind what is on the link only


@pytest.mark.timeout(180)
def test_a_range_read_at_the_hub_is_not_held_behind_a_bulk_push(tmp_path: Path) -> None:
    """The ship pushes 6 MB of bulk to the hub over a 1 MB/s link; a reader at the hub
    reads 1000 bytes of a netCDF entry of the ship's meanwhile: its leaves cross ahead
    of the bulk, within a second or two, not after the push's 6 s."""
    profile = LinkProfile(down=2_000_000, up=1_000_000, delay=0.1)
    with Campaign(tmp_path / "c", "OPS", {"RV-Meteor": Remote(profile, link={"push": ["raw"]})}) as c:
        c.wait_connected()
        ship, hub = c.sites["RV-Meteor"], c.hub
        path = tmp_path / "spectra.nc"
        record = publish_spectra(ship, path, "lidar/spectra.nc", 3, topics=["lidar"])
        url = f"{hub.url}/data/RV-Meteor/lidar/spectra.nc"
        wait_until(lambda: requests.get(url, headers={"Range": "bytes=0-99"}, timeout=TIMEOUT).ok, 30,
                   "the record at the hub")
        bulk = sampledata.raw_file(tmp_path / "bulk.bin", size=6_000_000, seed=9)
        nt.publish(bulk, name="raw/bulk.bin", topics=["raw"], server=ship.url, token=ship.token, progress=False)
        time.sleep(1.5)  # the push under way: the link busy, its window full
        block = max(record.blocks, key=lambda b: b.length)
        start = block.offset + block.length // 2
        began = time.monotonic()
        r = requests.get(url, headers={"Range": f"bytes={start}-{start + 999}"}, timeout=TIMEOUT)
        took = time.monotonic() - began
        assert r.status_code == 206 and r.content == path.read_bytes()[start:start + 1000]
        pushing = c.links["RV-Meteor"].stats["sent_up"]
        assert pushing < 6_000_000  # the push was still crossing
        assert took < 2.0, took
