"""Lazy reads over a link move verified leaves, not whole blocks: a reader at OPS reads a
netCDF entry held only at the ship through ``/data`` and its zarr view; the ship sends
the leaves holding the bytes read with their proof, OPS checks them against the tree
roots in the file record before serving a byte, and a second read of them moves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import xarray as xr
from server_kit import TIMEOUT, listed, start, status, wait_for

import eurec4a_nt as nt
from eurec4a_nt import hashtree
from eurec4a_nt.chunking import FileRecord
from eurec4a_nt.demokit.sites import SiteProcess
from eurec4a_nt.sitestore import SiteStore

SHIP, HUB = "RV-Meteor", "OPS"
Linked = tuple[SiteProcess, SiteProcess, Path, FileRecord]
NAME, VIEWED = "raw/spectra.nc", "raw/spectra-chunked.nc"


def sent_to(ship: SiteProcess, peer: str) -> int:
    """Bytes the ship sent over the link of ``peer``."""
    return next(int(link["sent"]) for link in status(ship.url)["links"] if link.get("peer") == peer)


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    """The ship holding two 16 MB netCDF files of random values (one of them in chunks of
    200 KB, read through its zarr view), and OPS linked to it."""
    root = tmp_path_factory.mktemp("link-ranges")
    ship = start(root / "sites", SHIP, sites=[SHIP, HUB])
    hub = None
    try:
        path = root / "spectra.nc"
        values = np.random.default_rng(5).random((4000, 500))
        xr.Dataset({"spectra": (("time", "bin"), values)}).to_netcdf(path, engine="h5netcdf")
        entry = nt.publish(path, name=NAME, server=ship.url, token=ship.token, progress=False)
        record = FileRecord.from_bytes(SiteStore(root / "sites" / SHIP).objects.get(entry.root))
        chunked = root / "spectra-chunked.nc"
        xr.Dataset({"spectra": (("time", "bin"), values[::-1])}).to_netcdf(
            chunked, engine="h5netcdf", encoding={"spectra": {"chunksizes": (50, 500)}})
        nt.publish(chunked, name=VIEWED, server=ship.url, token=ship.token, progress=False)
        hub = start(root / "sites", HUB, args=["--upstream", ship.url])
        wait_for(lambda: {NAME, VIEWED} <= {e["name"] for e in listed(hub.url, SHIP)}, what="the entries at OPS")
        yield ship, hub, path, record
    finally:
        if hub is not None:
            hub.stop()
        ship.stop()


@pytest.mark.timeout(120)
def test_a_range_read_at_the_hub_moves_its_leaves_once(linked: Linked) -> None:
    ship, hub, path, record = linked
    data = path.read_bytes()
    block = max(record.blocks, key=lambda b: b.length)
    start = block.offset + block.length // 2
    url = f"{hub.url}/data/{SHIP}/{NAME}"

    before = sent_to(ship, HUB)
    r = requests.get(url, headers={"Range": f"bytes={start}-{start + 999}"}, timeout=TIMEOUT)
    assert r.status_code == 206 and r.content == data[start:start + 1000]
    first = sent_to(ship, HUB) - before
    assert first < 2 * hashtree.LEAF + 8000, first  # the record and a leaf or two, not a ~1 MiB block
    assert status(hub.url)["objects"]["count"] == 1  # the record only: no block is held whole

    r = requests.get(url, headers={"Range": f"bytes={start + 100}-{start + 899}"}, timeout=TIMEOUT)
    assert r.content == data[start + 100:start + 900]
    assert sent_to(ship, HUB) - before - first < 200  # held from the first read: nothing more moved

    r = requests.get(url, timeout=TIMEOUT)  # the whole file: whole blocks, as before
    assert r.content == data
    r = requests.get(url, headers={"Range": f"bytes={start}-{start + 999}"}, timeout=TIMEOUT)
    assert r.content == data[start:start + 1000]


@pytest.mark.timeout(120)
def test_the_zarr_view_reads_a_slice_in_leaves(linked: Linked) -> None:
    ship, hub, path, _ = linked
    before = sent_to(ship, HUB)
    served = status(hub.url)["traffic"]["served"]
    local_path = path.with_name("spectra-chunked.nc")
    with xr.open_zarr(f"{hub.url}/zarr/{SHIP}/{VIEWED}") as ds, xr.open_dataset(local_path, engine="h5netcdf") as local:
        got = ds["spectra"].isel(time=slice(3100, 3102)).values
        np.testing.assert_array_equal(got, local["spectra"].isel(time=slice(3100, 3102)).values)
    moved = sent_to(ship, HUB) - before
    read = status(hub.url)["traffic"]["served"] - served
    assert moved <= 1.2 * read + 4000, (moved, read)
