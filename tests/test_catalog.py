"""The intake catalog of a store: one nested catalog per site and folder, entry
metadata through intake's normal API, and YAML that plain ``intake.open_catalog`` opens."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import intake
import pytest
import yaml
from server_kit import ship_to

import eurec4a_nt as nt
from eurec4a_nt.catalog import dump
from eurec4a_nt.demokit import sampledata as sd
from eurec4a_nt.entries import Entry
from eurec4a_nt.errors import BadInput
from eurec4a_nt.ids import ObjectId
from eurec4a_nt.log import Change
from eurec4a_nt.sitestore import SiteStore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def campaign(tmp_path: Path) -> tuple[SiteStore, SiteStore]:
    """A hub store (BCO) holding its own entries and those of RV-Meteor."""
    ship = SiteStore.init(tmp_path / "RV-Meteor", "RV-Meteor")
    hub = SiteStore.init(tmp_path / "BCO", "BCO")
    files = tmp_path / "files"
    files.mkdir()
    sonde = sd.sonde(files / "sonde.nc", seed=1)
    nt.publish(sonde, "sondes/2020-02-01T1045.nc", topics=["sondes", "processed"],
               description="radiosonde level 2", metadata={"launch": "2020-02-01T10:45"},
               store=ship.path)
    nt.publish(sd.quicklook_png(files / "ql.png", seed=2), "quicklooks/ceilometer.png",
               topics=["quicklook"], store=ship.path)
    nt.publish(sd.timeseries(seed=3, hours=6), "surface/met.zarr", topics=["processed"],
               description="surface meteorology", store=hub.path)
    ship_to(ship, hub)
    return hub, ship


def test_one_nested_catalog_per_site(campaign: tuple[SiteStore, SiteStore]) -> None:
    hub, _ = campaign
    cat = nt.open_catalog(store=hub.path)
    assert sorted(cat) == ["BCO", "RV-Meteor"]
    assert sorted(cat["RV-Meteor"]) == ["quicklooks", "sondes"]  # folders, read when opened
    assert list(cat["RV-Meteor"]["sondes"]) == ["2020-02-01T1045.nc"]
    assert list(cat["BCO"]) == ["surface"]
    assert list(cat["BCO"]["surface"]) == ["met.zarr"]
    assert cat["RV-Meteor"].metadata["site"] == "RV-Meteor"
    ds = cat["RV-Meteor"]["sondes/2020-02-01T1045.nc"].to_dask()
    assert ds.attrs["platform"] == "RV-Meteor"
    assert cat["BCO"]["surface/met.zarr"].to_dask().sizes["time"] == 36


def test_one_sounding_is_no_series_yet_and_says_so(campaign: tuple[SiteStore, SiteStore]) -> None:
    """A folder of one timestamped entry is a folder; called as a series it says why and
    how to open the entry (not intake's 'unexpected keyword argument')."""
    hub, _ = campaign
    ship = nt.open_catalog(store=hub.path)["RV-Meteor"]
    with pytest.raises(BadInput, match=r"RV-Meteor/sondes is a folder \(2020-02-01T1045.nc\), not a series"):
        ship.sondes(date="2020-02-01")
    assert ship["sondes"]["2020-02-01T1045.nc"].to_dask().attrs["platform"] == "RV-Meteor"
    with pytest.raises(KeyError, match=r"RV-Meteor has no entry, folder or series 'sondes/2020-02-01T1046\.nc'"):
        ship["sondes/2020-02-01T1046.nc"]
    with pytest.raises(KeyError, match=r"no entry, folder or series 'sondes/x\.nc'"):
        ship["sondes"]["x.nc"]


def test_entry_metadata_through_intake(campaign: tuple[SiteStore, SiteStore]) -> None:
    hub, ship = campaign
    entry = ship.entry("RV-Meteor", "sondes/2020-02-01T1045.nc")
    source = nt.open_catalog(store=hub.path)["RV-Meteor"]["sondes/2020-02-01T1045.nc"]
    meta = source.metadata
    assert meta["topics"] == ["processed", "sondes"]
    assert meta["site"] == "RV-Meteor"
    assert meta["size"] == entry.size
    assert meta["published"] == entry.published and meta["published"].endswith("Z")
    assert (meta["kind"], meta["format"], meta["root"]) == ("file", "netcdf", entry.root)
    assert meta["launch"] == "2020-02-01T10:45"
    assert source.description == "radiosonde level 2"
    described = source.describe()
    assert described["description"] == "radiosonde level 2"
    assert described["metadata"]["topics"] == ["processed", "sondes"]
    assert described["metadata"]["size"] == entry.size
    assert "RV-Meteor/sondes/2020-02-01T1045.nc" in repr(source)


def test_catalog_follows_the_log(campaign: tuple[SiteStore, SiteStore], tmp_path: Path) -> None:
    hub, _ = campaign
    note = tmp_path / "note.md"
    note.write_text("# note\n")
    nt.publish(note, "notes/today.md", store=hub.path)
    assert "notes/today.md" in nt.open_catalog(store=hub.path)["BCO"]
    nt.remove("notes/today.md", store=hub.path)
    assert "notes/today.md" not in nt.open_catalog(store=hub.path)["BCO"]
    meta = nt.open_catalog(store=hub.path)["BCO"].metadata
    assert {k: meta[k] for k in ("site", "seq", "entries", "own")} == {
        "site": "BCO", "seq": 3, "entries": 1, "own": True}


def test_a_site_without_entries(tmp_path: Path) -> None:
    SiteStore.init(tmp_path / "ATR", "ATR")
    cat = nt.open_catalog(store=tmp_path / "ATR")
    assert list(cat) == ["ATR"]
    assert list(cat["ATR"]) == []


_PLAIN = textwrap.dedent("""
    import json, sys
    import intake
    assert "eurec4a_nt" not in sys.modules
    cat = intake.open_catalog(sys.argv[1])
    source = cat["RV-Meteor"]["sondes/2020-02-01T1045.nc"]
    ds = source.to_dask()
    png = cat["RV-Meteor"]["quicklooks/ceilometer.png"].read()
    zarr = cat["BCO"]["surface/met.zarr"].to_dask()
    print(json.dumps({"sites": sorted(cat), "topics": source.metadata["topics"],
                      "ta0": float(ds.ta[0]), "png": len(png), "time": zarr.sizes["time"]}))
""")


def test_generated_yaml_opens_with_plain_intake(campaign: tuple[SiteStore, SiteStore],
                                                tmp_path: Path) -> None:
    """In a fresh interpreter that never imports eurec4a_nt itself (intake finds the
    driver by its entry point), from a copy of the store moved elsewhere."""
    hub, _ = campaign
    hub.catalog_path()
    moved = tmp_path / "elsewhere" / "store"
    shutil.copytree(hub.path, moved)
    shutil.rmtree(hub.path)
    out = subprocess.run([sys.executable, "-c", _PLAIN, str(moved / "catalog" / "catalog.yaml")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sites"] == ["BCO", "RV-Meteor"]
    assert result["topics"] == ["processed", "sondes"]
    assert 290 < result["ta0"] < 310
    assert result["png"] > 1000
    assert result["time"] == 36
    same = intake.open_catalog(str(moved / "catalog" / "catalog.yaml"))
    assert sorted(same) == ["BCO", "RV-Meteor"]


def test_catalog_yaml_is_the_text_pyyaml_writes(campaign: tuple[SiteStore, SiteStore]) -> None:
    """With libyaml or without, the same catalog text (quoting, unicode, order)."""
    hub, _ = campaign
    body = yaml.safe_load((hub.catalog_path().parent / "sites" / "RV-Meteor.yaml").read_text())
    assert body["sources"]
    body["metadata"]["notes"] = ["Ångström exponent ☁", "yes", "2020-02-01", "two\nlines", 1.5, None]
    assert dump(body) == yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def test_folders_follow_commits_and_unchanged_ones_are_kept(tmp_path: Path) -> None:
    """A commit remakes the folders its names are in (a series that gets another kind of
    entry becomes a folder) and keeps the others as they were made."""
    store = SiteStore.init(tmp_path / "RV-Meteor", "RV-Meteor")

    def put(*names: str) -> None:
        store.commit([Change("put", n, Entry(n, "file", ObjectId.of(n.encode()), 1, "netcdf")) for n in names])

    put("sondes/2020-02-01T0445.nc", "sondes/2020-02-01T1045.nc", "radar/a.nc", "radar/b.nc")
    before = store.index("RV-Meteor")
    top, radar = before.folder(""), before.folder("radar/")
    assert ([p.key for p in top.products], top.folders) == (["sondes"], {"radar": 2})
    put("sondes/notes.txt")
    after = store.index("RV-Meteor")
    assert after.folder("radar/") is radar
    assert (after.folder("").products, after.folder("").folders) == ([], {"radar": 2, "sondes": 3})
    assert [e.name for e in after.folder("sondes/").entries] == ["sondes/notes.txt"]
