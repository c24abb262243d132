"""Read-through (``--upstream``): a second site server serves entries of the first,
fetching only the blocks a read needs, once, however many read at the same time; and
its cache cap evicts other sites' data, never its own nor pinned topics."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from server_kit import TIMEOUT, object_files, start, status, wait_for

import eurec4a_nt
from eurec4a_nt.demokit.emulator import EmulatorThread, LinkProfile
from eurec4a_nt.demokit.sites import SiteProcess

MB = 1_000_000
SITES = ["RV-Meteor", "OPS", "BCO", "HALO", "P3"]


def _publish(proc: SiteProcess, folder: Path, name: str, size: int, topics: list[str]) -> bytes:
    data = random.Random(name).randbytes(size)  # the same blocks on every run
    path = folder / name.replace("/", "_")
    path.write_bytes(data)
    eurec4a_nt.publish(path, name=name, topics=topics, server=proc.url, token=proc.token, progress=False)
    return data


def _sent_to(upstream: SiteProcess, peer: str) -> int:
    """Bytes the upstream sent over the link of ``peer`` (objects and messages)."""
    links = [link for link in status(upstream.url)["links"] if link.get("peer") == peer]
    assert len(links) == 1, links
    return int(links[0]["sent"])


def _knows(proc: SiteProcess, site: str, name: str) -> bool:
    r = requests.get(f"{proc.url}/api/sites/{site}/entries", timeout=TIMEOUT)
    return r.ok and name in {e["name"] for e in r.json()["entries"]}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SiteProcess, dict[str, bytes]]]:
    """RV-Meteor holding three 20 MB entries and a small pinned-topic one."""
    root = tmp_path_factory.mktemp("readthrough")
    ship = start(root / "sites", "RV-Meteor", sites=SITES)
    try:
        data = {name: _publish(ship, root, name, size, topics) for name, size, topics in [
            ("raw/radar-day1.bin", 20 * MB, ["raw"]),
            ("raw/radar-day2.bin", 20 * MB, ["raw"]),
            ("raw/radar-day3.bin", 20 * MB, ["raw"]),
            ("planning/flight-plan.pdf", 2 * MB, ["planning"]),
        ]}
        yield root, ship, data
    finally:
        ship.stop()


@pytest.mark.timeout(120)
def test_reads_fetch_only_needed_blocks_once(campaign: tuple[Path, SiteProcess, dict[str, bytes]]) -> None:
    root, ship, data = campaign
    ops = start(root / "sites", "OPS", args=["--upstream", ship.url])
    try:
        wait_for(lambda: _knows(ops, "RV-Meteor", "raw/radar-day1.bin"), what="the ship's log at OPS")
        url = f"{ops.url}/data/RV-Meteor/raw/radar-day1.bin"
        blob = data["raw/radar-day1.bin"]

        before = _sent_to(ship, "OPS")
        r = requests.get(url, headers={"Range": "bytes=10000000-10000999"}, timeout=TIMEOUT)
        assert r.status_code == 206 and r.content == blob[10_000_000:10_001_000]
        first = _sent_to(ship, "OPS") - before
        assert 1000 < first < 4.3 * MB  # the file record and the block(s) holding the range
        assert status(ops.url)["objects"]["count"] <= 3

        r = requests.get(url, headers={"Range": "bytes=10000000-10000999"}, timeout=TIMEOUT)
        assert r.content == blob[10_000_000:10_001_000]
        assert _sent_to(ship, "OPS") - before - first < 20_000  # nothing more moved
        assert status(ship.url)["traffic"]["served"] == 0  # all of it went over the link

        cold = data["raw/radar-day2.bin"]
        before = _sent_to(ship, "OPS")
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda _: requests.get(f"{ops.url}/data/RV-Meteor/raw/radar-day2.bin",
                                                           timeout=90), range(10)))
        assert all(a.status_code == 200 and a.content == cold for a in answers)
        moved = _sent_to(ship, "OPS") - before
        assert 20 * MB <= moved < 20 * MB * 1.05, moved  # each block crossed once for 10 readers
        assert status(ops.url)["traffic"]["served"] >= 10 * 20 * MB
        assert status(ops.url)["objects"]["count"] == object_files(ops.store)
    finally:
        ops.stop()


@pytest.mark.timeout(120)
def test_a_long_read_over_a_slow_link_streams_as_blocks_arrive(
        campaign: tuple[Path, SiteProcess, dict[str, bytes]]) -> None:
    root, ship, data = campaign
    with EmulatorThread(ship.port, LinkProfile(down=5 * MB, up=1 * MB, delay=0.05)) as link:
        p3 = start(root / "sites", "P3", args=["--upstream", f"http://127.0.0.1:{link.port}"])
        try:
            wait_for(lambda: _knows(p3, "RV-Meteor", "raw/radar-day2.bin"), what="the ship's log at P3")
            began = time.monotonic()
            with requests.get(f"{p3.url}/data/RV-Meteor/raw/radar-day2.bin", stream=True, timeout=60) as r:
                assert r.status_code == 200
                chunks = r.iter_content(1 << 20)
                body = next(chunks)
                first_byte = time.monotonic() - began
                body += b"".join(chunks)
            total = time.monotonic() - began
        finally:
            p3.stop()
    assert body == data["raw/radar-day2.bin"]
    assert total > 3  # 20 MB at 5 MB/s
    assert first_byte < total / 3, (first_byte, total)  # sent while later blocks still cross


@pytest.mark.timeout(120)
def test_cache_cap_evicts_other_sites_data_but_never_its_own(
        campaign: tuple[Path, SiteProcess, dict[str, bytes]]) -> None:
    root, ship, data = campaign
    bco = start(root / "sites", "BCO", args=["--upstream", ship.url, "--cache-cap", "20MB",
                                              "--pin", "planning"])
    try:
        own = _publish(bco, root, "lidar/2020-02-01.bin", 6 * MB, ["raw"])
        own_objects = status(bco.url)["objects"]["count"]
        wait_for(lambda: _knows(bco, "RV-Meteor", "raw/radar-day3.bin"), what="the ship's log at BCO")

        plan = requests.get(f"{bco.url}/data/RV-Meteor/planning/flight-plan.pdf", timeout=TIMEOUT)
        assert plan.content == data["planning/flight-plan.pdf"]
        blob = data["raw/radar-day3.bin"]
        url = f"{bco.url}/data/RV-Meteor/raw/radar-day3.bin"
        for start_ in range(0, 20 * MB, 2 * MB):  # read it all, 2 MB at a time
            r = requests.get(url, headers={"Range": f"bytes={start_}-{start_ + 2 * MB - 1}"}, timeout=60)
            assert r.status_code == 206 and r.content == blob[start_:start_ + 2 * MB]

        # Eviction runs right after the objects that went over the cap are stored, which
        # can be just after the read that brought them was answered.
        wait_for(lambda: status(bco.url)["objects"]["bytes"] <= 20 * MB, what="eviction under the cap")
        assert status(bco.url)["objects"]["count"] == object_files(bco.store)
        mine = _held(bco, "BCO")["lidar/2020-02-01.bin"]
        assert mine[0] == mine[1] <= own_objects  # every object of its own entry
        foreign = _held(bco, "RV-Meteor")
        assert foreign["planning/flight-plan.pdf"][0] == foreign["planning/flight-plan.pdf"][1]  # pinned
        assert 0 < foreign["raw/radar-day3.bin"][0] < foreign["raw/radar-day3.bin"][1]  # partly evicted
        assert requests.get(f"{bco.url}/data/BCO/lidar/2020-02-01.bin", timeout=TIMEOUT).content == own
    finally:
        bco.stop()


def _held(proc: SiteProcess, site: str) -> dict[str, tuple[int, int]]:
    """``name: (objects held here, objects needed)`` of a site's entries."""
    body = requests.get(f"{proc.url}/api/sites/{site}/entries?held=1", timeout=TIMEOUT).json()
    return {e["name"]: (e["held"], e["objects"]) for e in body["entries"]}


@pytest.mark.timeout(60)
def test_evicted_data_is_fetched_again(campaign: tuple[Path, SiteProcess, dict[str, bytes]]) -> None:
    root, ship, data = campaign
    halo = start(root / "sites", "HALO", sites=SITES, args=["--upstream", ship.url, "--cache-cap", "8MB"])
    try:
        wait_for(lambda: _knows(halo, "RV-Meteor", "raw/radar-day1.bin"), what="the ship's log at HALO")
        blob = data["raw/radar-day1.bin"]
        url = f"{halo.url}/data/RV-Meteor/raw/radar-day1.bin"
        first = requests.get(url, headers={"Range": "bytes=0-999"}, timeout=8)
        assert first.content == blob[:1000]
        root_id = requests.head(url, timeout=TIMEOUT).headers["ETag"].strip('"')
        record = requests.get(f"{halo.url}/objects/{root_id}", timeout=TIMEOUT).json()
        first_block = record["blocks"][0][0]
        for start_ in range(4 * MB, 20 * MB, 2 * MB):  # push the first block out of the cache
            r = requests.get(url, headers={"Range": f"bytes={start_}-{start_ + 2 * MB - 1}"}, timeout=8)
            assert r.content == blob[start_:start_ + 2 * MB]
        missing = requests.post(f"{halo.url}/objects/missing", json={"ids": [first_block]}, timeout=TIMEOUT)
        assert missing.json()["missing"] == [first_block]
        again = requests.get(url, headers={"Range": "bytes=0-999"}, timeout=8)
        assert again.content == blob[:1000]
    finally:
        halo.stop()
