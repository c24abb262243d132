"""Fallback: catalog entries name every place that holds them; a reader whose nearest
source is down, or answers Pending, gets the data from the next one."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest
import xarray as xr

import eurec4a_nt as nt
from eurec4a_nt.bundles import export_bundle, import_bundle
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.demokit.sites import SiteProcess, free_port, make_sites
from eurec4a_nt.errors import Pending
from eurec4a_nt.keyring import Keyring, KeyringSite
from eurec4a_nt.mirrors import FallbackWarning
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(180)


def campaign(root: Path) -> tuple[SiteProcess, SiteProcess]:
    """A ship and the hub, no link between them; each keyring names both servers' URLs.
    The hub got the ship's log and its soundings (not its raw data) on a bundle."""
    make_sites(root, ["OPS", "RV-Meteor"])
    ports = {"OPS": free_port(), "RV-Meteor": free_port()}
    urls = Keyring()
    for site, port in ports.items():
        own = SiteStore(root / site).keyring.sites[site]
        urls.add(KeyringSite(site, own.public_key, [f"http://127.0.0.1:{port}"]))
    for site in ports:
        SiteStore(root / site).trust(urls)
    ship = root / "RV-Meteor"
    nt.publish(sd.sonde(root / "s1.nc", seed=1), name="sondes/s1.nc", topics="sondes", store=ship)
    nt.publish(sd.raw_file(root / "radar.bin", size=2_000_000, seed=2), name="raw/radar.bin",
               topics="raw", store=ship)
    export_bundle(SiteStore(ship), root / "sondes.car", topics=["sondes"])
    import_bundle(root / "sondes.car", SiteStore(root / "OPS"))
    procs = (SiteProcess(root / "OPS", port=ports["OPS"]).start(),
             SiteProcess(ship, port=ports["RV-Meteor"]).start())
    return procs


def test_a_reader_falls_back_when_the_nearest_source_is_down_or_pending(tmp_path: Path) -> None:
    hub, ship = campaign(tmp_path)
    try:
        # at the hub: the raw data is not held there and no link reaches the ship (Pending)
        cat = nt.open_catalog(server=hub.url)
        raw = cat["RV-Meteor"]["raw/radar.bin"]
        assert raw.storage_options == {"server": hub.url, "mirrors": [ship.url]}
        with pytest.warns(FallbackWarning, match=f"read from {ship.url}.*{hub.url}: Pending"):
            data = raw.read()
        assert data == (tmp_path / "radar.bin").read_bytes()

        # a reader of the ship's catalog, after the ship's server went down
        cat = nt.open_catalog(server=ship.url)
        sonde = cat["RV-Meteor"]["sondes/s1.nc"]
        assert sonde.storage_options["mirrors"] == [hub.url]
        ship.stop()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = sonde.to_dask().load()
        said = [str(w.message) for w in caught if w.category is FallbackWarning]
        assert said and said[0].startswith(f"read from {hub.url}, not the nearer {ship.url}: Unreachable")
        xr.testing.assert_equal(ds, xr.open_dataset(tmp_path / "s1.nc").load())

        # what neither can supply now (not in the local block cache): the nearest
        # source's reason, and the others'
        shutil.rmtree(Path(os.environ["EUREC4A_NT_CACHE"]) / "objects")
        raw = nt.open_catalog(server=hub.url)["RV-Meteor"]["raw/radar.bin"]
        with pytest.raises(Pending, match=f"held at RV-Meteor.*also tried {ship.url} \\(Unreachable"):
            raw.read()
    finally:
        hub.stop()
        ship.stop()
