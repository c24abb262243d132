"""Offline bundles: a ship's raw data reaches the hub on a file, with no link; a bundle
with one altered byte, or cut short, makes nothing visible; a second import resumes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
import requests
import xarray as xr
from server_kit import TIMEOUT, start

import eurec4a_nt as nt
from eurec4a_nt import car
from eurec4a_nt.bundles import export_bundle, import_bundle
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.demokit.sites import make_sites
from eurec4a_nt.errors import BadCommit, BadInput, Corrupt
from eurec4a_nt.fsck import fsck
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(180)


def nt_cmd(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "eurec4a_nt", *args], capture_output=True, text=True,
                         timeout=120, check=False)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def ship_with_data(root: Path) -> Path:
    make_sites(root, ["OPS", "RV-Meteor", "BCO"])
    ship = root / "RV-Meteor"
    nt.publish(sd.raw_file(root / "radar.bin", size=3_000_000, seed=1), name="raw/radar.bin",
               topics="raw", store=ship)
    nt.publish(sd.sonde(root / "sonde.nc", seed=2), name="sondes/s1.nc", topics="sondes", store=ship)
    nt.publish(sd.timeseries(seed=3, hours=6), name="met/ts.zarr", topics="met", store=ship)
    nt.publish(sd.raw_file(root / "radar.bin", size=3_000_000, seed=4), name="raw/radar.bin",
               topics="raw", store=ship)  # a second version: the log holds both
    return ship


def hub_sites(url: str) -> dict:
    return requests.get(url + "/api/sites", timeout=TIMEOUT).json()["sites"]


def test_bundle_moves_ship_data_to_the_hub_without_a_link(tmp_path: Path) -> None:
    ship = ship_with_data(tmp_path)
    bundle = tmp_path / "meteor.car"
    out = nt_cmd("bundle", "export", str(bundle), "--store", str(ship))
    assert out.stdout.startswith(f"{bundle}: 4 commits, ")
    hub = start(tmp_path, "OPS")
    try:
        # one altered byte anywhere (an object, a commit) or a cut file: nothing visible
        data = bundle.read_bytes()
        in_commit = data.index(b'"signature"') + 20
        for name, damaged in [("object", data[:-1] + bytes([data[-1] ^ 1])),
                              ("commit", data[:in_commit] + b"X" + data[in_commit + 1:]),
                              ("cut", data[:len(data) * 2 // 3])]:
            path = tmp_path / f"bad-{name}.car"
            path.write_bytes(damaged)
            out = nt_cmd("bundle", "import", str(path), "--server", hub.url, "--token", hub.token, ok=False)
            assert out.returncode == 2 and "Traceback" not in out.stderr
            assert "damaged" in out.stderr or "truncated" in out.stderr, out.stderr
            assert "RV-Meteor" not in hub_sites(hub.url)

        # the whole bundle; objects stored by the cut import are not sent again
        out = nt_cmd("bundle", "import", str(bundle), "--server", hub.url, "--token", hub.token)
        assert "imported 4 commits (RV-Meteor)" in out.stdout
        held = int(out.stdout.split(" objects new, ")[1].split()[0])
        assert held > 0
        assert hub_sites(hub.url)["RV-Meteor"]["entries"] == 3
        raw = requests.get(hub.url + "/data/RV-Meteor/raw/radar.bin", timeout=TIMEOUT)
        assert raw.content == (tmp_path / "radar.bin").read_bytes()
        fs = fsspec.filesystem("nt", server=hub.url)
        with fs.open("RV-Meteor/sondes/s1.nc") as f:
            assert xr.open_dataset(f, engine="h5netcdf").sizes == xr.open_dataset(tmp_path / "sonde.nc").sizes
        ds = xr.open_zarr(fs.get_mapper("RV-Meteor/met/ts.zarr"), consolidated=False)
        assert ds.sizes["time"] > 0
        status = hub.status()
        assert not status["links"]  # no link: everything came on the file

        out = nt_cmd("bundle", "import", str(bundle), "--server", hub.url, "--token", hub.token)
        assert "imported 0 commits" in out.stdout
    finally:
        hub.stop()


def test_bundle_into_a_store_and_selection(tmp_path: Path) -> None:
    ship = ship_with_data(tmp_path)
    store = SiteStore(ship)
    bundle = tmp_path / "raw.car"
    report = export_bundle(store, bundle, topics=["sondes"])
    assert report.commits == 4 and report.missing == 0
    with open(bundle, "rb") as f:  # a plain CAR v1 file: header, then verified raw blocks
        car.read_header(f)
        ids = [oid for oid, _ in car.read_blocks(f)]
    sonde = store.entry("RV-Meteor", "sondes/s1.nc")
    raw = store.entry("RV-Meteor", "raw/radar.bin")
    assert sonde.root in ids and raw.root not in ids  # only the chosen topic's objects
    assert [c.id for c in store.log("RV-Meteor")] == ids[1:5]

    bco = SiteStore(tmp_path / "BCO")
    result = import_bundle(bundle, bco)
    assert [c.seq for c in result.commits] == [1, 2, 3, 4] and not result.rejected
    assert set(bco.entries("RV-Meteor")) == {"raw/radar.bin", "sondes/s1.nc", "met/ts.zarr"}
    assert bco.objects.has(sonde.root) and not bco.objects.has(raw.root)  # the rest is fetched lazily
    assert fsck(bco).ok

    # a commit signed by a key the keyring does not hold: nothing appended, nothing stored
    stranger = SiteStore.init(tmp_path / "Stranger", "Stranger")
    nt.publish(sd.quicklook_png(tmp_path / "q.png", seed=5), name="q.png", store=stranger.path)
    forged = tmp_path / "forged.car"
    export_bundle(stranger, forged)
    before = sorted(p.name for p in (bco.path / "objects").rglob("*") if p.is_file())
    with pytest.raises(BadCommit):
        import_bundle(forged, SiteStore(tmp_path / "BCO"))
    assert "Stranger" not in SiteStore(tmp_path / "BCO").sites()
    assert sorted(p.name for p in (bco.path / "objects").rglob("*") if p.is_file()) == before


def test_car_blocks_are_checked() -> None:
    data = b"some bytes"
    oid = ObjectId.of(data)
    good = car.header(oid) + car.block(oid, data)
    f = io.BytesIO(good)
    assert car.read_header(f) == oid and list(car.read_blocks(f)) == [(oid, data)]
    with pytest.raises(Corrupt, match="does not match its hash"):
        f = io.BytesIO(good[:-1] + b"X")
        car.read_header(f)
        list(car.read_blocks(f))
    with pytest.raises(BadInput, match="not a bundle"):
        car.read_header(io.BytesIO(b"\x05hello"))
    assert car.varint(300) == bytes([0xAC, 0x02])  # as in the multiformats varint spec
