"""Verified leaves relayed by a hub: the ship links to the hub over an emulated link, BCO
links to the hub directly. A reader at BCO, and an ``nt://`` reader using the hub as its
server, read 100 values of a netCDF entry held only at the ship: the hub asks the ship
for the leaves holding them, checks them against the tree root in the file record, and
passes them on; the ship -> hub link carries a small fraction of a block."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import requests
import xarray as xr
from server_kit import TIMEOUT, listed, status

import eurec4a_nt as nt
from eurec4a_nt import hashtree
from eurec4a_nt.chunking import FileRecord
from eurec4a_nt.demokit.campaign import Campaign, Remote, wait_until
from eurec4a_nt.demokit.emulator import LinkProfile
from eurec4a_nt.fs import NTFileSystem
from eurec4a_nt.sitestore import SiteStore

SHIP, HUB, OPS = "RV-Meteor", "OPS", "BCO"
NAME = "raw/spectra.nc"
Setup = tuple[Campaign, Path, FileRecord, np.ndarray]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The ship holding a 16 MB netCDF file of random values, known at the hub and BCO."""
    root = tmp_path_factory.mktemp("ranges-relayed")
    link = LinkProfile(down=4_000_000, up=2_000_000, delay=0.02)
    with Campaign(root / "c", HUB, {SHIP: Remote(link), OPS: Remote(None)}) as c:
        c.wait_connected()
        ship = c.sites[SHIP]
        path = root / "spectra.nc"
        values = np.random.default_rng(7).random((4000, 500))
        xr.Dataset({"spectra": (("time", "bin"), values)}).to_netcdf(path, engine="h5netcdf")
        entry = nt.publish(path, name=NAME, server=ship.url, token=ship.token, progress=False)
        record = FileRecord.from_bytes(SiteStore(root / "c" / SHIP).objects.get(entry.root))
        for site in (c.hub, c.sites[OPS]):
            wait_until(lambda s=site: NAME in {e["name"] for e in listed(s.url, SHIP)}, 30, "the entry known")
        yield c, path, record, values


def sent_up(c: Campaign) -> int:
    """Bytes the ship sent the hub over the emulated link."""
    return int(c.links[SHIP].stats["sent_up"])


def blocks_at_hub(c: Campaign, record: FileRecord) -> int:
    store = SiteStore(c.hub.store)
    return sum(store.objects.has(b.id) for b in record.blocks)


@pytest.mark.timeout(120)
def test_a_read_at_a_third_site_moves_leaves_over_the_ship_link(campaign: Setup) -> None:
    c, path, record, values = campaign
    with h5py.File(path) as f:
        offset = f["spectra"].id.get_offset()
    start = offset + (2500 * 500 + 200) * 8  # 100 values of row 2500
    block = next(b for b in record.blocks if b.offset <= start < b.end)
    time.sleep(0.5)
    before = sent_up(c)
    r = requests.get(f"{c.sites[OPS].url}/data/{SHIP}/{NAME}", headers={"Range": f"bytes={start}-{start + 799}"},
                     timeout=TIMEOUT)
    assert r.status_code == 206
    np.testing.assert_array_equal(np.frombuffer(r.content, "<f8"), values[2500, 200:300])
    time.sleep(0.3)  # the link's counters settle
    moved = sent_up(c) - before
    assert moved < 2 * hashtree.LEAF + 8000, moved  # the record and a leaf or two
    assert moved < block.length / 20, (moved, block.length)
    assert blocks_at_hub(c, record) == 0  # the hub passed leaves on, it holds no block whole
    assert not SiteStore(c.sites[OPS].store).objects.has(block.id)


@pytest.mark.timeout(120)
def test_an_nt_reader_at_the_hub_gets_the_leaves_it_reads(campaign: Setup, tmp_path: Path) -> None:
    """An ``nt://`` reader with the hub as its server opens the file with xarray and reads
    100 values, 64 KiB at a time: it asks the hub for parts of blocks naming the file
    record, and the hub brings only the leaves holding them from the ship."""
    c, _, record, values = campaign
    fs = NTFileSystem(server=c.hub.url, cache=str(tmp_path / "cache"), skip_instance_cache=True)
    before, served = sent_up(c), status(c.hub.url)["traffic"]["served"]
    with fs.open(f"nt://{SHIP}/{NAME}", block_size=64 << 10) as f, xr.open_dataset(f, engine="h5netcdf") as ds:
        got = ds["spectra"].isel(time=1234, bin=slice(0, 100)).values
    np.testing.assert_array_equal(got, values[1234, :100])
    time.sleep(0.3)
    moved = sent_up(c) - before
    read = status(c.hub.url)["traffic"]["served"] - served
    assert moved <= 1.2 * read + 8000, (moved, read)  # what the reader read, not whole blocks
    assert moved < max(b.length for b in record.blocks) / 4, moved
    assert blocks_at_hub(c, record) == 0


@pytest.mark.timeout(120)
def test_leaves_the_hub_relayed_cross_the_ship_link_once(campaign: Setup, tmp_path: Path) -> None:
    """Two ``nt://`` readers at the hub, one after the other (each with a cache of its
    own), read the same 100 values: the second moves nothing over the ship's link, for the
    hub keeps the leaves it relayed with their proof."""
    c, _, _, values = campaign

    def read(cache: Path) -> np.ndarray:
        fs = NTFileSystem(server=c.hub.url, cache=str(cache), skip_instance_cache=True)
        with fs.open(f"nt://{SHIP}/{NAME}", block_size=64 << 10) as f, xr.open_dataset(f, engine="h5netcdf") as ds:
            return ds["spectra"].isel(time=3210, bin=slice(100, 200)).values

    np.testing.assert_array_equal(read(tmp_path / "first"), values[3210, 100:200])
    time.sleep(0.3)
    before = sent_up(c)
    np.testing.assert_array_equal(read(tmp_path / "second"), values[3210, 100:200])
    time.sleep(0.3)
    assert sent_up(c) - before < 1000, sent_up(c) - before  # acknowledgements at most


@pytest.mark.timeout(120)
def test_a_read_across_two_blocks_is_relayed_in_leaves_of_both(campaign: Setup) -> None:
    """A read at BCO from the end of one block into the start of the next: the hub relays
    the leaves of both (at once), and the bytes are right."""
    c, path, record, _ = campaign
    left, right = record.blocks[5], record.blocks[6]
    start, end = left.end - 20_000, right.offset + 20_000
    before = sent_up(c)
    r = requests.get(f"{c.sites[OPS].url}/data/{SHIP}/{NAME}", headers={"Range": f"bytes={start}-{end - 1}"},
                     timeout=TIMEOUT)
    assert r.status_code == 206 and r.content == path.read_bytes()[start:end]
    time.sleep(0.3)
    moved = sent_up(c) - before
    assert moved < 6 * hashtree.LEAF, moved  # two leaves or so of each block, not the blocks
    assert not SiteStore(c.hub.store).objects.has(left.id) and not SiteStore(c.hub.store).objects.has(right.id)
